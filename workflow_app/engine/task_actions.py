"""Actions on one task that do not decide it, and notes that change no state.

认领 claim / 释放 release (department queues), 转办 transfer, 委派 delegate + resolve, 加签 add
signer (before / after / alongside), 减签 remove signer, and comment / 抄送 cc / 催办 urge.
A mixin of `runtime.Runtime`: it uses the runtime's permission and step helpers, and each handler
returns one `Effect` with one trail entry, like every other action.

催办 is for the submitter and the coordinating bodies (`Runtime.coordinators`, 区经信局), at most
once per task per `Runtime.urge_interval`: the service loads when each open task was last urged
(`InstanceState.recent_urges`); tasks urged too recently are left out, and an urge that would reach
nobody new is refused with the time it becomes possible again.
"""
from __future__ import annotations

from datetime import timedelta, timezone

from . import clock
from .approval import Verdict, evaluate_step
from .effects import ADD_POSITIONS, Effect, TrailEntry
from .errors import Conflict, Forbidden, InvalidAction
from .permissions import handover_refusal
from .state import Actor, InstanceState, Origin, TaskState, TaskStatus


_SHANGHAI = timezone(timedelta(hours=8))  # messages only; no daylight saving in China


class TaskActions:
    """Handlers `_do_<action>`; `Runtime` supplies `directory`, `_open_task`, `_check_decider`,
    `_cancel`, `_open` and `_move`."""

    def _handover_target(self, inst: InstanceState, task: TaskState, req, actor: Actor) -> int:
        reason = handover_refusal(inst, task, req.user, actor, self.directory, req.action)  # type: ignore[attr-defined]
        if reason:
            raise InvalidAction(str(reason), task_id=task.id, reason=reason.code)
        return req.user

    # -- department queues ----------------------------------------------------------------
    def _do_claim(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.origin is not Origin.queue:
            raise InvalidAction("only department-queue tasks are claimed", task_id=task.id)
        if task.assignee is not None:
            raise Conflict("this task has already been claimed", task_id=task.id)
        self._check_decider(inst, task, actor)
        task.assignee = actor.acting_for
        return Effect(TrailEntry("claim", task.step, None, None, task.id), changed=[task])

    def _do_release(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.origin is not Origin.queue or task.assignee != actor.acting_for:
            raise Forbidden("only a task you claimed from a department queue can be released", "not_assignee")
        if task.delegate is not None:
            raise InvalidAction("the task is delegated; wait for the delegate's opinion first")
        task.assignee = None
        return Effect(TrailEntry("release", task.step, None, opinion, task.id), changed=[task])

    # -- handing a task to someone else ---------------------------------------------------------
    def _do_transfer(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        target = self._handover_target(inst, task, req, actor)
        effect = Effect(TrailEntry("transfer", task.step, None, opinion, task.id,
                                   details={"from": task.assignee or actor.acting_for, "to": target}))
        task.assignee = target
        if task.origin is Origin.queue:  # a transferred task is personal: no release to the queue
            task.origin = Origin.route
        effect.changed.append(task)
        effect.notify.append(task)
        return effect

    def _do_delegate(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        target = self._handover_target(inst, task, req, actor)
        if task.assignee is None:
            task.assignee = actor.acting_for
        task.delegate = target
        return Effect(TrailEntry("delegate", task.step, None, opinion, task.id, details={"to": target}),
                      changed=[task], notify=[task])

    def _do_resolve(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        if task.delegate is None or task.delegate != actor.acting_for:
            raise Forbidden("this task is not delegated to you", "not_assignee")
        if not opinion:
            raise InvalidAction("give your opinion for the owner of the task")
        task.delegate = None
        return Effect(TrailEntry("resolve", task.step, None, opinion, task.id,
                                 details={"owner": task.assignee}), changed=[task], notify=[task])

    # -- 加签 / 减签 -----------------------------------------------------------------------------
    def _do_add_signer(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)
        self._check_decider(inst, task, actor)
        if req.position not in ADD_POSITIONS:
            raise InvalidAction("choose before, after or alongside")
        target = self._handover_target(inst, task, req, actor)
        if any(t.assignee == target and t.active for t in inst.tasks if t.step == task.step):
            raise InvalidAction("that person already has a task in this step")
        if task.assignee is None:
            task.assignee = actor.acting_for
        # Seq orders a group: before = just ahead of this task, after = just behind it.
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
            clock.start(added, clock.deadline_of(inst.spec, added), self.calendar, now)  # type: ignore[attr-defined]
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
            raise Forbidden("only the person who added a signer can remove them", "not_allowed")
        effect = Effect(TrailEntry("remove_signer", task.step, None, opinion, task.id,
                                   details={"user": task.assignee}))
        self._cancel([task], effect)  # type: ignore[attr-defined]
        # Removing the signer everyone waited for may complete the step or open the next in line.
        step = inst.spec.steps[task.step]
        verdict, cancel, activate = evaluate_step(step, inst.tasks)
        self._cancel(cancel, effect)  # type: ignore[attr-defined]
        self._open(inst, activate, effect, now)  # type: ignore[attr-defined]
        if verdict is not Verdict.pending:
            self._move(inst, "approve" if verdict is Verdict.approved else "reject", effect, now)  # type: ignore[attr-defined]
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
        coordinator = any(d in self.coordinators for d, _r in actor.memberships)  # type: ignore[attr-defined]
        if actor.user_id != inst.submitter and not coordinator and not actor.system:
            raise Forbidden("only the submitter or the coordinating body can urge", "not_submitter")
        waiting = [t for t in inst.tasks if t.status is TaskStatus.open
                   and (req.task_id is None or t.id == req.task_id)]
        if not waiting:
            raise InvalidAction("nobody is waiting to act")
        interval: timedelta | None = self.urge_interval  # type: ignore[attr-defined]
        if interval:
            last = inst.recent_urges
            fresh = [t for t in waiting if t.id not in last or now - last[t.id] >= interval]
            if not fresh:
                again = min(last[t.id] for t in waiting) + interval
                hours = interval.total_seconds() / 3600
                raise InvalidAction(
                    f"urged too often: at most once every {hours:g} hours per task; you can urge "
                    f"again after {again.astimezone(_SHANGHAI):%Y-%m-%d %H:%M} (Beijing time)",
                    again=again.isoformat())
            waiting = fresh
        return Effect(TrailEntry("urge", inst.current_step, None, opinion,
                                 details={"tasks": [t.id for t in waiting]}), notify=waiting)
