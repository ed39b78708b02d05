"""Actions on the clock of a task, and the system events the sweeper records.

People: 补正 / 一次性告知 `supplement` (a reviewer lists everything missing at once; the step's
open tasks stop their clocks and the submitter gets a task to resubmit, in the same round — the
step is not closed), `pause` / `resume` (expert review, hearing: the assignee, with a reason),
延期 `request_extension` (the assignee asks, with a reason and a number of working days) and
`grant_extension` (the head of the task's department grants it; the submitter is told).
The system: `fire_due` fires the rungs of the escalation ladder that have come due (`remind` to
the assignee, `escalate` to anyone above) and, on a deemed-consent branch whose task is overdue,
records 逾期视为同意 as a system decision (`deemed_consent`) before the step is evaluated as usual;
`recompute_deadline` applies a due date recomputed after a year's schedule was loaded.

A mixin of `runtime.Runtime` like `task_actions`; every handler returns Effects with one trail
entry each. While supplements are awaited, or an expert review stops a task's clock, the task
cannot be approved (rejecting or returning it is still possible): its clock is not running.
"""
from __future__ import annotations

from datetime import datetime

from . import clock, forms
from .approval import Verdict, evaluate_step
from .calendar import Deadline, WorkingCalendar
from .effects import Effect, Notice, TrailEntry
from .errors import Conflict, Forbidden, InvalidAction
from .permissions import refusal_code, review_refusal
from .routing import resolve
from .spec import AssignSpec, RungSpec
from .state import InstanceState, Origin, TaskState, TaskStatus

MAX_EXTENSION_DAYS = 365
DEEMED_CONSENT_OPINION = "逾期视为同意：在规定时限内未答复 (deemed consent: no answer within the time limit)"


def iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def is_supplement(inst: InstanceState, task: TaskState) -> bool:
    """A submitter's task opened by 补正 inside a reviewing step (not a 退回 to the start)."""
    step = inst.spec.steps.get(task.step)
    return task.origin is Origin.start and step is not None and step.is_human


def pending_supplement(inst: InstanceState) -> TaskState | None:
    return next((t for t in inst.tasks if t.status is TaskStatus.open and is_supplement(inst, t)), None)


