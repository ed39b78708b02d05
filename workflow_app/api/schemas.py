"""Request and response shapes of the JSON API (marshmallow, via APIFlask), and the one error shape
every failure uses: `{"error": code, "message": text, "details": {...}}`.

Input strings refuse NUL characters and lone surrogates: PostgreSQL cannot store either, and a
request must fail with 422 here rather than with 500 in the database. Ids are bounded to the
32-bit range of the integer key columns for the same reason.
"""
from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

MAX_ID = 2**31 - 1
MAX_EXTENSION_DAYS = 365  # engine.clock_actions.MAX_EXTENSION_DAYS
MAX_PAGE = 200
DEFAULT_PAGE = 50
ADD_POSITIONS = ("before", "after", "alongside")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable machine-readable code: unauthorized, "
                  "forbidden, not_found, conflict, invalid, rate_limited, ..."},
        "message": {"type": "string", "description": "human-readable explanation"},
        "details": {"type": "object", "description": "more about the error: for request validation "
                    "`{location: {field: [messages]}}`, for form data `{fields: {field: message}}`"},
    },
}


def _plain_text(value: str) -> None:
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValidationError("contains a NUL character or an invalid code point")


def _text(*, required: bool = False, max_length: int = 64, min_length: int = 1, **kwargs) -> String:
    return String(required=required, validate=[Length(min_length, max_length), _plain_text], **kwargs)


def _id(**kwargs) -> Integer:
    return Integer(strict=True, validate=Range(1, MAX_ID), **kwargs)


# ------------------------------------------------------------------ input
class StartIn(Schema):
    process = _text(required=True, metadata={"description": "process key, e.g. investment_review",
                                             "example": "review"})
    department = _text(required=True, metadata={"description": "the department you submit for "
                                                "(you must hold its `submitter` role)", "example": "zhentou"})
    data = Dict(keys=String(validate=_plain_text), load_default=dict,
                metadata={"description": "form fields of the process definition",
                          "example": {"project_name": "新材料中试基地", "investment_wan": "6000",
                                      "industry": "新材料"}})


class ActionIn(Schema):
    action = _text(required=True, metadata={
        "description": "approve, reject, submit, return, withdraw, void, claim, release, transfer, "
                       "delegate, resolve, add_signer, remove_signer, comment, cc, urge; the clock: "
                       "supplement (补正, opinion = everything missing), pause / resume (expert review, "
                       "hearing; pause needs an opinion), request_extension (the assignee: `days` and "
                       "an opinion), grant_extension (a head of the task's department: `days` and an "
                       "opinion); or a custom action of the step", "example": "approve"})
    task_id = _id(allow_none=True, metadata={"description": "the task acted on (not needed for "
                                             "withdraw, void, comment, cc, urge)"})
    opinion = _text(allow_none=True, max_length=5000, min_length=0,
                    metadata={"description": "审批意见 / comment / reason"})
    target = _text(allow_none=True, metadata={"description": "return: the step to return to"})
    user = _id(allow_none=True, metadata={"description": "transfer / delegate / add_signer: the person"})
    users = List(_id(), load_default=list, validate=Length(max=100),
                 metadata={"description": "cc: the people to copy"})
    position = String(allow_none=True, validate=OneOf(ADD_POSITIONS),
                      metadata={"description": "add_signer: before, after or alongside"})
    data = Dict(keys=String(validate=_plain_text), allow_none=True,
                metadata={"description": "field edits allowed at this step (resubmission: the whole form)"})
    days = Integer(strict=True, allow_none=True, validate=Range(1, MAX_EXTENSION_DAYS), metadata={
        "description": "request_extension / grant_extension: working days (1–365)", "example": 5})
    department = _text(allow_none=True, metadata={"description": "act in this capacity (with `role`); "
                                                  "default: the token's capacity"})
    role = _text(allow_none=True)
    on_behalf_of = _id(allow_none=True, metadata={"description": "act as the stand-in of this absent "
                                                  "colleague (an active substitution is required)"})

    @validates_schema
    def _capacity_pairs(self, data, **_kwargs):
        if (data.get("department") is None) != (data.get("role") is None):
            raise ValidationError("give both department and role, or neither", "department")


