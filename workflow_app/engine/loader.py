"""YAML -> validated, compiled `ProcessSpec`.

Every problem is reported as `FILE:LINE: KEY: message` (all of them at once, not only the first),
so `flask defs validate` can list them for the IT staff who wrote the file. The content hash of
the file (SHA-256 of its text with LF line endings) is the version identity: the same hash an
auditor gets from `sha256sum` on the file kept in the database.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError

from . import safe_yaml
from .conditions import ConditionSyntaxError, compile_condition
from .errors import DefinitionError, Problem
from .organisation import Organisation, load_organisation
from .schema import Assign, Deadline, ProcessDef, StepType
from .spec import (BUILTIN_TRIGGERS, GENERIC_ACTIONS, AssignSpec, BranchSpec, DeadlineSpec,
                   FieldSpec, ProcessSpec, RuleSpec, RungSpec, StepSpec, TransitionSpec)

ORGANISATION_FILE = "organisation.yaml"
SPECIAL_DEPARTMENTS = ("$submitter", "$submitter_group")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def load_text(text: str | bytes, source: str = "<string>",
              org: Organisation | None = None) -> ProcessSpec:
    """Parse, validate and compile one definition; raise DefinitionError listing every problem."""
    located = safe_yaml.load(text, source)
    raw_text = text.decode("utf-8") if isinstance(text, bytes) else text
    try:
        parsed = ProcessDef.model_validate(located.data)
    except ValidationError as exc:
        raise DefinitionError(_pydantic_problems(located, exc.errors())) from None
    return _Compiler(parsed, located, raw_text, org).compile()


def load_file(path: str | Path, org: Organisation | None = None) -> ProcessSpec:
    path = Path(path)
    return load_text(path.read_bytes(), str(path), org)


@dataclass
class Catalogue:
    """Everything in a definitions directory: the organisation and each process by key."""

    organisation: Organisation
    specs: dict[str, ProcessSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


SUFFIXES = (".yaml", ".yml")


def definition_files(paths: list[Path]) -> list[Path]:
    """Process files: the `*.yaml` and `*.yml` files of each folder (not the organisation file),
    and each file named directly."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in SUFFIXES and f.is_file()
                                and f.stem != Path(ORGANISATION_FILE).stem))
        else:
            files.append(p)
    return files


def load_catalogue(paths: list[str | Path], organisation_file: str | Path | None = None) -> Catalogue:
    """Load the organisation and every process file; collect problems instead of stopping."""
    paths = [Path(p) for p in paths]
    org_path = Path(organisation_file) if organisation_file else next(
        (p / ORGANISATION_FILE for p in paths if p.is_dir() and (p / ORGANISATION_FILE).exists()),
        None)
    if org_path is None:
        first = paths[0] if paths else Path("process_defs")
        org_path = (first if first.is_dir() else first.parent) / ORGANISATION_FILE
    problems: list[Problem] = []
    try:
        org = load_organisation(org_path)
    except FileNotFoundError:
        org = Organisation()
        problems.append(Problem(str(org_path), 1, "<file>", "organisation file not found"))
    except DefinitionError as exc:
        org = Organisation()
        problems.extend(exc.problems)
    catalogue = Catalogue(org, problems=problems)
    files = definition_files(paths)
    if not files:
        where = ", ".join(str(p) for p in paths) or "."
        catalogue.problems.append(Problem(where, 1, "<file>", "no process definitions (*.yaml, *.yml) found"))
    for path in files:
        try:
            spec = load_file(path, org if org.departments else None)
        except FileNotFoundError:
            catalogue.problems.append(Problem(str(path), 1, "<file>", "file not found"))
            continue
        except DefinitionError as exc:
            catalogue.problems.extend(exc.problems)
            continue
        if spec.key in catalogue.specs:
            catalogue.problems.append(Problem(str(path), 1, "key",
                                              f"process key {spec.key!r} also defined in "
                                              f"{catalogue.specs[spec.key].source}"))
            continue
        catalogue.specs[spec.key] = spec
    known = {**_sibling_specs(paths, catalogue), **catalogue.specs}
    for spec in catalogue.specs.values():
        for step in spec.steps.values():
            if step.type is not StepType.subprocess:
                continue
            child = known.get(step.process)  # type: ignore[arg-type]
            if child is None:
                catalogue.problems.append(Problem(
                    spec.source, step.line, safe_yaml.key_path(("steps", step.index, "process")),
                    f"unknown process {step.process!r}"))
                continue
            catalogue.problems.extend(_resume_problems(spec, step, child))
    return catalogue


