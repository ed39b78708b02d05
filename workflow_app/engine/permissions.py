"""Who may act on a task, and to whom a task may be handed: the separation-of-duties rules.

Every rule is checked for the person acting AND, when a stand-in acts for an absent colleague
(`Actor.on_behalf_of`), for the colleague too: a substitution must never let anyone do what either
of them could not do alone.

- A submitter never decides their own application (the resubmission after 退回 is theirs).
- `rules.recusal: submitter_group` (回避): nobody from the submitter's SOE group or its
  subsidiaries reviews it.
- `rules.distinct_deciders`: one person decides at most one step of an instance (the same step
  again in a later round is fine).
- Steps assigned to the submitting side itself (`$submitter`, `$submitter_group`) are its own
  acts, not reviews: the first two rules do not apply to them (see `routing.own_side`).
- People a task is handed to (转办, 委派, 加签) must be allowed to decide it afterwards; handing a
  task to someone who would be refused would leave it stuck.
"""
from __future__ import annotations

from . import forms
from .routing import Directory, own_side
from .state import Actor, InstanceState, Origin, TaskState

# Decisions that count for `distinct_deciders`: approve/reject and custom actions. Submitting and
# returning decide nothing about the step.
NOT_DECIDING = frozenset({"submit", "return"})


class Refusal(str):
    """Why not, as text (shown to people) with a stable `code` (recorded in the security log and
    searched in the compliance console): self_approval, recusal, distinct_deciders, delegated,
    not_assignee, not_queued."""

    code: str

    def __new__(cls, text: str, code: str) -> "Refusal":
        made = super().__new__(cls, text)
        made.code = code
        return made


def refusal_code(reason: object) -> str:
    return getattr(reason, "code", "forbidden")


def counts_as_decision(decision: str | None) -> bool:
    return decision is not None and decision not in NOT_DECIDING


def task_side(inst: InstanceState, task: TaskState) -> str | None:
    """`$submitter` / `$submitter_group` if `task` belongs to a step the submitting side takes."""
    step = inst.spec.steps.get(task.step)
    if step is None or not step.is_human:
        return None
    for branch, assign, *_rest in step.groups():
        if branch == task.branch:
            return own_side(assign, forms.typed(inst.spec, inst.data))
    return None


def _people(actor: Actor) -> tuple[int, ...]:
    return tuple(dict.fromkeys((actor.acting_for, actor.user_id)))


def review_refusal(inst: InstanceState, task: TaskState, people: tuple[int, ...],
                   directory: Directory) -> str | None:
    """Why these people may not take part in deciding `task`, or None."""
    if task.origin is Origin.start:
        return None  # the submitter's own (re)submission
    if task_side(inst, task) is None:
        if inst.submitter in people:
            return Refusal("a submitter cannot approve their own application", "self_approval")
        if inst.spec.rules.recusal == "submitter_group":
            group = directory.group_of(inst.submitter_department)
            if any(group in directory.user_groups(p) for p in people):
                return Refusal("回避: you belong to the submitting group", "recusal")
    if inst.spec.rules.distinct_deciders:
        for person in people:
            other = inst.decided_steps.get(person, frozenset()) - {task.step}
            if other:
                return Refusal(f"you already decided step {sorted(other)[0]!r} of this application",
                               "distinct_deciders")
    return None


def decide_refusal(inst: InstanceState, task: TaskState, actor: Actor,
                   directory: Directory) -> str | None:
    """None if `actor` may decide (or claim, transfer, delegate, add a signer to) `task` now."""
    who = actor.acting_for
    if task.delegate is not None:
        return Refusal("the task is delegated and waits for the delegate's opinion", "delegated")
    if task.assignee is not None:
        if task.assignee != who:
            return Refusal("this task is assigned to someone else", "not_assignee")
    elif (task.department, task.role) not in actor.acting_memberships:
        return Refusal("you do not hold the role this task is queued for", "not_queued")
    return review_refusal(inst, task, _people(actor), directory)


def handover_refusal(inst: InstanceState, task: TaskState, target: int | None, actor: Actor,
                     directory: Directory, action: str) -> str | None:
    """Why `task` may not be handed to `target` (转办 / 委派 / 加签), or None."""
    if target is None:
        return "choose a person"
    if task.origin is Origin.start:
        return "a returned application is resubmitted by its submitter"
    if target in _people(actor):
        return {"transfer": "the task is already yours",
                "delegate": "you cannot delegate to yourself"}.get(action, "you cannot add yourself")
    if task_side(inst, task) is None and target == inst.submitter:
        return "the submitter cannot decide their own application"
    reason = review_refusal(inst, task, (target,), directory)
    if reason and reason.startswith("回避"):
        return "回避: that person belongs to the submitting group"
    if reason:
        return f"that person may not decide this task: {reason}"
    return None
