"""The action panel of an instance page: which buttons this person sees right now.

Built from the same checks the engine applies (`Runtime.may_decide` on an `InstanceState` made
from the page's rows), so the page never offers what the service would refuse — but it is only a
preview: the POST goes through `Workflow.act`, which checks again under the instance lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..container import services
from ..engine.organisation import Organisation
from ..engine.permissions import counts_as_decision
from ..engine.runtime import Runtime
from ..engine.schema import StepType
from ..engine.spec import BUILTIN_TRIGGERS, ProcessSpec, StepSpec
from ..engine.state import InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from ..models import Task, User
from ..services.directory import SqlDirectory, load_actor
from ..services import queries
from ..services.queries import InstanceView
from . import fields as field_forms
from . import labels
from .current import SignedIn

ADD_POSITIONS = (("before", "前加签（先于我处理）", "Before me"),
                 ("after", "后加签（在我之后处理）", "After me"),
                 ("alongside", "并加签（与我同时处理）", "Alongside me"))


@dataclass
class DecidePanel:
    """One task this person may decide now."""

    task: Task
    step: StepSpec
    branch_title: str
    resubmit: bool                                   # 退回 to the submitter: 重新提交
    approve: bool = False
    reject: bool = False
    customs: list[tuple[str, str]] = field(default_factory=list)   # (trigger, button label)
    returns: list[tuple[str, str]] = field(default_factory=list)   # (step id, step title)
    opinion_required: frozenset[str] = frozenset()
    editable: list[str] = field(default_factory=list)
    release: bool = False
    form: object = None                              # the editable fields (set by the view)
    fields: list = field(default_factory=list)


@dataclass
class ActionPanel:
    decide: list[DecidePanel] = field(default_factory=list)
    claim: list[Task] = field(default_factory=list)
    resolve: list[Task] = field(default_factory=list)
    remove: list[Task] = field(default_factory=list)
    withdraw: bool = False
    urge: bool = False
    comment: bool = False
    cc: bool = False
    note: str | None = None                          # why this person has nothing to decide

    @property
    def any_people(self) -> bool:
        return bool(self.decide) or self.cc


def engine_state(view: InstanceView) -> InstanceState:
    inst, spec = view.instance, view.spec
    tasks = [TaskState(step=t.step, branch=t.branch, round=t.round, seq=t.seq, origin=Origin(t.origin),
                       status=TaskStatus(t.status), department=t.department, role=t.role,
                       assignee=t.assignee_id, delegate=t.delegate_id, added_by=t.added_by_id,
                       decision=t.decision, opinion=t.opinion, acted_by=t.acted_by_id,
                       completed_at=t.completed_at, deadline_days=t.deadline_days, id=t.id)
             for t in view.tasks if t.round == inst.round]
    decided: dict[int, set[str]] = {}
    if spec.rules.distinct_deciders:  # as Workflow._state: owners and stand-ins, every round
        for t in view.tasks:
            if t.status == "done" and counts_as_decision(t.decision):
                for person in {t.assignee_id, t.acted_by_id} - {None}:
                    decided.setdefault(person, set()).add(t.step)
    return InstanceState(spec=spec, status=InstanceStatus(inst.status), current_step=inst.current_step,
                         round=inst.round, data=dict(inst.form_data or {}), submitter=inst.submitter_id,
                         submitter_department=inst.submitter_department, tasks=tasks, id=inst.id,
                         parent_id=inst.parent_id,
                         decided_steps={u: frozenset(s) for u, s in decided.items()})


def _decide(spec: ProcessSpec, row: Task, user_id: int) -> DecidePanel:
    step = spec.steps[row.step]
    branch = step.branch(row.branch)
    title = labels.text(branch.title) if branch else ""
    if row.origin == Origin.start.value:
        return DecidePanel(row, step, title, resubmit=True,
                           editable=field_forms.editable_at(spec, step.id, resubmit=True))
    triggers = spec.triggers_from(step.id)
    return DecidePanel(
        row, step, title, resubmit=False, approve="approve" in triggers, reject="reject" in triggers,
        customs=[(t, labels.action_label(t, spec)) for t in triggers if t not in BUILTIN_TRIGGERS],
        returns=[(sid, labels.text(spec.steps[sid].title)) for sid in step.return_to],
        opinion_required=step.opinion_required, editable=field_forms.editable_at(spec, step.id),
        release=row.origin == Origin.queue.value and row.assignee_id == user_id)


def build_panel(s: Session, view: InstanceView, user: SignedIn, org: Organisation) -> ActionPanel:
    inst, spec = view.instance, view.spec
    panel = ActionPanel()
    if inst.status != InstanceStatus.running.value:
        return panel
    _user, actor = load_actor(s, user.id)
    runtime = Runtime(SqlDirectory(s, org))
    state = engine_state(view)
    rows = {t.id: t for t in view.tasks}
    for ts in state.tasks:
        if ts.status is not TaskStatus.open:
            continue
        row = rows[ts.id]
        if ts.delegate == user.id:
            panel.resolve.append(row)
            continue
        if runtime.may_decide(state, ts, actor) is not None:
            continue
        if ts.assignee is None:
            panel.claim.append(row)
        else:
            panel.decide.append(_decide(spec, row, user.id))
    panel.remove = [rows[t.id] for t in state.tasks
                    if t.active and t.origin is Origin.added and t.added_by == user.id]
    is_submitter = inst.submitter_id == user.id
    acted = any(t.status is TaskStatus.done and t.origin is not Origin.start for t in state.tasks)
    step = spec.steps.get(inst.current_step)
    panel.withdraw = (is_submitter and spec.rules.withdraw and not acted
                      and step is not None and step.type is not StepType.subprocess)
    panel.urge = is_submitter and any(t.status is TaskStatus.open and t.origin is not Origin.start
                                      for t in state.tasks)
    # read-only viewers (合规审查, audit) neither comment nor copy others in
    panel.comment = panel.cc = queries.takes_part(s, user.id, user.memberships, inst)
    if is_submitter and not panel.decide:
        panel.note = labels.pick(("您是发起人，不能审批自己的申请", "You started this application and cannot approve it"))
    return panel


def people_choices(s: Session, *, exclude: set[int]) -> list[tuple[int, str]]:
    """Active people (not administrator accounts) for 转办 / 委派 / 加签 / 抄送, with their units."""
    org = services().store.organisation
    users = s.scalars(select(User).where(User.is_active.is_(True), User.admin_role.is_(None))
                      .order_by(User.display_name, User.id)).all()
    out = []
    for u in users:
        if u.id in exclude:
            continue
        units = dict.fromkeys(labels.text(org.departments[m.department_code].name)
                              if m.department_code in org.departments else m.department_code
                              for m in u.memberships)
        out.append((u.id, u.display_name + labels.paren(labels.joined(units))))
    return out