def _resume_problems(spec: ProcessSpec, step: StepSpec, child: ProcessSpec) -> list[Problem]:
    """`resume_at` names steps of the child where the parent may go on: real steps the child
    waits in (not its start, which it leaves at once, nor an end, which resumes the parent anyway)."""
    found = []
    for j, name in enumerate(step.resume_at):
        target = child.steps.get(name)
        if target is None:
            message = f"unknown step {name!r} of process {child.key!r}"
        elif target.type in (StepType.start, StepType.end):
            message = (f"{name!r} is the {target.type.value} step of {child.key!r}; name a step "
                       f"the child waits in")
        else:
            continue
        found.append(Problem(spec.source, step.line,
                             safe_yaml.key_path(("steps", step.index, "resume_at", j)), message))
    return found


def _sibling_specs(paths: list[Path], catalogue: Catalogue) -> dict[str, ProcessSpec]:
    """The other definitions beside files validated on their own, so that checking one file
    (`flask defs validate process_defs/lifecycle.yaml`) does not report its sub-process as
    unknown, and its `resume_at` is checked against the real child. Their own problems are not
    reported: nobody asked to check them."""
    loaded = {Path(s.source).resolve() for s in catalogue.specs.values()}
    folders = sorted({p.parent for p in paths if p.is_file()})
    specs: dict[str, ProcessSpec] = {}
    for f in definition_files(folders):
        if f.resolve() in loaded:
            continue
        try:
            spec = load_file(f)
        except (DefinitionError, OSError):
            continue
        specs.setdefault(spec.key, spec)
    return specs


def _data_path(data: object, loc: tuple, missing: bool) -> tuple[tuple, bool]:
    """The part of a pydantic error location that names real keys/indexes of the document, and
    whether pydantic added segments of its own (union members and validators such as
    `constrained-str`, `list[constrained-str]`, `Assign`): users wrote none of those, so they are
    left out of the KEY shown and of the line lookup."""
    path: list = []
    tagged = False
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            tagged = tagged or part != loc[-1] or not missing
            continue
        path.append(part)
    if missing and isinstance(loc[-1], str) and (not path or path[-1] != loc[-1]):
        path.append(loc[-1])  # the key that should be there
    return tuple(path), tagged


def _pydantic_problems(located: safe_yaml.Located, errors: list) -> list[Problem]:
    """One problem per key. A union (e.g. `source: step | [steps]`) reports one error per member:
    when one member got further into the value, keep its (deeper) errors only; join the messages
    of errors at the same key."""
    found: dict[tuple, list[str]] = {}
    union_only: dict[tuple, bool] = {}
    for err in errors:
        loc = tuple(err["loc"])
        path, tagged = _data_path(located.data, loc, err["type"] == "missing")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key missing"
        messages = found.setdefault(path, [])
        if message not in messages:
            messages.append(message)
        union_only[path] = union_only.get(path, True) and tagged
    kept = [p for p in found
            if not (union_only[p] and any(q != p and q[:len(p)] == p for q in found))]
    return [Problem(located.source, located.line_of(p), safe_yaml.key_path(p), "; or ".join(found[p]))
            for p in kept]


