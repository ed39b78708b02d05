"""Trail anchors: keyed checkpoints that a database superuser cannot silently rewrite.

The hash chains (services/trail.py) catch any edit, insertion or reordering, and the head stored on
each instance row catches a cut tail — as long as the rows that hold the heads are honest. Whoever
owns the database can delete a whole instance with its events, or cut the newest events of a
chain and write the shortened chain's head back on the instance row: every remaining chain still
verifies. An anchor closes that gap for everything written before it:

- `create(db, key, now)` records, for the trail as of one event id `M` (`last_event_id`): the
  number of chains and events, and an HMAC-SHA256 `digest`, keyed with TRAIL_ANCHOR_KEY (config /
  environment, never stored in the database), over every chain's (instance id, length, last hash)
  counted on the events with id <= M — the system chain included. Each anchor's `mac` covers its
  own fields and the previous anchor's `mac`, so anchors form a chain of their own.
- `check(session, key)` verifies the anchor chain (a forged, edited or deleted-from-the-middle
  anchor fails its MAC or leaves a gap) and recomputes the LATEST anchor's digest from the events
  with id <= M: a deleted instance, deleted events or a rewritten tail below M changes it.
- Deleting the newest anchors themselves is caught by the export file (`--export`), which keeps
  a copy of each anchor outside the database: `check(..., exported=[...])` wants every exported
  anchor present, unchanged, in the database.

Window: events after the latest anchor are protected by the chains only (run `flask trail anchor`
from cron, e.g. every 10 minutes, and ship the export file off the machine). Nothing here can
detect tampering by someone who also holds the key.

Many nodes may run the command at once: anchors are numbered, and the second insert of the same
number fails on the primary key and is reported as "already anchored". On PostgreSQL, `M` is read
behind a `SHARE` lock on `trail_event`, which waits for the transactions writing events to end:
no event with an id <= M can commit after the anchor (ids are handed out inside those writers).

Archived instances (services/archive.py) have no live events; their length and head come from
their instance row, which is what their chain ended with (they ended long before any recent anchor).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ..database import Database
from ..engine.trail import GENESIS
from ..models import ProcessInstance, TrailAnchor, TrailEvent

FORMAT = "parkflow-trail-anchor-v1"
_FIELDS = ("seq", "created_at", "last_event_id", "chains", "events", "digest", "prev_mac", "mac")


class AnchorRefused(Exception):
    """No key configured, or nothing to anchor."""


@dataclass(frozen=True)
class Problem:
    anchor: int | None
    reason: str


@dataclass
class CheckResult:
    anchors: int = 0
    latest: TrailAnchor | None = None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def key_bytes(key: str | bytes | None) -> bytes:
    if not key:
        raise AnchorRefused("TRAIL_ANCHOR_KEY is not set: anchors need a key kept outside the database")
    return key.encode("utf-8") if isinstance(key, str) else key


def _when(value: datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _mac(key: bytes, a) -> str:
    body = json.dumps([FORMAT, a.seq, _when(a.created_at), a.last_event_id, a.chains, a.events,
                       a.digest, a.prev_mac], separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the state as of an event id
def settled_event_id(session: Session) -> int:
    """The newest event id below which no event can still commit (see the module docstring)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE trail_event IN SHARE MODE")
    return conn.scalar(select(func.coalesce(func.max(TrailEvent.id), 0))) or 0


def state_digest(session: Session, key: bytes, upto: int) -> tuple[str, int, int]:
    """(digest, chains, events) of the trail as of event id `upto`."""
    e, last = TrailEvent, aliased(TrailEvent)
    tails = (select(e.instance_id, func.max(e.seq).label("seq"))
             .where(e.id <= upto, e.instance_id.is_not(None)).group_by(e.instance_id).subquery())
    rows = session.execute(
        select(last.instance_id, last.seq, last.hash)
        .join(tails, (last.instance_id == tails.c.instance_id) & (last.seq == tails.c.seq)))
    chains = {("i", iid): (seq, head) for iid, seq, head in rows}
    system = session.execute(select(e.seq, e.hash).where(e.id <= upto, e.instance_id.is_(None))
                             .order_by(e.seq.desc()).limit(1)).first()
    if system is not None:
        chains[("s", 0)] = (system.seq, system.hash)
    from .archive import archived_ids  # archive imports trail; keep this module light at import
    archived = archived_ids(session)
    if archived:
        for iid, count, head in session.execute(
                select(ProcessInstance.id, ProcessInstance.trail_count, ProcessInstance.trail_head)
                .where(ProcessInstance.id.in_(archived))):
            if count and ("i", iid) not in chains:
                chains[("i", iid)] = (count, head or GENESIS)
    mac = hmac.new(key, FORMAT.encode(), hashlib.sha256)
    events = 0
    for (kind, iid), (count, head) in sorted(chains.items()):
        mac.update(f"{kind}:{iid}:{count}:{head}\n".encode())
        events += count
    return mac.hexdigest(), len(chains), events