class ClockActions:
    """`Runtime` supplies `directory`, `calendar`, `coordinators`, `_open_task`, `_check_decider`,
    `_cancel`, `_open`, `_move`."""

    calendar: WorkingCalendar | None
    coordinators: frozenset[str]

    # -- helpers --------------------------------------------------------------------------
    def _reviewer_task(self, inst, req, actor) -> TaskState:
        task = self._open_task(inst, req)  # type: ignore[attr-defined]
        if task.origin is Origin.start:
            raise InvalidAction("the submitter's own task has no time limit", task_id=task.id)
        self._check_decider(inst, task, actor)  # type: ignore[attr-defined]
        return task

    @staticmethod
    def _days(req) -> int:
        days = req.days
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS:
            raise InvalidAction(f"give a number of working days from 1 to {MAX_EXTENSION_DAYS}")
        return days

    # -- 补正 / 一次性告知 -------------------------------------------------------------------------
    def _do_supplement(self, inst, req, actor, opinion, now) -> Effect:
        task = self._reviewer_task(inst, req, actor)
        if not opinion:
            raise InvalidAction("list everything that is missing at once (一次性告知): "
                                "an opinion is required to supplement")
        if pending_supplement(inst) is not None:
            raise Conflict("supplements have already been requested; the submitter has not answered yet")
        step_tasks = [t for t in inst.tasks if t.status is TaskStatus.open and t.step == task.step
                      and t.origin is not Origin.start]
        if any(t.paused_at is not None for t in step_tasks):
            raise Conflict("the clock of this step is stopped (expert review or hearing); resume it first")
        effect = Effect(TrailEntry("supplement", task.step, None, opinion, task.id,
                                   details={"paused": [t.id for t in step_tasks]}))
        for t in step_tasks:
            clock.pause(t, now)
            effect.changed.append(t)
        ask = TaskState(step=task.step, branch=None, round=inst.round, seq=0, origin=Origin.start,
                        status=TaskStatus.open, department=inst.submitter_department,
                        role="submitter", assignee=inst.submitter)
        inst.tasks.append(ask)
        effect.added.append(ask)
        effect.notices.append(Notice("supplement", ask))
        return effect

    def _supplied(self, inst: InstanceState, task: TaskState, effect: Effect, now: datetime) -> None:
        """The submitter resubmitted after 补正: restart the clocks the request stopped."""
        resumed, days = [], 0
        for t in inst.tasks:
            if t.step == task.step and t.status is TaskStatus.open and t.origin is not Origin.start \
                    and t.paused_at is not None:
                days = clock.resume(t, clock.deadline_of(inst.spec, t), self.calendar, now)
                resumed.append(t)
                effect.changed.append(t)
                effect.notices.append(Notice("supplemented", t))
        effect.trail.details.update(supplement=True, resumed=[t.id for t in resumed], days=days)

    # -- expert review / hearing ------------------------------------------------------------------
    def _do_pause(self, inst, req, actor, opinion, now) -> Effect:
        task = self._reviewer_task(inst, req, actor)
        if not opinion:
            raise InvalidAction("give the reason the clock stops (expert review, hearing ...): "
                                "an opinion is required to pause")
        if task.paused_at is not None:
            raise Conflict("the clock of this task is already stopped", task_id=task.id)
        if task.due_at is None:
            raise InvalidAction("this task has no time limit to stop", task_id=task.id)
        clock.pause(task, now)
        return Effect(TrailEntry("pause", task.step, None, opinion, task.id,
                                 details={"due_at": iso(task.due_at)}), changed=[task])

    def _do_resume(self, inst, req, actor, opinion, now) -> Effect:
        task = self._reviewer_task(inst, req, actor)
        if task.paused_at is None:
            raise Conflict("the clock of this task is running", task_id=task.id)
        if pending_supplement(inst) is not None:
            raise Conflict("the clock waits for the submitter's supplements", task_id=task.id)
        days = clock.resume(task, clock.deadline_of(inst.spec, task), self.calendar, now)
        return Effect(TrailEntry("resume", task.step, None, opinion, task.id,
                                 details={"days": days, "due_at": iso(task.due_at)}), changed=[task])

    # -- 延期 ------------------------------------------------------------------------------------
    def _do_request_extension(self, inst, req, actor, opinion, now) -> Effect:
        task = self._reviewer_task(inst, req, actor)
        days = self._days(req)
        if not opinion:
            raise InvalidAction("give the reason: an opinion is required to request an extension")
        if task.due_at is None:
            raise InvalidAction("this task has no time limit to extend", task_id=task.id)
        return Effect(TrailEntry("request_extension", task.step, None, opinion, task.id,
                                 details={"days": days, "due_at": iso(task.due_at)}),
                      notices=[Notice("extension_requested", task, department=task.department, role="head")])

    def _do_grant_extension(self, inst, req, actor, opinion, now) -> Effect:
        task = self._open_task(inst, req)  # type: ignore[attr-defined]
        if task.origin is Origin.start:
            raise InvalidAction("the submitter's own task has no time limit", task_id=task.id)
        if (task.department, "head") not in actor.acting_memberships:
            raise Forbidden("only the head of the task's department can grant an extension", task_id=task.id)
        refusal = review_refusal(inst, task, tuple({actor.acting_for, actor.user_id}), self.directory)  # type: ignore[attr-defined]
        if refusal:
            raise Forbidden(refusal, task_id=task.id, reason=refusal_code(refusal))
        days = self._days(req)
        if not opinion:
            raise InvalidAction("give the reason: an opinion is required to grant an extension")
        if task.due_at is None:
            raise InvalidAction("this task has no time limit to extend", task_id=task.id)
        before = task.due_at
        clock.shift(task, days, clock.deadline_of(inst.spec, task), self.calendar, now)  # type: ignore[arg-type]
        return Effect(TrailEntry("grant_extension", task.step, None, opinion, task.id,
                                 details={"days": days, "from": iso(before), "to": iso(task.due_at),
                                          "provisional": task.due_provisional}),
                      changed=[task], notices=[Notice("extended", task),
                                               Notice("extended", task, users=(inst.submitter,))])

    # -- the sweeper's events ---------------------------------------------------------------------
    def fire_due(self, inst: InstanceState, task_id: int, now: datetime) -> list[Effect]:
        """Everything due on one task at `now`: each rung not fired yet (one effect each, in
        order), then deemed consent if its branch has it and the task is overdue. Re-running at
        the same `now` returns nothing: the rungs fired are counted on the task."""
        task = inst.task(task_id)
        if task is None or task.status is not TaskStatus.open or task.paused_at is not None \
                or self.calendar is None or task.due_at is None:
            return []
        deadline = clock.deadline_of(inst.spec, task)
        effects = []
        for index, rung in clock.due_rungs(task, deadline, self.calendar, now):
            task.escalation_level = index + 1
            action = "remind" if rung.notify == "assignee" else "escalate"
            notices, target = self._rung_notices(inst, task, rung, action)
            effects.append(Effect(TrailEntry(action, task.step, None, None, task.id, details={
                "level": index + 1, "at_days": rung.at_days, "notify": target,
                "due_at": iso(task.due_at), "overdue": now >= task.due_at}),
                changed=[task], notices=notices))
        if deadline is not None and deadline.deemed_consent and task.due_at <= now:
            effects.append(self._deemed_consent(inst, task, now))
        else:
            task.next_reminder_at = clock.next_check(task, deadline, self.calendar)
        return effects

    def _rung_notices(self, inst, task, rung: RungSpec, kind: str) -> tuple[list[Notice], str]:
        if rung.notify == "assignee":
            return [Notice(kind, task)], "assignee"
        if rung.notify == "head":
            return [Notice(kind, task, department=task.department, role="head")], f"{task.department}/head"
        if rung.notify == "coordinator":
            return ([Notice(kind, task, department=code, role="head") for code in sorted(self.coordinators)],
                    "coordinator")
        assert isinstance(rung.notify, AssignSpec)
        try:
            department, role = resolve(rung.notify, forms.typed(inst.spec, inst.data),
                                       inst.submitter_department, self.directory)  # type: ignore[attr-defined]
        except InvalidAction as exc:  # a rung naming nobody still counts as fired: say so
            return [], f"nobody ({exc})"
        return [Notice(kind, task, department=department, role=role)], f"{department}/{role}"

    def _deemed_consent(self, inst: InstanceState, task: TaskState, now: datetime) -> Effect:
        """逾期视为同意: the branch's open tasks are approved by the system, its waiting ones are no
        longer needed; then the step is evaluated like after any decision."""
        step = inst.spec.steps[task.step]
        branch = [t for t in inst.tasks if t.step == task.step and t.branch == task.branch and t.active
                  and t.origin is not Origin.start]
        effect = Effect(TrailEntry("deemed_consent", step.id, None, DEEMED_CONSENT_OPINION, task.id,
                                   details={"branch": task.branch, "due_at": iso(task.due_at),
                                            "tasks": [t.id for t in branch if t.status is TaskStatus.open]}))
        for t in branch:
            if t.status is TaskStatus.open:
                t.status, t.decision, t.opinion = TaskStatus.done, "approve", DEEMED_CONSENT_OPINION
                t.acted_by, t.completed_at, t.next_reminder_at = None, now, None
                effect.changed.append(t)
        self._cancel([t for t in branch if t.active], effect)  # type: ignore[attr-defined]
        effect.notices.append(Notice("deemed_consent", task, users=(inst.submitter,)))
        verdict, cancel, activate = evaluate_step(step, inst.tasks)
        self._cancel(cancel, effect)  # type: ignore[attr-defined]
        self._open(inst, activate, effect, now)  # type: ignore[attr-defined]
        effect.trail.details["verdict"] = verdict.value
        if verdict is not Verdict.pending:
            self._cancel([t for t in inst.tasks if t.active], effect)  # type: ignore[attr-defined]
            self._move(inst, "approve" if verdict is Verdict.approved else "reject", effect, now)  # type: ignore[attr-defined]
        return effect

    def recompute_deadline(self, inst: InstanceState, task_id: int, deadline_: Deadline, now: datetime,
                           details: dict) -> Effect | None:
        """Apply a due date recomputed with a newly loaded year's schedule (None if unchanged)."""
        task = inst.task(task_id)
        if task is None or not task.active or task.due_at is None:
            return None
        if (task.due_at, task.due_provisional) == (deadline_.due_at, deadline_.provisional):
            return None
        before = task.due_at
        task.due_at, task.due_provisional = deadline_.due_at, deadline_.provisional
        if self.calendar is not None:
            clock.shift(task, 0, clock.deadline_of(inst.spec, task), self.calendar, now)
        return Effect(TrailEntry("deadline_recomputed", task.step, None, None, task.id, details={
            **details, "from": iso(before), "to": iso(task.due_at), "provisional": task.due_provisional}),
            changed=[task])
