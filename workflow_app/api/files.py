"""Attachments through the API: start an instance or act on one with files (multipart), list an
instance's files, download one. The same checks as the pages (`services.attachments`), and the
file and the action are one transaction.

Multipart requests carry a `payload` part — the JSON body the JSON endpoint takes
(`POST /instances`, `POST /instances/{id}/actions`) — and one file part per attachment field,
named after the field (e.g. `design_file`).
"""
from __future__ import annotations

import json
from io import BytesIO

from apiflask import APIBlueprint, Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from flask import current_app, request, send_file
from apiflask.validators import Range
from marshmallow import EXCLUDE, RAISE, ValidationError

from ..container import services
from ..engine.errors import InvalidAction, NotFound
from ..engine.runtime import Request
from ..models import ProcessInstance
from ..services import attachments
from ..services.attachments import Upload
from . import instances as api_instances
from .auth import auth, current
from .errors import COMMON
from .reads import visible_instance
from .schemas import MAX_ID, ActionIn, ActionOut, IdempotencyHeaders, StartIn

bp = APIBlueprint("api_files", __name__, url_prefix="/api/v1", tag="Attachments")

MULTIPART_PATHS = ("/api/v1/instances/with-files", "/api/v1/instances/{instance_id}/actions/with-files")


class MultipartIn(Schema):
    class Meta:
        unknown = EXCLUDE  # the file parts: read from request.files by field name

    payload = String(required=True, metadata={"description": "the JSON body of the JSON endpoint, as text"})


class ViaQuery(Schema):
    via = Integer(strict=True, validate=Range(1, MAX_ID), metadata={
        "description": "a sub-process that shows this file copied from its parent"})


class AttachmentOut(Schema):
    id = Integer(required=True)
    instance_id = Integer(required=True)
    field = String(required=True)
    filename = String(required=True)
    size = Integer(required=True)
    media_type = String(required=True)
    sha256 = String(required=True)
    uploaded_by_id = Integer(required=True)
    trail_event_id = Integer(allow_none=True)
    created_at = DateTime(required=True)
    download = String(required=True, metadata={"description": "path of GET /api/v1/attachments/{id}"})


class AttachmentListOut(Schema):
    items = List(Nested(AttachmentOut), required=True)


def _payload(schema: Schema, text: str) -> dict:
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidAction("payload is not JSON", fields={"payload": "not JSON"}) from None
    if not isinstance(raw, dict):
        raise InvalidAction("payload must be a JSON object", fields={"payload": "not an object"})
    try:
        return schema.load(raw)
    except ValidationError as err:
        raise InvalidAction("payload is invalid", fields={"payload": err.messages}) from None


def _uploads() -> list[Upload]:
    out = []
    for name, storage in request.files.items(multi=True):
        try:
            out.append(Upload(name, storage.filename or name, storage.read()))
        finally:
            storage.close()  # a large upload is spooled to a temporary file
    return out


def _fingerprinted(data: dict, files: list[attachments.Checked]) -> dict:
    return {**data, "_files": {c.field: c.sha256 for c in files}}


@bp.post("/instances/with-files")
@bp.auth_required(auth)
@bp.input(IdempotencyHeaders, location="headers", arg_name="headers_data")
@bp.input(MultipartIn, location="form_and_files", arg_name="form_data")
@bp.output(ActionOut, status_code=201, description="the instance was started with its files")
@bp.doc(responses={**COMMON, 413: "the request is larger than the server accepts (`too_large`)"})
def start(form_data: dict, headers_data: dict):
    """Start an instance with attachments

    Multipart: `payload` is the JSON body of `POST /instances`; each attachment field's file is
    a part named after the field. Size and type limits apply per file (422 naming the field).
    The start event of the trail lists every file with its sha256.
    """
    who = current()
    body = _payload(StartIn(), form_data["payload"])
    svc = services()
    with svc.db.read() as s:
        _definition_id, spec = svc.store.latest(s, body["process"])
    names = [f.name for f in spec.fields]
    files = attachments.check_uploads(attachments.Policy.from_config(current_app.config), spec, _uploads(), names)
    attachments.guard_typed_values(spec, body["data"], None)
    data = attachments.with_files(body["data"], files)

    def run(s):
        result = svc.workflow.start(s, who.user_id, body["process"], data, department=body["department"],
                                    trail_details=attachments.trail_details(files))
        attachments.save(s, result.instance_id, result.trail_event_id, who.user_id, files, svc.clock())
        return 201, result

    return api_instances._write(run, _fingerprinted(body, files), headers_data)


