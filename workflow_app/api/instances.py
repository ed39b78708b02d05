"""Instances through the API: start one, read one, act on one. Same service calls and the same
permission checks as the pages (`Workflow.start` / `Workflow.act`, `queries.can_view`); an
instance the caller may not see is 404 for reading and for acting alike."""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import request
from sqlalchemy import select

from ..container import services
from ..engine.errors import ActionError, Forbidden, NotFound
from ..engine.runtime import Request
from ..models import ProcessInstance, Substitution
from ..services import attachments
from ..services.queries import takes_part
from . import idempotency
from .auth import auth, current
from .errors import COMMON, WITH_BODY
from .reads import instance_detail, visible_instance, visible_to_user
from .schemas import MAX_ID, ActionIn, ActionOut, IdempotencyHeaders, InstanceDetailOut, StartIn

bp = APIBlueprint("api_instances", __name__, url_prefix="/api/v1", tag="Instances")


@bp.get("/instances/<int:instance_id>")
@bp.auth_required(auth)
@bp.output(InstanceDetailOut)
@bp.doc(responses=COMMON)
def detail(instance_id: int):
    """An instance with its tasks and trail

    404 unless you submitted it, hold or held a task on it (or could claim one), were copied,
    or review compliance / audit.
    """
    svc, who = services(), current()
    _in_range(instance_id)
    with svc.db.read() as s:
        visible_instance(s, who, instance_id)
        return instance_detail(s, instance_id)


@bp.post("/instances")
@bp.auth_required(auth)
@bp.input(IdempotencyHeaders, location="headers", arg_name="headers_data")
@bp.input(StartIn, location="json")
@bp.output(ActionOut, status_code=201, description="the instance was started")
@bp.doc(responses=WITH_BODY)
def start(json_data: dict, headers_data: dict):
    """Start an instance

    Start the latest revision of a process for a department whose `submitter` role you hold;
    `data` is the form.
    """
    who = current()

    def run(s):
        _definition_id, spec = services().store.latest(s, json_data["process"])
        attachments.guard_typed_values(spec, json_data["data"], None)  # files: POST /instances/with-files
        result = services().workflow.start(s, who.user_id, json_data["process"], json_data["data"],
                                           department=json_data["department"])
        return 201, result

    return _write(run, json_data, headers_data)


@bp.post("/instances/<int:instance_id>/actions")
@bp.auth_required(auth)
@bp.input(IdempotencyHeaders, location="headers", arg_name="headers_data")
@bp.input(ActionIn, location="json")
@bp.output(ActionOut, description="the action was performed")
@bp.doc(responses=WITH_BODY)
def act(instance_id: int, json_data: dict, headers_data: dict):
    """Act on an instance

    Approve, reject, return, claim, transfer, comment ... A second decision on a task that is
    already done is 409 and writes nothing. The clock: `supplement` (补正) stops the step's clocks
    until the submitter resubmits; `pause` / `resume` stop and restart one task's clock;
    `request_extension` (the assignee) and `grant_extension` (a head of the task's department,
    acting as that head) take `days`. While a clock is stopped the task cannot be approved (409).
    """
    who = current()
    _in_range(instance_id)
    department, role = json_data.get("department"), json_data.get("role")
    if department is None:
        department, role = who.acting_department, who.acting_role
    action = Request(action=json_data["action"], task_id=json_data.get("task_id"),
                     opinion=json_data.get("opinion"), target=json_data.get("target"),
                     user=json_data.get("user"), users=tuple(json_data.get("users") or ()),
                     position=json_data.get("position"), data=json_data.get("data"),
                     days=json_data.get("days"))

    on_behalf_of = json_data.get("on_behalf_of")
    check_first = on_behalf_of is not None or action.action not in DECIDER_CHECKED

    def run(s):
        if check_first:
            _check_visible(s, who, instance_id, on_behalf_of)
            if on_behalf_of is None and not takes_part(s, who.user_id, who.memberships,
                                                       s.get(ProcessInstance, instance_id),
                                                       frozenset(services().store.organisation.coordinators())):
                raise Forbidden("compliance reviewers and auditors only read applications")
        if action.data:
            _guard_files(s, who, instance_id, action.data)
        try:
            result = services().workflow.act(s, who.user_id, instance_id, action, department=department,
                                             role=role, on_behalf_of=on_behalf_of)
        except ActionError:
            if not check_first:  # refused: a stranger must learn nothing, so 404 unless visible
                visible_instance(s, who, instance_id)
            raise
        return 200, result

    return _write(run, json_data, headers_data)


