"""The YAML process-definition format, as pydantic models.

This is the public surface district IT staff write against; `docs/process-definitions.md`
explains it and `flask defs schema` exports it as JSON Schema for editors. Only the *shape* is
checked here; cross-references (unknown steps, unreachable steps, bad conditions...) are checked
by `loader.py`, which knows line numbers and the organisation.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
# `.nan`, `.inf` (and 1e999, which YAML reads as infinity) are refused where the file is read,
# not when a form is checked against them.
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A label in both UI languages."""

    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(default="", max_length=200)


class FieldType(str, Enum):
    text = "text"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    enum = "enum"
    boolean = "boolean"
    attachment = "attachment"
    department = "department"  # a department/group code, e.g. the park's owner group


class FieldDef(_Strict):
    name: Identifier
    type: FieldType
    label: Text
    required: bool = False
    unit: str | None = Field(default=None, description="万元, m², 亩, 人 ... shown beside the input")
    choices: list[str] | None = Field(default=None, description="allowed values for type enum")
    min: FiniteNumber | None = None
    max: FiniteNumber | None = None
    max_length: int = Field(default=2000, ge=1, le=20000)
    editable_at: list[Identifier] = Field(
        default_factory=list,
        description="steps (besides the start step) at which this field may be edited")
    required_at: list[Identifier] = Field(
        default_factory=list,
        description="task or parallel steps that cannot be approved (or left by a custom action) "
                    "while this field is empty, e.g. the meeting date at the collective decision")
    help: Text | None = None

    @model_validator(mode="after")
    def _choices_for_enum(self) -> "FieldDef":
        if self.type is FieldType.enum and not self.choices:
            raise ValueError("an enum field needs 'choices'")
        if self.type is not FieldType.enum and self.choices:
            raise ValueError("'choices' is only for enum fields")
        return self


class Mode(str, Enum):
    single = "single"          # one decision (queue task, anyone of the role claims it)
    any = "any"                # 或签: one task per member, the first decision decides
    all = "all"                # 会签: every member must approve
    sequential = "sequential"  # 依次: members one after another
    quorum = "quorum"          # n of m approvals


class RuleRow(_Strict):
    when: str | None = Field(default=None, description="condition; omit on the last (default) row")
    department: str | None = None
    department_field: Identifier | None = None
    role: str


class Assign(_Strict):
    """Who is asked. `department` is a department code, or `$submitter` / `$submitter_group`;
    `department_field` takes the department from a form field; `rule` is a first-match table."""

    department: str | None = None
    department_field: Identifier | None = None
    role: str | None = None
    rule: list[RuleRow] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "Assign":
        ways = [self.department is not None, self.department_field is not None, self.rule is not None]
        if sum(ways) != 1:
            raise ValueError("give exactly one of 'department', 'department_field' or 'rule'")
        if self.rule is None and not self.role:
            raise ValueError("'role' is required with 'department' or 'department_field'")
        return self


class EscalationRung(_Strict):
    """One rung of the escalation ladder, counted in working days relative to the due date
    (negative = before it is due: a due-soon reminder)."""

    at_days: int = Field(ge=-30, le=60)
    notify: Literal["assignee", "head", "coordinator"] | Assign = "assignee"


class Deadline(_Strict):
    working_days: int = Field(ge=0, le=365)
    deemed_consent: bool = Field(default=False, description="逾期视为同意 (parallel branches only)")
    escalation: list[EscalationRung] = Field(default_factory=list)


class Branch(_Strict):
    """One department's part of a parallel group (并联审批)."""

    id: Identifier
    title: Text
    assign: Assign
    mode: Mode = Mode.single
    quorum: int | None = Field(default=None, ge=1)
    deadline: Deadline | None = None


class StepType(str, Enum):
    start = "start"
    task = "task"
    parallel = "parallel"
    subprocess = "subprocess"
    end = "end"


class Outcome(str, Enum):
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    void = "void"


class StepDef(_Strict):
    id: Identifier
    type: StepType
    title: Text
    # task
    assign: Assign | None = None
    mode: Mode = Mode.single
    quorum: int | None = Field(default=None, ge=1)
    deadline: Deadline | None = None
    opinion_required: list[str] = Field(
        default_factory=lambda: ["reject", "return"],
        description="actions at this step that need a written opinion")
    return_to: list[Identifier] = Field(default_factory=list, description="earlier steps 退回 may go to")
    bulk_approve: bool = False
    # parallel
    branches: list[Branch] | None = None
    # subprocess
    process: Identifier | None = None
    inputs: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="child field <- parent field")
    resume_at: list[Identifier] = Field(
        default_factory=list,
        description="steps of the child process: the parent goes on (by its approve transition) as "
                    "soon as the child reaches one of them, instead of waiting for the child to end")
    # end
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _by_type(self) -> "StepDef":
        t = self.type
        if t is StepType.task and self.assign is None:
            raise ValueError("a task step needs 'assign'")
        if t is not StepType.task and self.assign is not None:
            raise ValueError("'assign' is only for task steps (parallel branches have their own)")
        if t is StepType.parallel and not self.branches:
            raise ValueError("a parallel step needs at least one branch")
        if t is not StepType.parallel and self.branches:
            raise ValueError("'branches' is only for parallel steps")
        if t is StepType.subprocess and not self.process:
            raise ValueError("a subprocess step needs 'process'")
        if t is not StepType.subprocess and self.resume_at:
            raise ValueError("'resume_at' is only for subprocess steps")
        if t is StepType.end and self.outcome is None:
            raise ValueError("an end step needs 'outcome'")
        if t is not StepType.end and self.outcome is not None:
            raise ValueError("'outcome' is only for end steps")
        if self.mode is Mode.quorum and not self.quorum:
            raise ValueError("mode quorum needs 'quorum' (how many approvals)")
        return self


class DecisionRow(_Strict):
    when: str | None = Field(default=None, description="condition; omit on the last (default) row")
    dest: Identifier


class TransitionDef(_Strict):
    trigger: Identifier = Field(description="submit, approve, reject, or a custom action name")
    source: Identifier | list[Identifier]
    dest: Identifier | None = None
    when: str | None = Field(default=None, description="safe expression over form fields")
    decide: list[DecisionRow] | None = Field(default=None, description="decision table, first match wins")
    label: Text | None = Field(default=None, description="button label for custom actions")

    @model_validator(mode="after")
    def _dest_or_table(self) -> "TransitionDef":
        if (self.dest is None) == (self.decide is None):
            raise ValueError("give exactly one of 'dest' or 'decide'")
        if self.decide is not None and self.when is not None:
            raise ValueError("'when' and 'decide' cannot be combined; put conditions in the rows")
        return self


class Rules(_Strict):
    withdraw: bool = Field(default=True, description="submitter may 撤回 while the current step has not acted")
    distinct_deciders: bool = Field(default=False, description="one person may decide only one step")
    recusal: Literal["none", "submitter_group"] = Field(
        default="none", description="reviewers may not belong to the submitter's group or its subsidiaries")


class ProcessDef(_Strict):
    key: Identifier
    version: str = Field(pattern=r"^[0-9A-Za-z.\-]{1,32}$")
    title: Text
    subject: Literal["park", "enterprise", "investment", "none"] = "none"
    description: Text | None = None
    rules: Rules = Rules()
    fields: list[FieldDef] = Field(default_factory=list)
    steps: list[StepDef]
    transitions: list[TransitionDef]
    title_field: Identifier | None = Field(default=None, description="field used as the instance title")

    @classmethod
    def json_schema(cls) -> dict:
        schema = cls.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "ParkFlow process definition"
        return schema


