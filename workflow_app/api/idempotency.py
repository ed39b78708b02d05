"""`Idempotency-Key` for the API's POSTs, without a table of its own.

A client that did not see the answer to a POST (timeout, dropped connection) retries it with
the same key. The first successful request records, in the SAME transaction as its write, a
security-log event `api_idempotency` holding the key, a fingerprint of the request and the
result; a replay by the same user within `WINDOW` finds it, writes nothing and answers with the
stored result (`replayed: true`) plus the instance as it is now. Because the record commits with
the write or not at all, a request that failed left no record and its retry runs afresh.

Concurrency: a keyed request first locks its user's row (`FOR NO KEY UPDATE`; on SQLite `BEGIN
IMMEDIATE` already serialises writers), so two copies of one request sent at once run one after
the other and the second becomes a replay. Lock order is user row, then instance row. NO KEY
UPDATE rather than UPDATE because every insert that references the user (a task assigned to
them, a trail event) takes FOR KEY SHARE on that row: with FOR UPDATE, another person's action
holding an instance lock and inserting such a row would wait for us while we wait for their
instance — a deadlock. NO KEY UPDATE does not conflict with KEY SHARE.

The lookup walks the user's security events of the last 24 hours on index
`ix_security_event_user (user_id, created_at)`. Reusing a key for a different request is a
client bug: 422 with `details.reason = "idempotency_key_reused"` (as the IETF httpapi
Idempotency-Key draft suggests).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.errors import InvalidAction
from ..models import SecurityEvent, User
from ..services import accounts

EVENT = "api_idempotency"
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Stored:
    status: int
    result: dict


def fingerprint(method: str, path: str, body: dict) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False, default=str,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def lock_user(session: Session, user_id: int) -> User:
    """Serialise this user's keyed requests (see the module docstring for the lock order)."""
    return session.scalars(select(User).where(User.id == user_id).with_for_update(key_share=True)).one()


def find(session: Session, user_id: int, key: str, print_: str, *, now: datetime) -> Stored | None:
    """The stored outcome of an earlier request with this key, None if there is none; raises
    InvalidAction when the key was used for a different request."""
    event = session.scalars(
        select(SecurityEvent).where(SecurityEvent.user_id == user_id, SecurityEvent.event == EVENT,
                                    SecurityEvent.created_at >= now - WINDOW,
                                    SecurityEvent.details["key"].as_string() == key)
        .order_by(SecurityEvent.id.desc()).limit(1)).first()
    if event is None:
        return None
    if event.details.get("fingerprint") != print_:
        raise InvalidAction("this Idempotency-Key was already used for a different request",
                            reason="idempotency_key_reused")
    return Stored(int(event.details["status"]), dict(event.details["result"]))


def remember(session: Session, user: User, key: str, print_: str, status: int, result: dict, *,
             now: datetime, method: str, path: str, ip: str) -> None:
    accounts.log(session, EVENT, now=now, user=user, ip=ip[:64], key=key, fingerprint=print_,
                 method=method, path=path[:300], status=status, result=result)
