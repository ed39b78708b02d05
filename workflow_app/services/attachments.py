"""Attachments: checking uploaded files, storing them with the action that attached them, and
finding them again for a viewer.

An upload is checked before anything is written (size limit and allowed types from the config;
the type is decided from the file name's extension AND the file's first bytes, never from what
the browser claims). The form data of the field then holds `sha256:<hex>` — so the instance's
form hash in the trail covers the file's content — and the trail event of the action lists each
file (field, name, size, type, sha256). The caller stores the rows with `save()` inside the same
transaction as the action: one human action, one transaction, file included.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.errors import InvalidAction, NotFound
from ..engine.schema import FieldType
from ..engine.spec import ProcessSpec
from ..models import Attachment, ProcessInstance
from .queries import can_view

PREFIX = "sha256:"
_REF = re.compile(r"sha256:([0-9a-f]{64})\Z")

# extension -> (media type, check of the first bytes)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
KNOWN_TYPES: dict[str, tuple[str, object]] = {
    "pdf": ("application/pdf", lambda b: b.startswith(b"%PDF-")),
    "ofd": ("application/ofd", lambda b: b.startswith(_ZIP)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             lambda b: b.startswith(_ZIP)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             lambda b: b.startswith(_ZIP)),
    "doc": ("application/msword", lambda b: b.startswith(_OLE)),
    "xls": ("application/vnd.ms-excel", lambda b: b.startswith(_OLE)),
    "png": ("image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    "jpg": ("image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "jpeg": ("image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "zip": ("application/zip", lambda b: b.startswith(_ZIP)),
    "txt": ("text/plain; charset=utf-8", lambda b: _utf8(b)),
}


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


@dataclass(frozen=True)
class Upload:
    """A file as received: which field, the name the client gave, the bytes."""

    field: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class Checked:
    field: str
    filename: str
    media_type: str
    size: int
    sha256: str
    content: bytes

    @property
    def reference(self) -> str:
        return PREFIX + self.sha256

    def trail_entry(self) -> dict:
        return {"field": self.field, "filename": self.filename, "size": self.size,
                "media_type": self.media_type, "sha256": self.sha256}


def reference_of(value: object) -> str | None:
    """The sha256 a stored field value refers to (None: not an uploaded file)."""
    match = _REF.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def clean_filename(name: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = base.strip().strip(".") or "file"
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 250 - len(ext)] + dot + ext) if dot and len(ext) < 10 else base[:255]
    return base


@dataclass(frozen=True)
class Policy:
    """What may be uploaded: `max_bytes` per file and the allowed extensions (config
    ATTACHMENT_MAX_BYTES, ATTACHMENT_TYPES)."""

    max_bytes: int
    extensions: tuple[str, ...]

    @classmethod
    def from_config(cls, config) -> "Policy":
        types = config.get("ATTACHMENT_TYPES") or ()
        if isinstance(types, str):
            types = types.split(",")
        exts = tuple(t.strip().lower().lstrip(".") for t in types if t.strip().lower().lstrip(".") in KNOWN_TYPES)
        return cls(int(config.get("ATTACHMENT_MAX_BYTES") or 0), exts)

    def check(self, upload: Upload) -> Checked:
        """The file checked and hashed; InvalidAction naming the field otherwise. Messages are
        the engine's kind (English, patterns translated by web/messages.py)."""
        name = clean_filename(upload.filename)
        ext = name.rpartition(".")[2].lower() if "." in name else ""
        if not upload.content:
            raise self._refuse(upload.field, "the file is empty")
        if len(upload.content) > self.max_bytes:
            raise self._refuse(upload.field, f"file larger than {_size(self.max_bytes)}")
        if ext not in self.extensions:
            raise self._refuse(upload.field, f"file type not allowed (allowed: {', '.join(self.extensions)})")
        media_type, sniff = KNOWN_TYPES[ext]
        if not sniff(upload.content[:4096] if ext != "txt" else upload.content):  # type: ignore[operator]
            raise self._refuse(upload.field, f"the content is not a .{ext} file")
        return Checked(upload.field, name, media_type, len(upload.content),
                       hashlib.sha256(upload.content).hexdigest(), upload.content)

    @staticmethod
    def _refuse(field: str, message: str) -> InvalidAction:
        return InvalidAction(f"form has errors — {field}: {message}", fields={field: message})


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    return f"{n // 1024} KB" if n >= 1024 and n % 1024 == 0 else f"{n} bytes"


