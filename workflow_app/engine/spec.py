"""Immutable, compiled process specifications.

A `ProcessSpec` is what the loader makes of one YAML file: validated, with conditions compiled and
lookups prepared. Specs are shared by every request and instance (they are never mutated); a
running instance is plain data that names its spec by content hash (see STYLE.md: spec apart from
running instance). Editing a YAML file makes a new spec with a new hash, never changes this one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Mapping

from .conditions import Condition
from .schema import FieldType, Mode, Outcome, Rules, StepType, Text

BUILTIN_TRIGGERS = ("submit", "approve", "reject")
# Actions every task step understands without a transition in the YAML.
GENERIC_ACTIONS = ("return", "withdraw", "void", "transfer", "delegate", "resolve", "add_signer",
                   "remove_signer", "claim", "release", "comment", "cc", "urge",
                   # the clock (engine/clock_actions.py): 补正, expert review / hearing, 延期
                   "supplement", "pause", "resume", "request_extension", "grant_extension")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    label: Text
    required: bool
    unit: str | None
    choices: tuple[str, ...]
    min: float | None
    max: float | None
    max_length: int
    editable_at: frozenset[str]
    required_at: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RuleSpec:
    condition: Condition | None
    department: str | None
    department_field: str | None
    role: str


@dataclass(frozen=True)
class AssignSpec:
    """Who is asked: a fixed department, one named by a field, or a first-match rule table."""

    department: str | None
    department_field: str | None
    role: str | None
    rule: tuple[RuleSpec, ...] = ()


@dataclass(frozen=True)
class RungSpec:
    at_days: int
    notify: str | AssignSpec


@dataclass(frozen=True)
class DeadlineSpec:
    working_days: int
    deemed_consent: bool = False
    escalation: tuple[RungSpec, ...] = ()


@dataclass(frozen=True)
class BranchSpec:
    id: str
    title: Text
    assign: AssignSpec
    mode: Mode
    quorum: int | None
    deadline: DeadlineSpec | None


@dataclass(frozen=True)
class StepSpec:
    id: str
    type: StepType
    title: Text
    index: int
    line: int = 1
    assign: AssignSpec | None = None
    mode: Mode = Mode.single
    quorum: int | None = None
    deadline: DeadlineSpec | None = None
    opinion_required: frozenset[str] = frozenset({"reject", "return"})
    return_to: tuple[str, ...] = ()
    bulk_approve: bool = False
    branches: tuple[BranchSpec, ...] = ()
    process: str | None = None
    inputs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    resume_at: tuple[str, ...] = ()  # child steps at which the waiting parent goes on
    outcome: Outcome | None = None

    @property
    def is_human(self) -> bool:
        """Steps where people decide (tasks and parallel groups)."""
        return self.type in (StepType.task, StepType.parallel)

    def groups(self) -> tuple[tuple[str | None, AssignSpec, Mode, int | None, DeadlineSpec | None], ...]:
        """The task groups this step opens: one per branch, or the step itself."""
        if self.type is StepType.parallel:
            return tuple((b.id, b.assign, b.mode, b.quorum, b.deadline) for b in self.branches)
        assert self.assign is not None
        return ((None, self.assign, self.mode, self.quorum, self.deadline),)

    def branch(self, branch_id: str | None) -> BranchSpec | None:
        return next((b for b in self.branches if b.id == branch_id), None)

    def deadline_for(self, branch_id: str | None) -> DeadlineSpec | None:
        """The time limit of one task group: the branch's in a parallel step, else the step's."""
        if self.type is StepType.parallel:
            branch = self.branch(branch_id)
            return branch.deadline if branch else None
        return self.deadline


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    source: str
    dest: str
    condition: Condition | None
    label: Text | None
    order: int  # position in the file; first match wins among equal (trigger, source)


@dataclass(frozen=True)
class ProcessSpec:
    key: str
    version: str
    title: Text
    subject: str
    description: Text | None
    rules: Rules
    fields: tuple[FieldSpec, ...]
    steps: Mapping[str, StepSpec]
    transitions: tuple[TransitionSpec, ...]
    content_hash: str
    source: str
    source_text: str
    title_field: str | None = None

    @cached_property
    def start_step(self) -> StepSpec:
        return next(s for s in self.steps.values() if s.type is StepType.start)

    @cached_property
    def field_map(self) -> Mapping[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def triggers_from(self, step_id: str) -> tuple[str, ...]:
        """Distinct triggers that leave `step_id`, in file order."""
        seen: dict[str, None] = {}
        for t in self.transitions:
            if t.source == step_id:
                seen.setdefault(t.trigger, None)
        return tuple(seen)

    def trigger_label(self, trigger: str) -> Text | None:
        return next((t.label for t in self.transitions if t.trigger == trigger and t.label), None)

    def custom_triggers(self) -> frozenset[str]:
        return frozenset(t.trigger for t in self.transitions if t.trigger not in BUILTIN_TRIGGERS)

    def earlier_steps(self, step_id: str) -> frozenset[str]:
        """Steps from which `step_id` can be reached (its possible predecessors)."""
        incoming: dict[str, set[str]] = {}
        for t in self.transitions:
            incoming.setdefault(t.dest, set()).add(t.source)
        seen: set[str] = set()
        todo = [step_id]
        while todo:
            for src in incoming.get(todo.pop(), ()):
                if src not in seen:
                    seen.add(src)
                    todo.append(src)
        seen.discard(step_id)
        return frozenset(seen)