# ---------------------------------------------------------------- writing
def create(db: Database, key: str | bytes | None, now: datetime) -> TrailAnchor | None:
    """Write the next anchor; None when another node wrote the same anchor number first."""
    secret = key_bytes(key)
    with db.write() as s:  # a short barrier transaction (PostgreSQL: SHARE lock, then commit)
        upto = settled_event_id(s)
    with db.read() as s:
        digest, chains, events = state_digest(s, secret, upto)
    try:
        with db.write() as s:
            previous = s.scalars(select(TrailAnchor).order_by(TrailAnchor.seq.desc()).limit(1)).first()
            if previous is not None and previous.last_event_id > upto:
                return None  # a node that started later already anchored further
            anchor = TrailAnchor(seq=(previous.seq + 1) if previous else 1, created_at=now,
                                 last_event_id=upto, chains=chains, events=events, digest=digest,
                                 prev_mac=previous.mac if previous else GENESIS, mac="")
            anchor.mac = _mac(secret, anchor)
            s.add(anchor)
            s.flush()
            s.expunge(anchor)
    except IntegrityError:
        return None
    return anchor


def as_json(anchor: TrailAnchor) -> str:
    data = {f: getattr(anchor, f) for f in _FIELDS}
    data["created_at"] = _when(anchor.created_at)
    return json.dumps({"format": FORMAT, **data}, ensure_ascii=False, separators=(",", ":"))


def export(anchor: TrailAnchor, path: Path) -> None:
    """Append the anchor to an export file (JSON lines), to be kept off the database host."""
    with path.open("a", encoding="utf-8") as out:
        out.write(as_json(anchor) + "\n")


@dataclass(frozen=True)
class _Exported:
    seq: int
    created_at: datetime
    last_event_id: int
    chains: int
    events: int
    digest: str
    prev_mac: str
    mac: str


def read_export(path: Path) -> list[_Exported]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.pop("format") != FORMAT:
                raise ValueError("unknown format")
            data["created_at"] = datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))
            found.append(_Exported(**data))
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorRefused(f"{path}:{number}: not an anchor line ({exc})") from None
    return found


# ---------------------------------------------------------------- checking
def check(session: Session, key: str | bytes | None, exported: list[Path] = ()) -> CheckResult:
    """The anchor chain, the latest anchor against the events, and the export files."""
    secret = key_bytes(key)
    result = CheckResult()
    anchors = list(session.scalars(select(TrailAnchor).order_by(TrailAnchor.seq)))
    result.anchors = len(anchors)
    prev_mac, expected_seq = GENESIS, 1
    for a in anchors:
        if a.seq != expected_seq:
            result.problem = Problem(a.seq, f"anchor {expected_seq} is missing (anchors deleted)")
            return result
        if a.prev_mac != prev_mac or not hmac.compare_digest(_mac(secret, a), a.mac):
            result.problem = Problem(a.seq, "anchor MAC does not match: edited or forged "
                                            "(or TRAIL_ANCHOR_KEY differs from the one that wrote it)")
            return result
        prev_mac, expected_seq = a.mac, a.seq + 1
    by_seq = {a.seq: a for a in anchors}
    for path in exported:
        for line in read_export(Path(path)):
            stored = by_seq.get(line.seq)
            if not hmac.compare_digest(_mac(secret, line), line.mac):
                result.problem = Problem(line.seq, f"{Path(path).name}: exported anchor {line.seq} "
                                                   "fails its MAC (the export file was edited)")
                return result
            if stored is None or stored.mac != line.mac:
                result.problem = Problem(line.seq, f"anchor {line.seq} of {Path(path).name} is "
                                                   f"{'missing from' if stored is None else 'different in'} "
                                                   "the database (anchors deleted or replaced)")
                return result
    if anchors:
        latest = result.latest = anchors[-1]
        digest, chains, events = state_digest(session, secret, latest.last_event_id)
        if not hmac.compare_digest(digest, latest.digest):
            result.problem = Problem(latest.seq, (
                f"the trail up to event id {latest.last_event_id} differs from anchor {latest.seq}: "
                f"it recorded {latest.events} events in {latest.chains} chains, the database now has "
                f"{events} in {chains} (instances or events deleted, or a chain's tail rewritten)"))
    return result
