"""流程定义 (read-only): every process with its stored versions, one definition's diagram, steps
table and YAML source, and a check of the files in process_defs (FILE:LINE: KEY: message).

Visible to the system administrator and to everyone holding a membership; the security and
audit administrators (三员分立) have their own pages."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from sqlalchemy import select

from ..container import services
from ..engine.diagram import mermaid
from ..engine.loader import load_catalogue
from ..engine.schema import Mode, StepType
from ..engine.spec import AssignSpec, DeadlineSpec, ProcessSpec
from ..models import ProcessDefinition
from . import labels
from .current import me

bp = Blueprint("definitions", __name__)

MODES = {Mode.single: ("单人（部门认领）", "single (department queue)"), Mode.any: ("或签", "any one"),
         Mode.all: ("会签", "all"), Mode.sequential: ("依次", "in turn")}
STEP_TYPES = {StepType.start: ("发起", "start"), StepType.task: ("审批", "task"),
              StepType.parallel: ("并联审批", "parallel"), StepType.subprocess: ("子流程", "sub-process"),
              StepType.end: ("结束", "end")}


def _reader() -> None:
    user = me()
    if user.admin_role != "system" and not user.memberships:
        abort(403)


@dataclass
class StepRow:
    title: str
    kind: str
    assign: str
    mode: str
    deadline: str
    returns: str
    branch: bool = False


def mode_label(mode: Mode, quorum: int | None) -> str:
    if mode is Mode.quorum:
        return labels.pick((f"{quorum}人通过", f"{quorum} approvals"))
    return labels.pick(MODES[mode])


def _department(code: str | None) -> str:
    if code == "$submitter":
        return labels.pick(("发起单位", "submitting unit"))
    if code == "$submitter_group":
        return labels.pick(("发起单位所属集团", "submitting group"))
    dept = services().store.organisation.departments.get(code or "")
    return labels.text(dept.name) if dept else (code or "")


def _role(code: str | None) -> str:
    name = services().store.organisation.roles.get(code or "")
    return labels.text(name) if name else (code or "")


def assign_label(spec: ProcessSpec, a: AssignSpec | None) -> str:
    if a is None:
        return ""

    def one(department, department_field, role) -> str:
        if department_field:
            f = spec.field_map.get(department_field)
            where = labels.pick((f"表单「{labels.text(f.label) if f else department_field}」所选单位",
                                 f"unit in field “{labels.text(f.label) if f else department_field}”"))
        else:
            where = _department(department)
        return f"{where} · {_role(role)}"

    if not a.rule:
        return one(a.department, a.department_field, a.role)
    from ..engine.diagram import describe_condition
    parts = []
    for r in a.rule:
        target = one(r.department, r.department_field, r.role)
        if r.condition is None:
            parts.append(labels.pick((f"否则 → {target}", f"otherwise → {target}")))
        else:
            cond = describe_condition(r.condition.source, spec.field_map, labels.english())
            parts.append(labels.pick((f"若 {cond} → {target}", f"if {cond} → {target}")))
    return labels.semicolon().join(parts)


def deadline_label(d: DeadlineSpec | None) -> str:
    if d is None:
        return ""
    text = labels.pick((f"{d.working_days} 个工作日", f"{d.working_days} working days"))
    if d.deemed_consent:
        text += labels.pick(("（逾期视为同意）", " (deemed consent)"))
    return text


def step_rows(spec: ProcessSpec) -> list[StepRow]:
    rows = []
    for step in spec.steps.values():
        returns = labels.joined(labels.text(spec.steps[t].title) for t in step.return_to if t in spec.steps)
        kind = labels.pick(STEP_TYPES[step.type])
        if step.type is StepType.task:
            rows.append(StepRow(labels.text(step.title), kind, assign_label(spec, step.assign),
                                mode_label(step.mode, step.quorum), deadline_label(step.deadline), returns))
        elif step.type is StepType.parallel:
            rows.append(StepRow(labels.text(step.title), kind, "", "", "", returns))
            for b in step.branches:
                rows.append(StepRow(labels.text(b.title), labels.pick(("分支", "branch")),
                                    assign_label(spec, b.assign), mode_label(b.mode, b.quorum),
                                    deadline_label(b.deadline), "", branch=True))
        elif step.type is StepType.subprocess:
            rows.append(StepRow(labels.text(step.title), kind, step.process or "", "", "", ""))
        else:
            outcome = labels.status_label(step.outcome.value) if step.outcome else ""
            rows.append(StepRow(labels.text(step.title), kind, outcome, "", "", ""))
    return rows


@bp.get("/definitions")
@login_required
def index():
    _reader()
    svc = services()
    with svc.db.read() as s:
        rows = s.scalars(select(ProcessDefinition).order_by(
            ProcessDefinition.key, ProcessDefinition.revision.desc())).all()
    grouped: dict[str, list[ProcessDefinition]] = {}
    for row in rows:
        grouped.setdefault(row.key, []).append(row)
    return render_template("definitions/index.html", grouped=grouped)


@bp.get("/definitions/<key>")
@login_required
def detail(key: str):
    _reader()
    svc = services()
    revision = request.args.get("rev", type=int)
    with svc.db.read() as s:
        q = select(ProcessDefinition).where(ProcessDefinition.key == key)
        q = q.where(ProcessDefinition.revision == revision) if revision else q.where(
            ProcessDefinition.is_latest.is_(True))
        row = s.scalars(q).first()
        if row is None:
            abort(404)
        spec = svc.store.spec(s, row.id)
        versions = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                             .order_by(ProcessDefinition.revision.desc())).all()
    return render_template("definitions/detail.html", row=row, spec=spec, versions=versions,
                           steps=step_rows(spec), diagram=mermaid(spec, english=labels.english()))


@bp.get("/definitions/validate")
@login_required
def validate():
    _reader()
    directory = Path(services().store.directory)
    catalogue = load_catalogue([directory])
    # File names only: the server's directory layout is nobody's business on a page.
    problems = [(Path(p.file).name, _without_paths(str(p.message), directory)) for p in catalogue.problems]
    return render_template("definitions/validate.html", problems=problems,
                           problem_lines=[p.line for p in catalogue.problems],
                           problem_keys=[p.key for p in catalogue.problems], directory=directory.name,
                           specs=sorted(catalogue.specs.values(), key=lambda s: s.key))


def _without_paths(message: str, directory: Path) -> str:
    """A loader message with any absolute path cut down to the file name."""
    for prefix in {str(directory.resolve()), str(directory)}:
        message = message.replace(prefix + "/", "").replace(prefix, directory.name)
    return re.sub(r"(?<![\w.])/(?:[^/\s:'\"]+/)+([^/\s:'\"]+)", r"\1", message)