def check_uploads(policy: Policy, spec: ProcessSpec, uploads: list[Upload], allowed: list[str]) -> list[Checked]:
    """Every upload checked; uploads to fields that are not attachment fields editable here are
    refused (one file per field)."""
    fields = spec.field_map
    out: dict[str, Checked] = {}
    errors: dict[str, str] = {}
    for up in uploads:
        f = fields.get(up.field)
        if f is None or f.type is not FieldType.attachment:
            errors[up.field] = "not an attachment field"
        elif up.field not in allowed:
            errors[up.field] = "this field cannot be changed at this step"
        elif up.field in out:
            errors[up.field] = "one file per field"
        else:
            try:
                out[up.field] = policy.check(up)
            except InvalidAction as err:
                errors.update(err.details["fields"])
    if errors:
        listing = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise InvalidAction(f"form has errors — {listing}", fields=errors)
    return list(out.values())


def guard_typed_values(spec: ProcessSpec, data: dict | None, current: dict | None) -> None:
    """Attachment fields are set by uploading a file. A value typed into one (through the JSON
    API) is accepted only if it is what the field already holds (a resubmission sending the form
    back unchanged), so nobody can point a field at a file they never uploaded."""
    if not data:
        return
    errors = {}
    for f in spec.fields:
        if f.type is FieldType.attachment and f.name in data:
            value = data[f.name]
            if value in (None, "") or value == (current or {}).get(f.name):
                continue
            errors[f.name] = "upload a file for this field"
    if errors:
        listing = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise InvalidAction(f"form has errors — {listing}", fields=errors)


def with_files(data: dict | None, files: list[Checked]) -> dict | None:
    if not files:
        return data
    return {**(data or {}), **{c.field: c.reference for c in files}}


def trail_details(files: list[Checked]) -> dict | None:
    return {"attachments": [c.trail_entry() for c in files]} if files else None


def save(session: Session, instance_id: int, trail_event_id: int, uploader_id: int,
         files: list[Checked], now: datetime) -> list[Attachment]:
    rows = [Attachment(instance_id=instance_id, field=c.field, sha256=c.sha256, size=c.size,
                       media_type=c.media_type, filename=c.filename, uploaded_by_id=uploader_id,
                       trail_event_id=trail_event_id, created_at=now, content=c.content)
            for c in files]
    session.add_all(rows)
    session.flush()
    return rows


def _lineage(session: Session, instance_id: int) -> list[int]:
    """The instance and its parents: a sub-process's form copies its parent's attachment fields."""
    ids, current = [], instance_id
    while current is not None and current not in ids and len(ids) < 10:
        ids.append(current)
        current = session.scalar(select(ProcessInstance.parent_id).where(ProcessInstance.id == current))
    return ids


def for_instance(session: Session, instance_id: int, data: dict | None = None) -> list[Attachment]:
    """The files an instance shows: its own uploads, and for fields copied from a parent the
    parent's file with that sha256. Newest first; content not loaded."""
    lineage = _lineage(session, instance_id)
    rows = list(session.scalars(select(Attachment).where(Attachment.instance_id.in_(lineage))
                                .order_by(Attachment.id.desc())))
    wanted = {reference_of(v) for v in (data or {}).values()} - {None}
    return [r for r in rows if r.instance_id == instance_id or r.sha256 in wanted]


def for_download(session: Session, attachment_id: int, *, user_id: int, memberships,
                 admin_role: str | None, via: int | None = None) -> Attachment:
    """The attachment if the viewer may see the instance it belongs to (or, for a file a
    sub-process copied from its parent, the child `via` that shows it); NotFound otherwise."""
    row = session.get(Attachment, attachment_id)
    if row is None:
        raise NotFound("no such attachment")
    instance = session.get(ProcessInstance, row.instance_id)
    if instance is not None and can_view(session, user_id, memberships, admin_role, instance):
        return row
    if via is not None and via != row.instance_id:
        child = session.get(ProcessInstance, via)
        if (child is not None and row.instance_id in _lineage(session, via)
                and PREFIX + row.sha256 in (child.form_data or {}).values()
                and can_view(session, user_id, memberships, admin_role, child)):
            return row
    raise NotFound("no such attachment")
