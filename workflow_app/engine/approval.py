"""When is a step decided? The approval modes, as one pure function over a step's tasks.

single / any (或签): the first approval decides; all / sequential (依次): every routed person
must approve; quorum: n approvals decide, and the step is rejected as soon as n can no longer be
reached. People added by 加签 must always approve. Any reject outside quorum rejects the step.
A parallel group (并联) is approved when every branch is approved and rejected when one is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .schema import Mode
from .spec import StepSpec
from .state import Origin, TaskState, TaskStatus


class Verdict(str, Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


@dataclass
class GroupResult:
    verdict: Verdict
    cancel: list[TaskState] = field(default_factory=list)   # no longer needed
    activate: list[TaskState] = field(default_factory=list)  # next in line


def evaluate_group(tasks: list[TaskState], mode: Mode, quorum: int | None) -> GroupResult:
    """Decide one task group (a step, or one branch of a parallel step) from its tasks."""
    live = [t for t in tasks if t.status is not TaskStatus.cancelled]
    routed = [t for t in live if t.origin is not Origin.added]
    added = [t for t in live if t.origin is Origin.added]
    approvals = sum(1 for t in routed if t.status is TaskStatus.done and t.decision == "approve")
    rejected_routed = sum(1 for t in routed if t.status is TaskStatus.done and t.decision == "reject")
    added_rejected = any(t.status is TaskStatus.done and t.decision == "reject" for t in added)
    routed_pending = [t for t in routed if t.active]

    if mode is Mode.quorum:
        need = quorum or 1
        primary_rejected = approvals + len(routed_pending) < need
        primary_done = approvals >= need
    elif mode in (Mode.single, Mode.any):
        primary_rejected = rejected_routed > 0
        primary_done = approvals >= 1
    else:  # all, sequential
        primary_rejected = rejected_routed > 0
        primary_done = not routed_pending and approvals == len(routed) and approvals > 0

    if primary_rejected or added_rejected:
        return GroupResult(Verdict.rejected, cancel=[t for t in live if t.active])
    result = GroupResult(Verdict.pending)
    if primary_done:
        result.cancel = routed_pending
        if not any(t.active for t in added):
            return GroupResult(Verdict.approved, cancel=routed_pending)
    remaining = [t for t in live if t.active and t not in result.cancel]
    if remaining and not any(t.status is TaskStatus.open for t in remaining):
        first = min(t.seq for t in remaining)
        result.activate = [t for t in remaining if t.seq == first]
    return result


def evaluate_step(step: StepSpec, tasks: list[TaskState]) -> tuple[Verdict, list[TaskState], list[TaskState]]:
    """Verdict of a task or parallel step; returns (verdict, tasks to cancel, tasks to open).
    The submitter's own task opened by 补正 inside the step is no vote: it is left out."""
    tasks = [t for t in tasks if t.origin is not Origin.start]
    cancel: list[TaskState] = []
    activate: list[TaskState] = []
    verdicts = []
    for branch_id, _assign, mode, quorum, _deadline in step.groups():
        group = [t for t in tasks if t.branch == branch_id]
        result = evaluate_group(group, mode, quorum)
        verdicts.append(result.verdict)
        cancel.extend(result.cancel)
        activate.extend(result.activate)
    if Verdict.rejected in verdicts:
        return Verdict.rejected, [t for t in tasks if t.active], []
    if all(v is Verdict.approved for v in verdicts):
        return Verdict.approved, cancel, []
    return Verdict.pending, cancel, activate
