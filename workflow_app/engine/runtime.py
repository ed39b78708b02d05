"""Actions on running instances: the functional core of ParkFlow.

`Runtime.act(instance, request, actor)` checks who may act, applies the action to the plain-data
`InstanceState` in place, and returns an `Effect`: which tasks changed or were added, how the
instance moved, whether a sub-process must start, and exactly ONE trail entry describing the
whole action (cancelled tasks, new round, edits) — one human action, one event. The service layer
loads the state, calls this, and writes the effect in one transaction.

Semantics of return and withdraw inside 会签 and parallel groups are documented in
docs/process-definitions.md and tested in tests/engine/test_runtime.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from . import forms
from .approval import Verdict, evaluate_step
from .errors import Conflict, Forbidden, InvalidAction
from .machine import machine_for
from .routing import Directory, route
from .schema import StepType
from .spec import BUILTIN_TRIGGERS, ProcessSpec, StepSpec
from .state import Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus

MAX_OPINION = 5000
DECISIONS = ("approve", "reject")
ADD_POSITIONS = ("before", "after", "alongside")


@dataclass(frozen=True)
class Request:
    """What a person asks for. `task_id` names the task acted on (not needed for instance-level
    actions: withdraw, void, comment, cc, urge)."""

    action: str
    task_id: int | None = None
    opinion: str | None = None
    target: str | None = None          # 退回: the step to return to
    user: int | None = None            # 转办 / 委派 / 加签 / 减签 (task id for remove_signer via task_id)
    users: tuple[int, ...] = ()        # 抄送
    position: str | None = None        # 加签: before / after / alongside
    data: dict | None = None           # field edits allowed at this step


@dataclass
class TrailEntry:
    action: str
    from_step: str | None
    to_step: str | None
    opinion: str | None = None
    task_id: int | None = None
    details: dict = field(default_factory=dict)


@dataclass
class ChildStart:
    process: str
    data: dict


@dataclass
class Effect:
    trail: TrailEntry
    changed: list[TaskState] = field(default_factory=list)
    added: list[TaskState] = field(default_factory=list)
    moved: bool = False
    ended: bool = False
    data_changed: bool = False
    start_child: ChildStart | None = None
    cc: tuple[int, ...] = ()
    notify: list[TaskState] = field(default_factory=list)  # tasks whose people should hear of it


class Runtime:
    def __init__(self, directory: Directory):
        self.directory = directory

    # -- starting -------------------------------------------------------------------------
    def start(self, spec: ProcessSpec, raw_data: dict, actor: Actor, submitter_department: str,
              now: datetime) -> tuple[InstanceState, Effect]:
        if (submitter_department, "submitter") not in actor.memberships and not actor.system:
            raise Forbidden(f"you do not submit for {submitter_department}")
        data = forms.clean(spec, raw_data, [f.name for f in spec.fields])
        inst = InstanceState(spec=spec, status=InstanceStatus.running, current_step=spec.start_step.id,
                             round=1, data=data, submitter=actor.user_id,
                             submitter_department=submitter_department)
        effect = Effect(TrailEntry("start", None, spec.start_step.id))
        self._move(inst, "submit", effect, now)
        effect.trail.details["fields"] = sorted(data)
        return inst, effect

    # -- acting ---------------------------------------------------------------------------
    def act(self, inst: InstanceState, req: Request, actor: Actor, now: datetime) -> Effect:
        if inst.status is not InstanceStatus.running:
            raise Conflict(f"this application is already closed ({inst.status.value})",
                           status=inst.status.value)
        opinion = (req.opinion or "").strip() or None
        if opinion and len(opinion) > MAX_OPINION:
            raise InvalidAction(f"opinion longer than {MAX_OPINION} characters")
        handler = getattr(self, f"_do_{req.action}", None)
        if req.action in inst.spec.custom_triggers() or req.action in DECISIONS or req.action == "submit":
            handler = self._do_decide
        if handler is None:
            raise InvalidAction(f"unknown action {req.action!r}")
        return handler(inst, req, actor, opinion, now)

    def child_finished(self, parent: InstanceState, outcome: InstanceStatus, child_id: int,
                       now: datetime) -> Effect:
        """The sub-process this instance waits on has ended: continue by its outcome."""
        step = parent.spec.steps[parent.current_step]
        if parent.status is not InstanceStatus.running or step.type is not StepType.subprocess:
            raise Conflict("the parent is not waiting on a sub-process")
        effect = Effect(TrailEntry("subprocess_end", step.id, None,
                                   details={"child": child_id, "outcome": outcome.value}))
        self._move(parent, "approve" if outcome is InstanceStatus.approved else "reject", effect, now)
        return effect

    # -- permission helpers ---------------------------------------------------------------
    def _open_task(self, inst: InstanceState, req: Request) -> TaskState:
        task = inst.task(req.task_id) if req.task_id is not None else None
        if task is None:
            raise Conflict("this task is no longer current: someone else has acted on the application",
                           task_id=req.task_id)
        if task.status is not TaskStatus.open:
            raise Conflict(f"this task is already {task.status.value}", task_id=task.id,
                           status=task.status.value)
        return task

    def may_decide(self, inst: InstanceState, task: TaskState, actor: Actor) -> str | None:
        """None if `actor` may decide `task` now, else the reason why not."""
        who = actor.acting_for
        if task.delegate is not None:
            return "the task is delegated and waits for the delegate's opinion"
        if task.assignee is not None:
            if task.assignee != who:
                return "this task is assigned to someone else"
        elif (task.department, task.role) not in actor.acting_memberships:
            return "you do not hold the role this task is queued for"
        if task.origin is not Origin.start and (who == inst.submitter or actor.user_id == inst.submitter):
            return "a submitter cannot approve their own application"
        if inst.spec.rules.recusal == "submitter_group" and task.origin is not Origin.start:
            group = self.directory.group_of(inst.submitter_department)
            if group in self.directory.user_groups(who):
                return "回避: you belong to the submitting group"
        if inst.spec.rules.distinct_deciders and task.origin is not Origin.start:
            other = inst.decided_steps.get(who, frozenset()) - {task.step}
            if other:
                return f"you already decided step {sorted(other)[0]!r} of this application"
        return None

    def _check_decider(self, inst: InstanceState, task: TaskState, actor: Actor) -> None:
        reason = self.may_decide(inst, task, actor)
        if reason:
            raise Forbidden(reason, task_id=task.id)

    def _need_opinion(self, step: StepSpec | None, action: str, opinion: str | None) -> None:
        required = step.opinion_required if step else frozenset()
        if action in required and not opinion:
            raise InvalidAction(f"an opinion is required to {action}")

    # -- decisions ------------------------------------------------------------------------
    def _do_decide(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        step = inst.spec.steps[task.step]
        action = req.action
        if task.origin is Origin.start:
            if action != "submit":
                raise InvalidAction("a returned application can only be resubmitted or withdrawn")
        elif action == "submit":
            raise InvalidAction("submit is for the submitter's own step")
        elif action not in inst.spec.triggers_from(step.id):
            raise InvalidAction(f"action {action!r} is not possible at step {step.id!r}")
        self._need_opinion(step, action, opinion)
        effect = Effect(TrailEntry(action, step.id, None, opinion, task.id))
        self._edit(inst, req, step, task, effect)
        self._complete(task, action, opinion, actor, now, effect)
        if task.origin is Origin.start:
            self._move(inst, "submit", effect, now)
        elif action not in BUILTIN_TRIGGERS:  # a custom action decides the step at once
            self._cancel([t for t in inst.tasks if t.active], effect)
            self._move(inst, action, effect, now)
        else:
            verdict, cancel, activate = evaluate_step(step, inst.tasks)
            self._cancel(cancel, effect)
            for t in activate:
                t.status = TaskStatus.open
                effect.changed.append(t)
                effect.notify.append(t)
            effect.trail.details["verdict"] = verdict.value
            if verdict is not Verdict.pending:
                self._move(inst, "approve" if verdict is Verdict.approved else "reject", effect, now)
        return effect

    def _do_return(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        step = inst.spec.steps[task.step]
        if req.target not in step.return_to:
            allowed = ", ".join(step.return_to) or "none"
            raise InvalidAction(f"cannot return to {req.target!r} from {step.id!r} (allowed: {allowed})")
        self._need_opinion(step, "return", opinion)
        effect = Effect(TrailEntry("return", step.id, None, opinion, task.id,
                                   details={"target": req.target}))
        self._complete(task, "return", opinion, actor, now, effect)
        self._cancel([t for t in inst.tasks if t.active], effect)
        self._enter(inst, req.target, effect, now)
        return effect

    def _do_withdraw(self, inst, req, actor, opinion, now) -> Effect:
        if actor.user_id != inst.submitter:
            raise Forbidden("only the submitter can withdraw an application")
        if not inst.spec.rules.withdraw:
            raise Forbidden("this process does not allow withdrawal")
        acted = [t for t in inst.tasks if t.status is TaskStatus.done and t.origin is not Origin.start]
        if acted:
            raise Conflict("the current step has already acted; withdrawal is no longer possible")
        if inst.spec.steps[inst.current_step].type is StepType.subprocess:
            raise Conflict("the application waits on a sub-process; withdraw that first")
        effect = Effect(TrailEntry("withdraw", inst.current_step, None, opinion))
        self._cancel([t for t in inst.tasks if t.active], effect)
        self._finish(inst, InstanceStatus.withdrawn, effect, now)
        return effect

    def _do_void(self, inst, req, actor, opinion, now) -> Effect:
        if actor.admin_role != "system":
            raise Forbidden("only the system administrator can void an application")
        if not opinion:
            raise InvalidAction("a reason is required to void an application")
        effect = Effect(TrailEntry("void", inst.current_step, None, opinion))
        self._cancel([t for t in inst.tasks if t.active], effect)
        self._finish(inst, InstanceStatus.void, effect, now)
        return effect

    # -- task handling --------------------------------------------------------------------
    def _do_claim(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.assignee is not None:
            raise Conflict("this task has already been claimed", task_id=task.id)
        self._check_decider(inst, task, actor)
        task.assignee = actor.acting_for
        return Effect(TrailEntry("claim", task.step, None, None, task.id), changed=[task])

    def _do_release(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.origin is not Origin.queue or task.assignee != actor.acting_for:
            raise Forbidden("only a task you claimed from a department queue can be released")
        task.assignee = None
        return Effect(TrailEntry("release", task.step, None, opinion, task.id), changed=[task])

    def _other_user(self, req: Request, inst: InstanceState) -> int:
        if req.user is None:
            raise InvalidAction("choose a person")
        if req.user == inst.submitter:
            raise InvalidAction("the submitter cannot decide their own application")
        return req.user

    def _do_transfer(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        target = self._other_user(req, inst)
        if target == actor.acting_for:
            raise InvalidAction("the task is already yours")
        effect = Effect(TrailEntry("transfer", task.step, None, opinion, task.id,
                                   details={"from": task.assignee or actor.acting_for, "to": target}))
        task.assignee = target
        if task.origin is Origin.queue:
            task.origin = Origin.route
        effect.changed.append(task)
        effect.notify.append(task)
        return effect

    def _do_delegate(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        target = self._other_user(req, inst)
        if target == actor.acting_for:
            raise InvalidAction("you cannot delegate to yourself")
        if task.assignee is None:
            task.assignee = actor.acting_for
        task.delegate = target
        return Effect(TrailEntry("delegate", task.step, None, opinion, task.id, details={"to": target}),
                      changed=[task], notify=[task])

    def _do_resolve(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.delegate != actor.acting_for:
            raise Forbidden("this task is not delegated to you")
        if not opinion:
            raise InvalidAction("give your opinion for the owner of the task")
        task.delegate = None
        return Effect(TrailEntry("resolve", task.step, None, opinion, task.id,
                                 details={"owner": task.assignee}), changed=[task], notify=[task])

    def _do_add_signer(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        if req.position not in ADD_POSITIONS:
            raise InvalidAction("choose before, after or alongside")
        target = self._other_user(req, inst)
        if any(t.assignee == target and t.active for t in inst.tasks if t.step == task.step):
            raise InvalidAction("that person already has a task in this step")
        if task.assignee is None:
            task.assignee = actor.acting_for
        seq = {"before": task.seq - 1, "after": task.seq + 1, "alongside": task.seq}[req.position]
        added = TaskState(step=task.step, branch=task.branch, round=task.round, seq=seq,
                          origin=Origin.added, department=task.department, role=task.role,
                          status=TaskStatus.waiting if req.position == "after" else TaskStatus.open,
                          assignee=target, added_by=actor.acting_for, deadline_days=task.deadline_days)
        effect = Effect(TrailEntry("add_signer", task.step, None, opinion, task.id,
                                   details={"user": target, "position": req.position}),
                        changed=[task], added=[added])
        if req.position == "before":
            task.status = TaskStatus.waiting
        if added.status is TaskStatus.open:
            effect.notify.append(added)
        inst.tasks.append(added)
        return effect

    def _do_remove_signer(self, inst, req, actor, opinion, now) -> Effect:
        task = inst.task(req.task_id) if req.task_id is not None else None
        if task is None or not task.active:
            raise Conflict("that signer's task is no longer current")
        if task.origin is not Origin.added:
            raise InvalidAction("only signers added with 加签 can be removed")
        if task.added_by != actor.acting_for:
            raise Forbidden("only the person who added a signer can remove them")
        effect = Effect(TrailEntry("remove_signer", task.step, None, opinion, task.id,
                                   details={"user": task.assignee}))
        self._cancel([task], effect)
        step = inst.spec.steps[task.step]
        verdict, cancel, activate = evaluate_step(step, inst.tasks)
        self._cancel(cancel, effect)
        for t in activate:
            t.status = TaskStatus.open
            effect.changed.append(t)
        if verdict is not Verdict.pending:
            self._move(inst, "approve" if verdict is Verdict.approved else "reject", effect, now)
        return effect

    # -- notes that change no state ---------------------------------------------------------
    def _do_comment(self, inst, req, actor, opinion, now) -> Effect:
        if not opinion:
            raise InvalidAction("a comment needs text")
        return Effect(TrailEntry("comment", inst.current_step, None, opinion, req.task_id))

    def _do_cc(self, inst, req, actor, opinion, now) -> Effect:
        users = tuple(dict.fromkeys(u for u in req.users if u != actor.user_id))
        if not users:
            raise InvalidAction("choose at least one person to copy")
        return Effect(TrailEntry("cc", inst.current_step, None, opinion, details={"users": list(users)}),
                      cc=users)

    def _do_urge(self, inst, req, actor, opinion, now) -> Effect:
        waiting = [t for t in inst.tasks if t.status is TaskStatus.open]
        if not waiting:
            raise InvalidAction("nobody is waiting to act")
        return Effect(TrailEntry("urge", inst.current_step, None, opinion,
                                 details={"tasks": [t.id for t in waiting]}), notify=waiting)

    # -- moving through the definition ----------------------------------------------------------
    def _edit(self, inst, req, step, task, effect) -> None:
        if not req.data:
            return
        if task.origin is Origin.start:
            editable = [f.name for f in inst.spec.fields]
        else:
            editable = [f.name for f in inst.spec.fields if step.id in f.editable_at]
        new = forms.clean(inst.spec, req.data, editable, inst.data, require=task.origin is Origin.start)
        changed = sorted(k for k in set(new) | set(inst.data) if new.get(k) != inst.data.get(k))
        if changed:
            inst.data = new
            effect.data_changed = True
            effect.trail.details["edited"] = changed

    def _complete(self, task, action, opinion, actor, now, effect) -> None:
        task.status = TaskStatus.done
        task.decision = action
        task.opinion = opinion
        task.acted_by = actor.user_id
        task.completed_at = now
        if task.assignee is None:
            task.assignee = actor.acting_for
        effect.changed.append(task)

    def _cancel(self, tasks, effect) -> None:
        for t in tasks:
            if t.active:
                t.status = TaskStatus.cancelled
                if t not in effect.changed:
                    effect.changed.append(t)
                effect.trail.details.setdefault("cancelled", []).append(t.id)

    def _move(self, inst, trigger, effect, now) -> None:
        data = forms.typed(inst.spec, inst.data)
        data.setdefault("submitter_department", inst.submitter_department)
        data.setdefault("submitter_group", self.directory.group_of(inst.submitter_department))
        dest = machine_for(inst.spec).next_step(inst.current_step, trigger, data)
        self._enter(inst, dest, effect, now, data)

    def _enter(self, inst, step_id, effect, now, typed=None) -> None:
        spec = inst.spec
        step = spec.steps[step_id]
        inst.current_step = step_id
        inst.round += 1
        inst.tasks = [t for t in inst.tasks if t.id is None and t.round == inst.round]
        effect.moved = True
        effect.trail.to_step = step_id
        if step.type is StepType.end:
            assert step.outcome is not None
            self._finish(inst, InstanceStatus(step.outcome.value), effect, now)
            return
        if step.type is StepType.start:
            task = TaskState(step=step_id, branch=None, round=inst.round, seq=0, origin=Origin.start,
                             status=TaskStatus.open, department=inst.submitter_department,
                             role="submitter", assignee=inst.submitter)
            effect.added.append(task)
            effect.notify.append(task)
            inst.tasks.append(task)
            return
        if step.type is StepType.subprocess:
            assert step.process is not None
            effect.start_child = ChildStart(step.process, {child: inst.data[parent]
                                                           for child, parent in step.inputs.items()
                                                           if parent in inst.data})
            return
        typed = typed if typed is not None else forms.typed(spec, inst.data)
        for branch, assign, mode, quorum, deadline in step.groups():
            new = route(step=step_id, branch=branch, assign=assign, mode=mode, quorum=quorum,
                        deadline_days=deadline.working_days if deadline else None,
                        round_=inst.round, data=typed, submitter=inst.submitter,
                        submitter_department=inst.submitter_department,
                        recusal=spec.rules.recusal == "submitter_group", directory=self.directory)
            effect.added.extend(new)
            effect.notify.extend(t for t in new if t.status is TaskStatus.open)
            inst.tasks.extend(new)

    def _finish(self, inst, status: InstanceStatus, effect, now) -> None:
        inst.status = status
        effect.ended = True
        effect.trail.details["outcome"] = status.value