class _Compiler:
    """Cross-reference checks and compilation of one parsed definition."""

    def __init__(self, parsed: ProcessDef, located: safe_yaml.Located, text: str,
                 org: Organisation | None):
        self.d = parsed
        self.loc = located
        self.text = text
        self.org = org
        self.problems: list[Problem] = []
        self.field_names = {f.name for f in parsed.fields}

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.loc.source, self.loc.line_of(path),
                                     safe_yaml.key_path(path), message))

    def condition(self, source: str | None, path: tuple):
        if source is None:
            return None
        try:
            return compile_condition(source, self.field_names)
        except ConditionSyntaxError as exc:
            self.problem(path, f"condition {source!r}: {exc}")
            return None

    def compile(self) -> ProcessSpec:
        d = self.d
        fields = self._fields()
        steps = self._steps()
        transitions = self._transitions(steps)
        # The graph checks run even when references are broken, so that one run lists every
        # problem of the file: on the transitions that do connect known steps. Reachability is
        # only judged on a complete graph (a typo in one `dest` would otherwise also report the
        # intended step as unreachable).
        linked = tuple(t for t in transitions if t.source in steps and t.dest in steps)
        spec = ProcessSpec(
            key=d.key, version=d.version, title=d.title, subject=d.subject,
            description=d.description, rules=d.rules, fields=tuple(fields),
            steps=MappingProxyType(steps), transitions=linked,
            content_hash=content_hash(self.text), source=self.loc.source, source_text=self.text,
            title_field=d.title_field)
        if any(s.type is StepType.start for s in steps.values()):
            self._graph_checks(spec, complete=len(linked) == len(transitions),
                               leaving={t.source for t in transitions})
        if self.problems:
            raise DefinitionError(self.problems)
        return spec

    def _fields(self) -> list[FieldSpec]:
        seen: set[str] = set()
        out = []
        step_ids = {s.id for s in self.d.steps}
        step_types = {s.id: s.type for s in self.d.steps}
        for i, f in enumerate(self.d.fields):
            if f.name in seen:
                self.problem(("fields", i, "name"), f"duplicate field {f.name!r}")
            seen.add(f.name)
            for j, s in enumerate(f.editable_at):
                if s not in step_ids:
                    self.problem(("fields", i, "editable_at", j), f"unknown step {s!r}")
            for j, s in enumerate(f.required_at):
                if s not in step_types:
                    self.problem(("fields", i, "required_at", j), f"unknown step {s!r}")
                elif step_types[s] not in (StepType.task, StepType.parallel):
                    self.problem(("fields", i, "required_at", j),
                                 f"{s!r} is a {step_types[s].value} step; required_at names task or "
                                 f"parallel steps (use 'required' for the start step)")
            out.append(FieldSpec(f.name, f.type, f.label, f.required, f.unit, tuple(f.choices or ()),
                                 f.min, f.max, f.max_length, frozenset(f.editable_at),
                                 frozenset(f.required_at)))
        if self.d.title_field and self.d.title_field not in seen:
            self.problem(("title_field",), f"unknown field {self.d.title_field!r}")
        return out

    def _assign(self, a: Assign, path: tuple) -> AssignSpec:
        rows = []
        if a.rule is not None:
            for i, row in enumerate(a.rule):
                if row.when is None and i != len(a.rule) - 1:
                    self.problem(path + ("rule", i, "when"), "only the last row may omit 'when'")
                if (row.department is None) == (row.department_field is None):
                    self.problem(path + ("rule", i), "give exactly one of 'department' or 'department_field'")
                self._check_department(row.department, row.department_field, path + ("rule", i))
                self._check_role(row.role, path + ("rule", i, "role"))
                rows.append(RuleSpec(self.condition(row.when, path + ("rule", i, "when")),
                                     row.department, row.department_field, row.role))
        else:
            self._check_department(a.department, a.department_field, path)
            self._check_role(a.role, path + ("role",))
        return AssignSpec(a.department, a.department_field, a.role, tuple(rows))

    def _check_department(self, dept: str | None, dept_field: str | None, path: tuple) -> None:
        if dept_field is not None and dept_field not in self.field_names:
            self.problem(path + ("department_field",), f"unknown field {dept_field!r}")
        if dept is None or dept in SPECIAL_DEPARTMENTS or self.org is None:
            return
        if dept not in self.org.departments:
            self.problem(path + ("department",), f"unknown department {dept!r}")

    def _check_role(self, role: str | None, path: tuple) -> None:
        if role and self.org is not None and role not in self.org.roles:
            self.problem(path, f"unknown role {role!r}")

    def _deadline(self, dl: Deadline | None, path: tuple, in_branch: bool) -> DeadlineSpec | None:
        if dl is None:
            return None
        if dl.deemed_consent and not in_branch:
            self.problem(path + ("deemed_consent",), "deemed consent (逾期视为同意) applies to parallel branches only")
        rungs = []
        for i, r in enumerate(dl.escalation):
            notify = r.notify if isinstance(r.notify, str) else self._assign(r.notify, path + ("escalation", i, "notify"))
            rungs.append(RungSpec(r.at_days, notify))
        return DeadlineSpec(dl.working_days, dl.deemed_consent, tuple(rungs))

    def _steps(self) -> dict[str, StepSpec]:
        steps: dict[str, StepSpec] = {}
        starts = [i for i, s in enumerate(self.d.steps) if s.type is StepType.start]
        if len(starts) != 1:
            self.problem(("steps",), f"exactly one start step is needed, found {len(starts)}")
        if not any(s.type is StepType.end for s in self.d.steps):
            self.problem(("steps",), "at least one end step is needed")
        for i, s in enumerate(self.d.steps):
            path = ("steps", i)
            if s.id in steps:
                self.problem(path + ("id",), f"duplicate step {s.id!r}")
            branches = []
            seen_branches: set[str] = set()
            for j, b in enumerate(s.branches or ()):
                bpath = path + ("branches", j)
                if b.id in seen_branches:
                    self.problem(bpath + ("id",), f"duplicate branch {b.id!r}")
                seen_branches.add(b.id)
                if b.mode.value == "quorum" and not b.quorum:
                    self.problem(bpath + ("quorum",), "mode quorum needs 'quorum'")
                branches.append(BranchSpec(b.id, b.title, self._assign(b.assign, bpath + ("assign",)),
                                           b.mode, b.quorum, self._deadline(b.deadline, bpath + ("deadline",), True)))
            for j, action in enumerate(s.opinion_required):
                if action not in BUILTIN_TRIGGERS + GENERIC_ACTIONS and action not in self._custom_triggers():
                    self.problem(path + ("opinion_required", j), f"unknown action {action!r}")
            for field_name, src in s.inputs.items():
                if src not in self.field_names:
                    self.problem(path + ("inputs", field_name), f"unknown field {src!r}")
            steps[s.id] = StepSpec(
                id=s.id, type=s.type, title=s.title, index=i, line=self.loc.line_of(path),
                assign=self._assign(s.assign, path + ("assign",)) if s.assign else None,
                mode=s.mode, quorum=s.quorum,
                deadline=self._deadline(s.deadline, path + ("deadline",), False),
                opinion_required=frozenset(s.opinion_required), return_to=tuple(s.return_to),
                bulk_approve=s.bulk_approve, branches=tuple(branches), process=s.process,
                inputs=MappingProxyType(dict(s.inputs)), resume_at=tuple(s.resume_at),
                outcome=s.outcome)
        return steps

    def _custom_triggers(self) -> set[str]:
        return {t.trigger for t in self.d.transitions if t.trigger not in BUILTIN_TRIGGERS}

    def _transitions(self, steps: dict[str, StepSpec]) -> list[TransitionSpec]:
        out: list[TransitionSpec] = []
        for i, t in enumerate(self.d.transitions):
            path = ("transitions", i)
            sources = [t.source] if isinstance(t.source, str) else t.source
            if t.trigger in GENERIC_ACTIONS:
                self.problem(path + ("trigger",), f"{t.trigger!r} is a built-in action and needs no transition")
            for j, src in enumerate(sources):
                spath = path + ("source",) + ((j,) if not isinstance(t.source, str) else ())
                step = steps.get(src)
                if step is None:
                    self.problem(spath, f"unknown step {src!r}")
                    continue
                if step.type is StepType.end:
                    self.problem(spath, f"end step {src!r} cannot have outgoing transitions")
                elif step.type is StepType.start and t.trigger != "submit":
                    self.problem(path + ("trigger",), "the start step leaves only by 'submit'")
                elif step.type is not StepType.start and t.trigger == "submit":
                    self.problem(path + ("trigger",), "'submit' leaves the start step only")
                elif step.type is StepType.subprocess and t.trigger not in ("approve", "reject"):
                    self.problem(path + ("trigger",), "a subprocess step leaves by 'approve' or 'reject' (the child's outcome)")
                rows = ([(t.when, t.dest, path)] if t.dest is not None else
                        [(r.when, r.dest, path + ("decide", k)) for k, r in enumerate(t.decide or ())])
                for k, (when, dest, rpath) in enumerate(rows):
                    if t.decide is not None and when is None and k != len(rows) - 1:
                        self.problem(rpath + ("when",), "only the last row may omit 'when'")
                    if dest not in steps:
                        self.problem(rpath + ("dest",), f"unknown step {dest!r}")
                    elif steps[dest].type is StepType.start:
                        self.problem(rpath + ("dest",), "use 退回 (return_to) to go back to the start step")
                    out.append(TransitionSpec(t.trigger, src, dest, self.condition(when, rpath + ("when",)),
                                              t.label, len(out)))
        return out

    def _graph_checks(self, spec: ProcessSpec, complete: bool = True,
                      leaving: set[str] | None = None) -> None:
        index = {s.id: i for i, s in enumerate(self.d.steps)}
        leaving = leaving if leaving is not None else {t.source for t in spec.transitions}
        reachable = {spec.start_step.id}
        todo = [spec.start_step.id]
        while todo:
            current = todo.pop()
            for t in spec.transitions:
                if t.source == current and t.dest not in reachable:
                    reachable.add(t.dest)
                    todo.append(t.dest)
        for step in spec.steps.values():
            path = ("steps", index[step.id])
            if complete and step.id not in reachable:
                self.problem(path + ("id",), f"step {step.id!r} cannot be reached from the start")
            if step.type is not StepType.end and step.id not in leaving:
                self.problem(path + ("id",), f"step {step.id!r} has no way out (no transition leaves it)")
            elif step.type is StepType.subprocess:
                # The child may end approved or not (rejected, withdrawn, void): the parent must
                # know where to go either way, or the child's last action could not complete.
                missing = [t for t in ("approve", "reject") if t not in spec.triggers_from(step.id)]
                if missing:
                    self.problem(path + ("id",), f"sub-process step {step.id!r} needs a "
                                 f"{' and an '.join(repr(m) for m in missing)} transition")
            earlier = spec.earlier_steps(step.id) if step.return_to else frozenset()
            for j, target in enumerate(step.return_to):
                if target not in spec.steps:
                    self.problem(path + ("return_to", j), f"unknown step {target!r}")
                elif complete and (target not in earlier or target == step.id):
                    self.problem(path + ("return_to", j), f"{target!r} is not an earlier step")
                elif spec.steps[target].type not in (StepType.start, StepType.task, StepType.parallel):
                    self.problem(path + ("return_to", j), f"cannot return to a {spec.steps[target].type.value} step")
            if step.return_to and not step.is_human:
                self.problem(path + ("return_to",), "only task and parallel steps can return")
            if step.bulk_approve and step.type is not StepType.task:
                self.problem(path + ("bulk_approve",), "bulk approval is for task steps")
