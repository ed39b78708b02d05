"""Actions on running instances: the functional core of ParkFlow.

`Runtime.act(instance, request, actor)` checks who may act, applies the action to the plain-data
`InstanceState` in place, and returns an `Effect`: which tasks changed or were added, how the
instance moved, whether a sub-process must start, and exactly ONE trail entry describing the
whole action (cancelled tasks, new round, edits) — one human action, one event. The service layer
loads the state, calls this, and writes the effect in one transaction. An action that is refused
raises before anything is returned, so nothing of it is written.

This module owns starting, deciding (approve / reject / custom actions / resubmit), 退回 return,
撤回 withdraw, 作废 void, sub-process hand-back and migration; `task_actions` owns the actions that
do not decide a task (claim, transfer, delegate, 加签 ...), `clock_actions` the actions on a
task's clock (补正, pause, 延期) and the sweeper's events, `clock` the due-date arithmetic,
`permissions` who may act, `approval` when a step is decided. Every task gets its due date when it
OPENS (routed open, or its turn come in 依次 / behind a 加签), from the calendar given here.

Return and withdraw inside 会签 and parallel groups (docs/process-definitions.md, section 7):
- 退回 by any member returns the WHOLE step: every other open or waiting task of the step (all
  branches of a parallel group) is cancelled; decisions already given stay on their tasks and in
  the trail; entering the target starts a new round, and when the instance comes back the whole
  step (every signer, every branch) runs again.
- 撤回 by the submitter only while no task of the current round has been decided (in 会签 or a
  parallel group: nobody in any branch); it cancels every open task and ends the instance.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from . import clock, forms
from .approval import Verdict, evaluate_step
from .calendar import WorkingCalendar
from .clock_actions import ClockActions, is_supplement
from .effects import (ADD_POSITIONS, DECISIONS, MAX_OPINION, ChildStart, Effect, Request,
                      TrailEntry)
from .errors import Conflict, Forbidden, InvalidAction
from .machine import machine_for
from .permissions import counts_as_decision, decide_refusal, refusal_code
from .routing import Directory, route
from .schema import StepType
from .spec import BUILTIN_TRIGGERS, ProcessSpec, StepSpec
from .state import Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from .task_actions import TaskActions

__all__ = ["Runtime", "Request", "Effect", "TrailEntry", "ChildStart", "MAX_OPINION", "DECISIONS",
           "ADD_POSITIONS"]


class Runtime(TaskActions, ClockActions):
    """`calendar`: due dates (None: tasks get none); `coordinators`: the coordinating bodies'
    department codes (催办, the ladder's `coordinator` rung); `urge_interval`: at most one 催办
    per task in this time (None: no limit)."""

    def __init__(self, directory: Directory, calendar: WorkingCalendar | None = None, *,
                 coordinators: frozenset[str] | tuple[str, ...] = (),
                 urge_interval: timedelta | None = None):
        self.directory = directory
        self.calendar = calendar
        self.coordinators = frozenset(coordinators)
        self.urge_interval = urge_interval

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

    def parent_voided(self, child: InstanceState, parent_id: int, now: datetime) -> Effect:
        """The instance this child was started for has been voided: void the child as well."""
        if child.status is not InstanceStatus.running:
            raise Conflict("the sub-process has already ended")
        effect = Effect(TrailEntry("void", child.current_step, None, "上级流程已作废 (parent voided)",
                                   details={"parent": parent_id}))
        self._cancel([t for t in child.tasks if t.active], effect)
        self._finish(child, InstanceStatus.void, effect, now)
        return effect

    def migrate(self, inst: InstanceState, new_spec: ProcessSpec, target: str, now: datetime,
                details: dict) -> Effect:
        """Move a running instance to another version of its definition: the current round's open
        tasks are cancelled and `target` (a step of the new version) is entered afresh."""
        if inst.status is not InstanceStatus.running:
            raise Conflict("only running applications can be migrated")
        step = new_spec.steps.get(target)
        if step is None or step.type is StepType.end:
            raise InvalidAction(f"step {target!r} is not a step the application can wait in")
        effect = Effect(TrailEntry("migrate", inst.current_step, None, details=dict(details)))
        current = inst.spec.steps[inst.current_step]
        if current.type is StepType.subprocess:
            # Re-entering would start a second child beside the running one: an instance waiting
            # on a child can only be re-pointed to the same wait in the new version.
            if step.type is not StepType.subprocess or step.process != current.process:
                raise InvalidAction(f"the application waits on a {current.process} sub-process; "
                                    f"map {current.id!r} to a step that waits on the same process")
            inst.spec, inst.current_step = new_spec, target
            effect.moved, effect.trail.to_step = True, target
            return effect
        self._cancel([t for t in inst.tasks if t.active], effect)
        inst.spec = new_spec
        self._enter(inst, target, effect, now)
        return effect

    # -- permission helpers ---------------------------------------------------------------
    def _open_task(self, inst: InstanceState, req: Request) -> TaskState:
        if req.task_id is None:
            raise InvalidAction(f"name the task to {req.action}")
        task = inst.task(req.task_id)
        if task is None:
            raise Conflict("this task is no longer current: someone else has acted on the application",
                           task_id=req.task_id)
        if task.status is not TaskStatus.open:
            raise Conflict(f"this task is already {task.status.value}", task_id=task.id,
                           status=task.status.value)
        return task

    def may_decide(self, inst: InstanceState, task: TaskState, actor: Actor) -> str | None:
        """None if `actor` may decide `task` now, else the reason why not (see `permissions`)."""
        return decide_refusal(inst, task, actor, self.directory)

    def _check_decider(self, inst: InstanceState, task: TaskState, actor: Actor) -> None:
        reason = self.may_decide(inst, task, actor)
        if reason:
            raise Forbidden(reason, task_id=task.id, reason=refusal_code(reason))

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
        if task.paused_at is not None and action != "reject":
            raise Conflict("the clock of this task is stopped (supplements awaited, expert review or "
                           "hearing); it can be decided once it runs again", task_id=task.id)
        self._need_opinion(step, action, opinion)
        effect = Effect(TrailEntry(action, step.id, None, opinion, task.id))
        self._edit(inst, req, step, task, effect)
        self._complete(inst, task, action, opinion, actor, now, effect)
        if is_supplement(inst, task):  # 补正 answered: the step carries on where it stood
            self._supplied(inst, task, effect, now)
        elif task.origin is Origin.start:
            self._move(inst, "submit", effect, now)
        elif action not in BUILTIN_TRIGGERS:  # a custom action decides the step at once
            self._cancel([t for t in inst.tasks if t.active], effect)
            self._move(inst, action, effect, now)
        else:
            verdict, cancel, activate = evaluate_step(step, inst.tasks)
            self._cancel(cancel, effect)
            self._open(inst, activate, effect, now)
            effect.trail.details["verdict"] = verdict.value
            if verdict is not Verdict.pending:
                self._cancel([t for t in inst.tasks if t.active], effect)  # an unanswered 补正 too
                self._move(inst, "approve" if verdict is Verdict.approved else "reject", effect, now)
        return effect

    def _do_return(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.origin is Origin.start:
            raise InvalidAction("a returned application can only be resubmitted or withdrawn")
        self._check_decider(inst, task, actor)
        step = inst.spec.steps[task.step]
        if req.target not in step.return_to:
            allowed = ", ".join(step.return_to) or "none"
            raise InvalidAction(f"cannot return to {req.target!r} from {step.id!r} (allowed: {allowed})")
        self._need_opinion(step, "return", opinion)
        effect = Effect(TrailEntry("return", step.id, None, opinion, task.id,
                                   details={"target": req.target}))
        self._complete(inst, task, "return", opinion, actor, now, effect)
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

    def _complete(self, inst, task, action, opinion, actor, now, effect) -> None:
        task.status = TaskStatus.done
        task.decision = action
        task.opinion = opinion
        task.acted_by = actor.user_id
        task.completed_at = now
        if task.assignee is None:
            task.assignee = actor.acting_for
        effect.changed.append(task)
        if counts_as_decision(action):  # kept current for `distinct_deciders` within this call
            decided = dict(inst.decided_steps)
            for person in {task.assignee, actor.user_id}:
                decided[person] = decided.get(person, frozenset()) | {task.step}
            inst.decided_steps = decided

    def _open(self, inst, tasks, effect, now) -> None:
        """Waiting tasks whose turn has come (依次, or behind a 加签): their clocks start now."""
        for t in tasks:
            t.status = TaskStatus.open
            clock.start(t, clock.deadline_of(inst.spec, t), self.calendar, now)
            if t not in effect.changed:
                effect.changed.append(t)
            effect.notify.append(t)
            if t.id is not None:  # the trail says when its clock started (due-date recomputation)
                effect.trail.details.setdefault("opened", []).append(t.id)

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
            for t in new:
                if t.status is TaskStatus.open:
                    clock.start(t, deadline, self.calendar, now)
                    effect.notify.append(t)
            effect.added.extend(new)
            inst.tasks.extend(new)

    def _finish(self, inst, status: InstanceStatus, effect, now) -> None:
        inst.status = status
        effect.ended = True
        effect.trail.details["outcome"] = status.value
