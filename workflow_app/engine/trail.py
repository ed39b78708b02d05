"""The hash chain of the decision trail (pure: no database).

Each event's hash is SHA-256 over the previous event's hash and every recorded field, each
length-prefixed so that text moved from one field to the next changes the hash. Verification
walks a chain in order and names the first event whose stored hash or link does not match, and
checks that the chain ends where its stored head says (so deleting the newest events shows too).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

GENESIS = "0" * 64

# The fields covered by the hash, in order. Adding a field is a format change: bump the prefix.
HASHED_FIELDS = ("instance_id", "seq", "created_at", "action", "actor_id", "actor_name",
                 "actor_department", "actor_role", "on_behalf_of_id", "task_id", "from_step",
                 "to_step", "opinion", "definition_id", "definition_hash", "form_hash", "details")
_FORMAT = b"parkflow-trail-v1"


def _text(value: object) -> str:
    if value is None:
        return "\x00"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def chained_hash(format_tag: bytes, prev_hash: str, row: Mapping[str, object], fields: tuple[str, ...]) -> str:
    """sha256 over a format tag, the previous hash and each field length-prefixed (so no two
    different rows share a preimage); the one hash of every chain (trail, security log)."""
    digest = hashlib.sha256(format_tag)
    digest.update(prev_hash.encode())
    for name in fields:
        encoded = _text(row.get(name)).encode("utf-8")
        digest.update(b"%d:" % len(encoded))
        digest.update(encoded)
    return digest.hexdigest()


def event_hash(prev_hash: str, event: Mapping[str, object]) -> str:
    return chained_hash(_FORMAT, prev_hash, event, HASHED_FIELDS)


def form_hash(data: Mapping[str, object]) -> str:
    return hashlib.sha256(_text(dict(data)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    """Where a chain stops verifying."""

    event_id: int | None
    seq: int | None
    reason: str


def verify_chain(events: Iterable[Mapping[str, object]], head: str, count: int) -> tuple[int, Break | None]:
    """Check one chain (events in seq order) against its stored head and count.

    Returns (events checked, first break or None). The break names the first event that does not
    fit: an edited one, the one after a removed or reordered one, one beyond the recorded head
    (appended by hand); or, when events were removed from the end, the first missing seq."""
    prev = GENESIS
    checked = 0
    expected_seq = 1
    last_id = None
    for event in events:
        seq = event["seq"]
        eid = event.get("id")  # type: ignore[assignment]
        if seq != expected_seq:
            return checked, Break(eid, seq, f"sequence jumps from {expected_seq - 1} to {seq} "  # type: ignore[arg-type]
                                            "(an event was removed, inserted or reordered)")
        if event["prev_hash"] != prev:
            return checked, Break(eid, seq, "link to the previous event does not match")  # type: ignore[arg-type]
        actual = event_hash(prev, event)
        if actual != event["hash"]:
            return checked, Break(eid, seq, "content does not match its hash (edited)")  # type: ignore[arg-type]
        if checked == count:
            return checked, Break(eid, seq, f"event beyond the recorded head of {count} events "  # type: ignore[arg-type]
                                            "(added outside the application)")
        prev = actual
        last_id = eid
        checked += 1
        expected_seq += 1
    if checked < count:
        return checked, Break(None, checked + 1,
                              f"chain ends after {checked} events but its head records {count} "
                              "(events removed from the end)")
    if prev != (head or GENESIS):
        return checked, Break(last_id, checked or None,  # type: ignore[arg-type]
                              "the newest event does not match the head recorded for the chain "
                              "(head altered, or the newest event replaced)")
    return checked, None