# Actions the engine lets through only for someone who holds the task or could claim it from a
# queue of theirs (`permissions.decide_refusal`, or the task's own assignee/delegate) — and such
# a person can see the instance anyway (`queries.can_view`). For these the visibility check runs
# only when the action is refused, to answer 404 rather than 403/409/422 to a stranger: two
# statements and an ORM load less per approval. Everything else (comment, cc, urge, withdraw,
# void, custom actions, any action on behalf of someone) is checked up front as before.
DECIDER_CHECKED = frozenset({"approve", "reject", "submit", "return", "claim", "release", "transfer",
                             "delegate", "resolve", "add_signer",
                             "supplement", "pause", "resume", "request_extension"})


def _guard_files(s, who, instance_id: int, data: dict) -> None:
    """Attachment fields change only by uploading (`.../actions/with-files`)."""
    row = s.execute(select(ProcessInstance.definition_id, ProcessInstance.form_data)
                    .where(ProcessInstance.id == instance_id)).one_or_none()
    if row is None:
        return  # the action itself answers 404
    spec = services().store.spec(s, row.definition_id)
    try:
        attachments.guard_typed_values(spec, data, row.form_data)
    except ActionError:
        visible_instance(s, who, instance_id)  # a stranger learns nothing: 404 first
        raise


def _in_range(instance_id: int) -> None:
    if instance_id > MAX_ID:  # beyond the key column: cannot exist (and PostgreSQL would refuse it)
        raise NotFound("no such application")


def _check_visible(s, who, instance_id: int, on_behalf_of: int | None) -> None:
    """Acting needs the instance to be visible to the actor, or to the absent colleague a stand-in
    acts for (it is their task); the substitution itself is checked by the service."""
    if on_behalf_of is None:
        visible_instance(s, who, instance_id)
        return
    # The substitution first: otherwise anyone could learn what a colleague may see.
    now = services().clock()
    if s.scalar(select(Substitution.id).where(
            Substitution.user_id == on_behalf_of, Substitution.substitute_id == who.user_id,
            Substitution.starts_at <= now, Substitution.ends_at > now)) is None:
        raise Forbidden("you are not standing in for that person now", "not_substitute")
    visible_to_user(s, on_behalf_of, instance_id)


def _write(run, json_data: dict, headers_data: dict):
    """Run one write transaction; with an Idempotency-Key, replay or record it (idempotency.py)."""
    svc, who = services(), current()
    key = headers_data.get("idempotency_key")
    now = svc.clock()
    with svc.db.write() as s:
        if key is None:
            status, result = run(s)
            out = _result(result)
        else:
            print_ = idempotency.fingerprint(request.method, request.path, json_data)
            user = idempotency.lock_user(s, who.user_id)
            stored = idempotency.find(s, who.user_id, key, print_, now=now)
            if stored is not None:
                status, out = stored.status, {**stored.result, "replayed": True}
            else:
                status, result = run(s)
                out = _result(result)
                idempotency.remember(s, user, key, print_, status, out, now=now, method=request.method,
                                     path=request.path, ip=request.remote_addr or "")
        # The instance as this transaction leaves it, read before it commits: no second
        # transaction (BEGIN + ROLLBACK round trips) after the write.
        instance = instance_detail(s, out["instance_id"])
    headers = {"Idempotent-Replayed": "true"} if out["replayed"] else {}
    return {"result": out, "instance": instance}, status, headers


def _result(result) -> dict:
    return {"instance_id": result.instance_id, "status": result.status, "current_step": result.current_step,
            "trail_event_id": result.trail_event_id, "opened_task_ids": list(result.opened_task_ids),
            "replayed": False}