class PageQuery(Schema):
    before_id = Integer(validate=Range(1, MAX_ID), metadata={"description": "keyset: only items with a smaller id "
                                                 "(pass the previous page's next_before_id)"})
    limit = Integer(load_default=DEFAULT_PAGE, validate=Range(1, MAX_PAGE))


class SearchPageQuery(PageQuery):
    q = _text(max_length=100, metadata={"description": "filter by title"})


class FilteredPageQuery(SearchPageQuery):
    process = _text(metadata={"description": "only this process (key, e.g. park_project_lifecycle)"})
    step = _text(metadata={"description": "only tasks at this step (instance lists: the current step)"})
    department = _text(metadata={"description": "only tasks queued for this department (instance lists: "
                                 "the submitting department)"})
    due = String(validate=OneOf(("overdue", "soon")), metadata={
        "description": "overdue: past the due date; soon: due within two days (instance lists: has "
                       "such an open task)"})
    since = Date(metadata={"description": "arrived (task) or started (instance) on or after this day, "
                           "Asia/Shanghai"})
    until = Date(metadata={"description": "... on or before this day, Asia/Shanghai"})


class InstancesQuery(FilteredPageQuery):
    mine = Boolean(load_default=True, metadata={"description": "instances I started"})
    cc = Boolean(load_default=False, metadata={"description": "instead: instances copied to me (抄送)"})

    @validates_schema
    def _one_list(self, data, **_kwargs):
        if data["mine"] == data["cc"]:
            raise ValidationError("choose one list: mine=1 or cc=1", "mine")


class IdempotencyHeaders(Schema):
    idempotency_key = String(data_key="Idempotency-Key", validate=[Length(1, 128), _plain_text],
                             metadata={"description": "optional; a replay by the same user within 24 "
                                       "hours returns the first result and writes nothing"})


# ------------------------------------------------------------------ output
class TaskOut(Schema):
    id = Integer(required=True)
    step = String(required=True)
    branch = String(allow_none=True)
    round = Integer(required=True)
    seq = Integer(required=True)
    origin = String(required=True, metadata={"description": "route | queue | added | start"})
    status = String(required=True, metadata={"description": "open | waiting | done | cancelled"})
    department = String(required=True)
    role = String(required=True)
    assignee_id = Integer(allow_none=True)
    assignee_name = String(allow_none=True)
    delegate_id = Integer(allow_none=True)
    added_by_id = Integer(allow_none=True)
    decision = String(allow_none=True)
    opinion = String(allow_none=True)
    acted_by_id = Integer(allow_none=True)
    created_at = DateTime(required=True)
    completed_at = DateTime(allow_none=True)
    due_at = DateTime(allow_none=True)
    due_provisional = Boolean(required=True, metadata={"description": "due date computed with weekends "
                                                       "only: the year's holiday schedule is not loaded yet"})
    paused_at = DateTime(allow_none=True, metadata={"description": "the clock stopped at (补正 awaited, "
                                                    "expert review, hearing); null while it runs"})


class TrailEventOut(Schema):
    id = Integer(required=True)
    seq = Integer(required=True)
    created_at = DateTime(required=True)
    action = String(required=True)
    actor_id = Integer(allow_none=True)
    actor_name = String(required=True)
    actor_department = String(allow_none=True)
    actor_role = String(allow_none=True)
    on_behalf_of_id = Integer(allow_none=True)
    task_id = Integer(allow_none=True)
    from_step = String(allow_none=True)
    to_step = String(allow_none=True)
    opinion = String(allow_none=True)
    definition_hash = String(allow_none=True)
    details = Dict(required=True)
    hash = String(required=True)


