"""Plain-data views of a running instance, as the engine reasons about them.

The service layer loads these from the database (one row for the instance, the task rows of the
current round), hands them to `runtime.Runtime`, and writes back what changed. Nothing here knows
about SQL; everything is cheap to build and to compare in tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Mapping

from .spec import ProcessSpec


class TaskStatus(str, Enum):
    open = "open"          # someone may act now
    waiting = "waiting"    # in line: 依次 (sequential) or behind a 加签 (added signer)
    done = "done"          # decided
    cancelled = "cancelled"  # no longer needed (step decided, returned, withdrawn, removed)


class Origin(str, Enum):
    route = "route"    # routed to a named person
    queue = "queue"    # department queue: anyone holding the role may claim it
    added = "added"    # 加签
    start = "start"    # the submitter's own (re)submission after 退回


class InstanceStatus(str, Enum):
    running = "running"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    void = "void"


@dataclass
class TaskState:
    step: str
    branch: str | None
    round: int
    seq: int
    origin: Origin
    status: TaskStatus
    department: str
    role: str
    assignee: int | None = None
    delegate: int | None = None
    added_by: int | None = None
    decision: str | None = None
    opinion: str | None = None
    acted_by: int | None = None
    completed_at: datetime | None = None
    deadline_days: int | None = None
    id: int | None = None
    # The clock (engine/clock.py): set when the task OPENS, not when it is created (a 依次 or
    # 后加签 task waiting in line has no due date yet).
    due_at: datetime | None = None
    due_provisional: bool = False
    paused_at: datetime | None = None        # clock stopped (补正 / expert review / hearing)
    next_reminder_at: datetime | None = None  # when the sweeper must next look at this task
    escalation_level: int = 0                # rungs of the ladder passed (fired or skipped)

    @property
    def active(self) -> bool:
        return self.status in (TaskStatus.open, TaskStatus.waiting)


@dataclass
class InstanceState:
    spec: ProcessSpec
    status: InstanceStatus
    current_step: str
    round: int
    data: dict
    submitter: int
    submitter_department: str
    tasks: list[TaskState] = field(default_factory=list)  # the current round's tasks
    id: int | None = None
    parent_id: int | None = None
    # Only loaded when the definition forbids one person deciding two steps.
    decided_steps: Mapping[int, frozenset[str]] = field(default_factory=dict)
    # Only loaded for 催办: task id -> when it was last urged (the rate limit).
    recent_urges: Mapping[int, datetime] = field(default_factory=dict)

    def task(self, task_id: int) -> TaskState | None:
        return next((t for t in self.tasks if t.id == task_id), None)


@dataclass(frozen=True)
class Actor:
    """Who is acting, and in which capacity. `on_behalf_of` is set when a stand-in acts for an
    absent colleague (the service has checked the substitution); permission checks then use the
    absent person's assignment, and the trail shows both."""

    user_id: int
    name: str
    memberships: frozenset[tuple[str, str]] = frozenset()
    department: str | None = None
    role: str | None = None
    admin_role: str | None = None
    on_behalf_of: int | None = None
    on_behalf_memberships: frozenset[tuple[str, str]] = frozenset()
    system: bool = False

    @property
    def acting_for(self) -> int:
        return self.on_behalf_of if self.on_behalf_of is not None else self.user_id

    @property
    def acting_memberships(self) -> frozenset[tuple[str, str]]:
        return self.on_behalf_memberships if self.on_behalf_of is not None else self.memberships


SYSTEM = Actor(user_id=0, name="系统", system=True)
