"""Who is asked: turning a step's `assign` into tasks.

`department` may be a code, `$submitter` (the submitter's department) or `$submitter_group`
(the SOE group above it); `department_field` reads the code from the form (e.g. the park's owner
group); `rule` is a first-match table. Reviewers never include the submitter, nor (with
`rules.recusal: submitter_group`) anyone in the submitter's group. A `$submitter` step asks exactly the submitter (their
own work); a `$submitter_group` step asks the group's members except the submitter and is exempt
from recusal (see `own_side`, `permissions`). The directory (people and memberships) is a small protocol
the service implements over the database, so routing stays pure and testable.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from .conditions import Condition, ConditionEvalError
from .errors import InvalidAction
from .schema import Mode
from .spec import AssignSpec
from .state import Origin, TaskState, TaskStatus


class Directory(Protocol):
    def members(self, department: str, role: str) -> Sequence[int]:
        """Active users holding `role` in `department`, in rank order."""

    def group_of(self, department: str) -> str:
        """The SOE group a department belongs to (itself at the top)."""

    def user_groups(self, user_id: int) -> frozenset[str]:
        """Groups of every department the user belongs to (for recusal)."""


SUBMITTER = "$submitter"
SUBMITTER_GROUP = "$submitter_group"


def _holds(condition: Condition, data: dict) -> bool:
    try:
        return condition.holds(data)
    except ConditionEvalError as exc:
        raise InvalidAction(str(exc)) from None


def _pick(assign: AssignSpec, data: dict) -> tuple[str | None, str | None, str | None]:
    """(department, department_field, role) of the assignment or of its first matching rule row."""
    if not assign.rule:
        return assign.department, assign.department_field, assign.role
    for row in assign.rule:
        if row.condition is None or _holds(row.condition, data):
            return row.department, row.department_field, row.role
    raise InvalidAction("no assignment rule matches this data")


def resolve(assign: AssignSpec, data: dict, submitter_department: str,
            directory: Directory) -> tuple[str, str]:
    """(department, role) for this instance's data."""
    department, field_name, role = _pick(assign, data)
    if field_name is not None:
        department = data.get(field_name)
        if not department:
            raise InvalidAction(f"field {field_name!r} names no department")
    if department == SUBMITTER:
        department = submitter_department
    elif department == SUBMITTER_GROUP:
        department = directory.group_of(submitter_department)
    assert department is not None and role is not None
    return str(department), role


def own_side(assign: AssignSpec, data: dict) -> str | None:
    """`$submitter` / `$submitter_group` when the assignment (or its matching rule row) names the
    submitting side itself, else None. Such steps are the submitter's or their group's own acts
    (supplying documents, recording the group's 三重一大 decision), not external reviews: 回避 does
    not apply to them; self-approval still does on `$submitter_group` steps."""
    try:
        department, _field, _role = _pick(assign, data)
    except InvalidAction:
        return None
    return department if department in (SUBMITTER, SUBMITTER_GROUP) else None


def route(*, step: str, branch: str | None, assign: AssignSpec, mode: Mode, quorum: int | None,
          deadline_days: int | None, round_: int, data: dict, submitter: int,
          submitter_department: str, recusal: bool, directory: Directory) -> list[TaskState]:
    """New tasks for one task group. Single mode opens one department-queue task; the other modes
    open one task per eligible member (依次: one open, the rest waiting in rank order).
    `$submitter` always asks exactly the submitter."""
    department, role = resolve(assign, data, submitter_department, directory)
    side = own_side(assign, data)

    def task(seq: int, assignee: int | None, status: TaskStatus, origin: Origin) -> TaskState:
        return TaskState(step=step, branch=branch, round=round_, seq=seq, origin=origin,
                         status=status, department=department, role=role, assignee=assignee,
                         deadline_days=deadline_days)

    if side == SUBMITTER:
        return [task(10, submitter, TaskStatus.open, Origin.route)]
    submitter_group = directory.group_of(submitter_department)
    if side == SUBMITTER_GROUP:  # the group decides, not the submitter (self-approval)
        eligible = [u for u in directory.members(department, role) if u != submitter]
    else:
        eligible = [u for u in directory.members(department, role) if u != submitter
                    and not (recusal and submitter_group in directory.user_groups(u))]
    where = f"{department}/{role}"
    if not eligible:
        raise InvalidAction(f"nobody may take step {step!r}: no eligible member of {where}",
                            department=department, role=role)
    if mode is Mode.quorum and quorum and len(eligible) < quorum:
        raise InvalidAction(f"step {step!r} needs {quorum} approvals but {where} has "
                            f"{len(eligible)} eligible members", department=department, role=role)
    if mode is Mode.single:
        return [task(10, None, TaskStatus.open, Origin.queue)]
    return [task(10 * (i + 1), user,
                 TaskStatus.waiting if mode is Mode.sequential and i else TaskStatus.open,
                 Origin.route)
            for i, user in enumerate(eligible)]
