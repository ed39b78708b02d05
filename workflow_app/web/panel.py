"""The action panel of an instance page: which buttons this person sees right now.

Built from the same checks the engine applies (`Runtime.may_decide` on an `InstanceState` made
from the page's rows), so the page never offers what the service would refuse — but it is only a
preview: the POST goes through `Workflow.act`, which checks again under the instance lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..container import services
from ..engine.organisation import Organisation
from ..engine.clock_actions import pending_supplement
from ..engine.permissions import counts_as_decision, review_refusal
from ..engine.runtime import Runtime
from ..engine.schema import StepType
from ..engine.spec import BUILTIN_TRIGGERS, ProcessSpec, StepSpec
from ..engine.state import InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from ..models import Task, User
from ..services import substitutions
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
    timed: bool = False                              # the task runs on a clock (has a due date)
    paused: bool = False                             # its clock is stopped (补正 / expert review)
    supplement: bool = False                         # may ask for 补正 now
    pause: bool = False                              # may stop the clock (expert review, hearing)
    resume: bool = False                             # may restart it
    requested_days: int | None = None                # 延期: the days asked for and not granted yet
    form: object = None                              # the editable fields (set by the view)
    fields: list = field(default_factory=list)
    on_behalf_of: int | None = None                  # 代为处理: the absent colleague's id
    on_behalf_name: str = ""


@dataclass
class ActionPanel:
    decide: list[DecidePanel] = field(default_factory=list)
    claim: list[Task] = field(default_factory=list)
    resolve: list[Task] = field(default_factory=list)
    remove: list[Task] = field(default_factory=list)
    grant: list[tuple[Task, int | None]] = field(default_factory=list)  # 批准延期: (task, days asked)
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
                       completed_at=t.completed_at, deadline_days=t.deadline_days, id=t.id,
                       due_at=t.due_at, due_provisional=bool(t.due_provisional), paused_at=t.paused_at)
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


def requested_extensions(view: InstanceView) -> dict[int, int]:
    """延期 asked for and not granted yet: task id -> working days asked (the latest request)."""
    out: dict[int, int] = {}
    for e in view.events:
        if e.action == "request_extension" and e.task_id is not None:
            out[e.task_id] = int((e.details or {}).get("days") or 0)
        elif e.action == "grant_extension" and e.task_id is not None:
            out.pop(e.task_id, None)
    return out


def _clock_options(d: DecidePanel, state: InstanceState, supplement_awaited: bool,
                   requested: dict[int, int]) -> None:
    """What the assignee may do with the clock of a decide card, by the engine's rules
    (`clock_actions`): 补正 while no supplement is awaited and no clock of the step is stopped;
    pause / resume one's own clock; ask for 延期 while it has a due date."""
    if d.resubmit:
        return
    task = state.task(d.task.id)
    if task is None:
        return
    d.timed = task.due_at is not None
    d.paused = task.paused_at is not None
    step_paused = any(t.paused_at is not None for t in state.tasks if t.status is TaskStatus.open
                      and t.step == task.step and t.origin is not Origin.start)
    d.supplement = not supplement_awaited and not step_paused
    d.pause = d.timed and not d.paused
    d.resume = d.paused and not supplement_awaited
    d.requested_days = requested.get(task.id)


def build_panel(s: Session, view: InstanceView, user: SignedIn, org: Organisation,
                now: datetime | None = None) -> ActionPanel:
    inst, spec = view.instance, view.spec
    panel = ActionPanel()
    if inst.status != InstanceStatus.running.value:
        return panel
    now = now or datetime.now(timezone.utc)
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
    own = {d.task.id for d in panel.decide}
    for absent_id, absent_name in substitutions.standing_in_for(s, user.id, now=now):
        # 代为处理: tasks assigned to a colleague this person stands in for, decided with the
        # engine's checks for BOTH of them (permissions.py); the service checks again on POST.
        _absent, absent = load_actor(s, absent_id)
        stand_in = replace(actor, on_behalf_of=absent_id, on_behalf_memberships=absent.memberships)
        for ts in state.tasks:
            if ts.status is TaskStatus.open and ts.assignee == absent_id and ts.id not in own \
                    and runtime.may_decide(state, ts, stand_in) is None:
                card = _decide(spec, rows[ts.id], user.id)
                card.on_behalf_of, card.on_behalf_name, card.release = absent_id, absent_name, False
                panel.decide.append(card)
                own.add(ts.id)
    requested = requested_extensions(view)
    supplement_awaited = pending_supplement(state) is not None
    for d in panel.decide:
        _clock_options(d, state, supplement_awaited, requested)
    panel.grant = [(rows[t.id], requested.get(t.id)) for t in state.tasks
                   if t.status is TaskStatus.open and t.origin is not Origin.start and t.due_at is not None
                   and (t.department, "head") in actor.memberships
                   and review_refusal(state, t, (user.id,), runtime.directory) is None]
    panel.remove = [rows[t.id] for t in state.tasks
                    if t.active and t.origin is Origin.added and t.added_by == user.id]
    is_submitter = inst.submitter_id == user.id
    acted = any(t.status is TaskStatus.done and t.origin is not Origin.start for t in state.tasks)
    step = spec.steps.get(inst.current_step)
    panel.withdraw = (is_submitter and spec.rules.withdraw and not acted
                      and step is not None and step.type is not StepType.subprocess)
    # 催办: the submitter or a member of the coordinating body (the engine's rule, `_do_urge`)
    coordinator = any(d in set(org.coordinators()) for d, _r in user.memberships)
    panel.urge = (is_submitter or coordinator) and any(
        t.status is TaskStatus.open and t.origin is not Origin.start for t in state.tasks)
    # read-only viewers (合规审查, audit) neither comment nor copy others in
    panel.comment = panel.cc = queries.takes_part(s, user.id, user.memberships, inst,
                                                      frozenset(org.coordinators()))
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