@bp.post("/instances/<int:instance_id>/actions/with-files")
@bp.auth_required(auth)
@bp.input(IdempotencyHeaders, location="headers", arg_name="headers_data")
@bp.input(MultipartIn, location="form_and_files", arg_name="form_data")
@bp.output(ActionOut, description="the action was performed and the files stored")
@bp.doc(responses={**COMMON, 413: "the request is larger than the server accepts (`too_large`)"})
def act(instance_id: int, form_data: dict, headers_data: dict):
    """Act on an instance with attachments

    Multipart: `payload` is the JSON body of `POST /instances/{id}/actions`; files go to the
    attachment fields editable at the task's step (resubmission: any). The action's trail event
    lists every file with its sha256.
    """
    who = current()
    api_instances._in_range(instance_id)
    body = _payload(ActionIn(), form_data["payload"])
    svc = services()
    with svc.db.read() as s:
        instance = visible_instance(s, who, instance_id)
        spec = svc.store.spec(s, instance.definition_id)
        current_data = dict(instance.form_data or {})
    files = attachments.check_uploads(attachments.Policy.from_config(current_app.config), spec, _uploads(),
                                      [f.name for f in spec.fields])  # the engine checks the step
    attachments.guard_typed_values(spec, body.get("data"), current_data)
    department, role = body.get("department"), body.get("role")
    if department is None:
        department, role = who.acting_department, who.acting_role
    action = Request(action=body["action"], task_id=body.get("task_id"), opinion=body.get("opinion"),
                     target=body.get("target"), user=body.get("user"), users=tuple(body.get("users") or ()),
                     position=body.get("position"), data=attachments.with_files(body.get("data"), files))

    def run(s):
        result = svc.workflow.act(s, who.user_id, instance_id, action, department=department, role=role,
                                  on_behalf_of=body.get("on_behalf_of"),
                                  trail_details=attachments.trail_details(files))
        attachments.save(s, instance_id, result.trail_event_id, who.user_id, files, svc.clock())
        return 200, result

    return api_instances._write(run, _fingerprinted(body, files), headers_data)


@bp.get("/instances/<int:instance_id>/attachments")
@bp.auth_required(auth)
@bp.output(AttachmentListOut)
@bp.doc(responses=COMMON)
def listing(instance_id: int):
    """An instance's attachments

    Newest first; without the content (download each with `GET /attachments/{id}`). 404 unless
    you may see the instance.
    """
    who = current()
    api_instances._in_range(instance_id)
    with services().db.read() as s:
        instance = visible_instance(s, who, instance_id)
        rows = attachments.for_instance(s, instance_id, instance.form_data)
        items = [{"id": r.id, "instance_id": r.instance_id, "field": r.field, "filename": r.filename,
                  "size": r.size, "media_type": r.media_type, "sha256": r.sha256,
                  "uploaded_by_id": r.uploaded_by_id, "trail_event_id": r.trail_event_id,
                  "created_at": r.created_at,
                  "download": f"/api/v1/attachments/{r.id}" + (f"?via={instance_id}" if r.instance_id != instance_id else "")}
                 for r in rows]
    return {"items": items}


@bp.get("/attachments/<int:attachment_id>")
@bp.auth_required(auth)
@bp.input(ViaQuery, location="query", unknown=RAISE)
@bp.doc(responses={**COMMON, 200: {"description": "the file, with its media type and a "
                                   "Content-Disposition naming it (UTF-8 `filename*`)",
                                   "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download(attachment_id: int, query_data: dict):
    """Download an attachment

    404 unless you may see the instance it belongs to (a sub-process's copied file: pass
    `via={child id}`).
    """
    who = current()
    api_instances._in_range(attachment_id)
    via = query_data.get("via")
    with services().db.read() as s:
        row = attachments.for_download(s, attachment_id, user_id=who.user_id, memberships=who.memberships,
                                       admin_role=who.admin_role, via=via)
        content, name, media_type = row.content, row.filename, row.media_type
    response = send_file(BytesIO(content), mimetype=media_type, as_attachment=True, download_name=name, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def document_multipart(spec: dict) -> dict:
    """OpenAPI: the multipart bodies also take one binary part per attachment field."""
    for path in MULTIPART_PATHS:
        operation = spec.get("paths", {}).get(path, {}).get("post")
        if not operation:
            continue
        content = operation.get("requestBody", {}).get("content", {})
        for media in content.values():
            schema = media.get("schema", {})
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[1]
                schema = spec["components"]["schemas"][name]
            schema["additionalProperties"] = {"type": "string", "format": "binary",
                                              "description": "a file for the attachment field of this name"}
    return spec
