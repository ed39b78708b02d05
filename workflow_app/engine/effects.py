"""What goes into and comes out of one action: the `Request` a person makes and the `Effect` the
runtime hands back to the service (tasks changed or added, where the instance moved, a child to
start, people to notify, and exactly ONE trail entry for the whole action).
System events of the clock (a reminder rung, deemed consent) are effects too, one trail entry each.

Plain data only, so the service can write an effect without the engine knowing about SQL and tests
can compare effects directly. `runtime` re-exports these names; import them from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .state import TaskState

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
    user: int | None = None            # 转办 / 委派 / 加签 (减签 names the added task via task_id)
    users: tuple[int, ...] = ()        # 抄送
    position: str | None = None        # 加签: before / after / alongside
    data: dict | None = None           # field edits allowed at this step
    days: int | None = None            # 延期: working days asked for / granted


@dataclass
class TrailEntry:
    action: str
    from_step: str | None
    to_step: str | None
    opinion: str | None = None
    task_id: int | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """Someone the service must notify beyond the people of `Effect.notify` (escalation rungs,
    extensions, deemed consent): named users, or everyone holding `role` in `department`."""

    kind: str
    task: TaskState | None = None
    users: tuple[int, ...] = ()
    department: str | None = None
    role: str | None = None


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
    notices: list[Notice] = field(default_factory=list)    # anyone else to tell