class InstanceOut(Schema):
    id = Integer(required=True)
    process_key = String(required=True)
    definition_id = Integer(required=True)
    definition_version = String(required=True)
    title = String(required=True)
    status = String(required=True, metadata={"description": "running | approved | rejected | withdrawn | void"})
    current_step = String(required=True)
    round = Integer(required=True)
    version = Integer(required=True)
    submitter_id = Integer(required=True)
    submitter_name = String(required=True)
    submitter_department = String(required=True)
    parent_id = Integer(allow_none=True)
    subject_ref = String(allow_none=True, metadata={
        "description": "the park the application is about (its code, e.g. ZH-P01), taken from the "
                       "form's park field when the portfolio knows the park"})
    data = Dict(required=True)
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)
    ended_at = DateTime(allow_none=True)
    tasks = List(Nested(TaskOut), required=True)
    trail = List(Nested(TrailEventOut), required=True)


class InstanceDetailOut(InstanceOut):
    """InstanceOut as a response of its own. A separate class because apispec registers a schema
    met first nested (in ActionOut) and then top-level twice, with a UserWarning."""


class ActionResultOut(Schema):
    instance_id = Integer(required=True)
    status = String(required=True)
    current_step = String(required=True)
    trail_event_id = Integer(required=True)
    opened_task_ids = List(Integer(), required=True)
    replayed = Boolean(required=True, metadata={"description": "true when this is the stored result "
                                                "of an earlier request with the same Idempotency-Key"})


class ActionOut(Schema):
    result = Nested(ActionResultOut, required=True)
    instance = Nested(InstanceOut, required=True, metadata={"description": "the instance as it is now"})


class InboxItemOut(Schema):
    task_id = Integer(allow_none=True)
    instance_id = Integer(required=True)
    title = String(required=True)
    process_key = String(required=True)
    step = String(required=True)
    status = String(required=True)
    department = String(allow_none=True)
    role = String(allow_none=True)
    created_at = DateTime(required=True)
    due_at = DateTime(allow_none=True)
    due_provisional = Boolean(required=True)
    submitter = String(required=True)


class InboxPageOut(Schema):
    items = List(Nested(InboxItemOut), required=True)
    next_before_id = Integer(allow_none=True, required=True,
                             metadata={"description": "pass as before_id for the next page; null on the last"})


class DefinitionOut(Schema):
    id = Integer(required=True)
    key = String(required=True)
    revision = Integer(required=True)
    version = String(required=True)
    hash = String(required=True)
    latest = Boolean(required=True)
    title_zh = String(required=True)
    title_en = String(required=True)
    synced_at = DateTime(required=True)


class DefinitionListOut(Schema):
    items = List(Nested(DefinitionOut), required=True)


class MembershipOut(Schema):
    department = String(required=True)
    role = String(required=True)


class CapacityOut(Schema):
    department = String(allow_none=True, required=True)
    role = String(allow_none=True, required=True)


class TokenOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    expires_at = DateTime(allow_none=True, required=True)


class MeOut(Schema):
    id = Integer(required=True)
    username = String(required=True)
    display_name = String(required=True)
    admin_role = String(allow_none=True, required=True)
    memberships = List(Nested(MembershipOut), required=True)
    acting = Nested(CapacityOut, required=True)
    token = Nested(TokenOut, required=True)


class BreakOut(Schema):
    event_id = Integer(allow_none=True, required=True)
    seq = Integer(allow_none=True, required=True)
    reason = String(required=True)
    chain = String(allow_none=True, required=True)


class VerifyOut(Schema):
    ok = Boolean(required=True)
    checked = Integer(required=True, metadata={"description": "events verified"})
    chains = Integer(required=True, metadata={"description": "chains verified (instances + system)"})
    broken = Nested(BreakOut, allow_none=True, required=True,
                    metadata={"description": "the first broken event, or null"})
