"""Who may act on a task, and to whom a task may be handed: the separation-of-duties rules.

Every rule is checked for the person acting AND, when a stand-in acts for an absent colleague
(`Actor.on_behalf_of`), for the colleague too: a substitution must never let anyone do what either
of them could not do alone.

- A submitter never decides their own application (the resubmission after 退回, 补正 and steps
  assigned to `$submitter` are their own work, not decisions about it) — also not on a step
  assigned to `$submitter_group`: their group decides, they do not.
- `rules.recusal: submitter_group` (回避): nobody from the submitter's SOE group or its
  subsidiaries reviews it; steps assigned to `$submitter` / `$submitter_group` are the
  submitting side's own acts and exempt.
- `rules.distinct_deciders`: one person decides at most one step of an instance (the same step
  again in a later round is fine).
- Which side a task belongs to is read from where it was routed (`task_side`), never from the
  form data as it stands now.
- People a task is handed to (转办, 委派, 加签) must be allowed to decide it afterwards; handing a
  task to someone who would be refused would leave it stuck.
"""
from __future__ import annotations

from .errors import Refusal
from .routing import SUBMITTER, SUBMITTER_GROUP, Directory
from .state import Actor, InstanceState, Origin, TaskState

# Decisions that count for `distinct_deciders`: approve/reject and custom actions. Submitting and
# returning decide nothing about the step.
NOT_DECIDING = frozenset({"submit", "return"})


def counts_as_decision(decision: str | None) -> bool:
    return decision is not None and decision not in NOT_DECIDING


def task_side(inst: InstanceState, task: TaskState, directory: Directory) -> str | None:
    """`$submitter` / `$submitter_group` if `task` belongs to a step the submitting side takes.

    Decided from where the task was actually routed (its department and role) against the rows
    of the step's assignment that name the submitting side — never by re-evaluating a rule table
    on today's form data, which an edit at a later step could change after the task was routed."""
    step = inst.spec.steps.get(task.step)
    if step is None or not step.is_human:
        return None
    for branch, assign, *_rest in step.groups():
        if branch != task.branch:
            continue
        rows = assign.rule or (assign,)
        for row in rows:
            if row.department == SUBMITTER and (task.department, task.role) == \
                    (inst.submitter_department, row.role):
                return SUBMITTER
            if row.department == SUBMITTER_GROUP and (task.department, task.role) == \
                    (directory.group_of(inst.submitter_department), row.role):
                return SUBMITTER_GROUP
    return None


def _people(actor: Actor) -> tuple[int, ...]:
    return tuple(dict.fromkeys((actor.acting_for, actor.user_id)))


def review_refusal(inst: InstanceState, task: TaskState, people: tuple[int, ...],
                   directory: Directory) -> Refusal | None:
    """Why these people may not take part in deciding `task`, or None.

    - `$submitter` steps (补正, confirmations, the submitter's own records) are the submitter's
      own work: neither rule below applies.
    - Self-approval: on every other step the submitter never decides, also not on a
      `$submitter_group` step (the group's 三重一大 decision is taken by its other members).
    - 回避 (`rules.recusal: submitter_group`): on every step not assigned to the submitting side,
      nobody of the submitter's group decides. A `$submitter_group` step is the group's own act by
      definition and is exempt."""
    if task.origin is Origin.start:
        return None  # the submitter's own (re)submission
    side = task_side(inst, task, directory)
    if side != SUBMITTER and inst.submitter in people:
        return Refusal("a submitter cannot approve their own application", "self_approval")
    if side is None and inst.spec.rules.recusal == "submitter_group":
        group = directory.group_of(inst.submitter_department)
        if any(group in directory.user_groups(p) for p in people):
            return Refusal("回避: you belong to the submitting group", "recusal")
    if inst.spec.rules.distinct_deciders:
        for person in people:
            other = inst.decided_steps.get(person, frozenset()) - {task.step}
            if other:
                return Refusal(f"you already decided step {sorted(other)[0]!r} of this application",
                               "same_decider")
    return None


def decide_refusal(inst: InstanceState, task: TaskState, actor: Actor,
                   directory: Directory) -> Refusal | None:
    """None if `actor` may decide (or claim, transfer, delegate, add a signer to) `task` now."""
    who = actor.acting_for
    if task.delegate is not None:
        return Refusal("the task is delegated and waits for the delegate's opinion", "not_assignee")
    if task.assignee is not None:
        if task.assignee != who:
            return Refusal("this task is assigned to someone else", "not_assignee")
    elif (task.department, task.role) not in actor.acting_memberships:
        return Refusal("you do not hold the role this task is queued for", "no_role")
    return review_refusal(inst, task, _people(actor), directory)


def handover_refusal(inst: InstanceState, task: TaskState, target: int | None, actor: Actor,
                     directory: Directory, action: str) -> Refusal | None:
    """Why `task` may not be handed to `target` (转办 / 委派 / 加签), or None."""
    if target is None:
        return Refusal("choose a person", "not_allowed")
    if task.origin is Origin.start:
        return Refusal("a returned application is resubmitted by its submitter", "self_approval")
    if target in _people(actor):
        return Refusal({"transfer": "the task is already yours",
                        "delegate": "you cannot delegate to yourself"}.get(action, "you cannot add yourself"),
                       "not_allowed")
    if task_side(inst, task, directory) != SUBMITTER and target == inst.submitter:
        return Refusal("the submitter cannot decide their own application", "self_approval")
    reason = review_refusal(inst, task, (target,), directory)
    if reason and reason.code == "recusal":
        return Refusal("回避: that person belongs to the submitting group", "recusal")
    if reason:
        return Refusal(f"that person may not decide this task: {reason}", reason.code)
    return None
