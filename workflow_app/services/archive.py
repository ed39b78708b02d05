"""Retention and archiving of the decision trail, keeping every chain verifiable.

`archive(...)` moves the events of finished instances that ended before a cut-off (which must be
older than LOG_RETENTION_DAYS, at least 185 days: 网络安全法 第二十一条 wants six months online)
into a JSON-lines file, then removes them from the database in one transaction (the append-only
guard is lifted for that transaction only). Nothing is lost from the proof:

- each archived instance keeps its chain head and count on its row, so its events in the file
  are verified exactly as live ones would be;
- the file has its own running hash: link = SHA-256(previous link | event hash) over every event
  in file order, starting from the previous archive's final link (archives form a chain too);
- a system-chain event `trail_archive` records the file's final link, its event count, the
  previous link and the instances it holds. That event is in the hash-chained system trail, so
  the archive's final hash is carried into the live chain: editing the file, dropping it from
  the sequence or forging one is detected.

`verify(session, archives)` checks the live chains (archived instances must have no live events
left) and each given archive file against what the system chain recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..engine.trail import GENESIS, Break, verify_chain
from ..models import ProcessInstance, TrailEvent
from . import append_only
from .trail import _COLUMNS, ARCHIVE_EVENT, append_system_event
from .trail import verify as trail_verify

FORMAT = "parkflow-trail-archive-v1"
EVENT = ARCHIVE_EVENT
FINISHED = ("approved", "rejected", "withdrawn", "void")
SHANGHAI = ZoneInfo("Asia/Shanghai")


class ArchiveRefused(ValueError):
    """The archive cannot be made (cut-off too young, output exists, a chain is already broken)."""


def link(prev: str, event_hash: str) -> str:
    return hashlib.sha256(f"{prev}|{event_hash}".encode()).hexdigest()


def cutoff_of(day: date) -> datetime:
    """Midnight at the start of `day`, Beijing time (the district's calendar day)."""
    return datetime.combine(day, time(0, 0), SHANGHAI)


def _ranges(ids: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def _expand(ranges: list[list[int]]) -> set[int]:
    return {i for a, b in ranges for i in range(a, b + 1)}


def recorded(session: Session) -> list[dict]:
    """The `trail_archive` events of the system chain, oldest first (their details)."""
    rows = session.scalars(select(TrailEvent.details).where(
        TrailEvent.instance_id.is_(None), TrailEvent.action == EVENT).order_by(TrailEvent.seq))
    return [dict(d) for d in rows]


def archived_ids(session: Session) -> set[int]:
    ids: set[int] = set()
    for details in recorded(session):
        ids |= _expand(details.get("instances") or [])
    return ids


def _event_row(row) -> dict:
    out = {c: row[c] for c in _COLUMNS}
    out["created_at"] = row["created_at"].isoformat()
    return out


def _typed(event: dict) -> dict:
    return {**event, "created_at": datetime.fromisoformat(event["created_at"])}


@dataclass
class ArchiveResult:
    path: Path
    instances: int
    events: int
    archive_hash: str


def archive(session: Session, before: date, out: Path, *, now: datetime, retention_days: int) -> ArchiveResult:
    """Write the archive and remove its events (the caller's transaction commits both)."""
    cutoff = cutoff_of(before)
    if cutoff > now - timedelta(days=retention_days):
        raise ArchiveRefused(f"refused: {before.isoformat()} is younger than the retention of "
                             f"{retention_days} days (the trail must stay online at least that long)")
    out = Path(out)
    if out.exists():
        raise ArchiveRefused(f"refused: {out} exists; archives are never overwritten")
    newest = (select(TrailEvent.instance_id, func.max(TrailEvent.created_at).label("last"))
              .where(TrailEvent.instance_id.is_not(None)).group_by(TrailEvent.instance_id).subquery())
    instances = session.execute(
        select(ProcessInstance.id, ProcessInstance.process_key, ProcessInstance.status,
               ProcessInstance.trail_head, ProcessInstance.trail_count)
        .join(newest, newest.c.instance_id == ProcessInstance.id)
        .where(ProcessInstance.status.in_(FINISHED), ProcessInstance.ended_at < cutoff,
               newest.c.last < cutoff)
        .order_by(ProcessInstance.id)).all()
    previous = recorded(session)
    prev_hash = previous[-1]["archive_hash"] if previous else GENESIS
    running, count = prev_hash, 0
    try:
        with out.open("x", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "header", "format": FORMAT, "created_at": now.isoformat(),
                                "before": before.isoformat(), "prev_archive_hash": prev_hash,
                                "retention_days": retention_days}, ensure_ascii=False) + "\n")
            for inst in instances:
                events = [dict(r) for r in session.execute(
                    select(*[getattr(TrailEvent, c) for c in _COLUMNS])
                    .where(TrailEvent.instance_id == inst.id).order_by(TrailEvent.seq)).mappings()]
                _n, broken = verify_chain(events, inst.trail_head, inst.trail_count)
                if broken:
                    raise ArchiveRefused(f"refused: the chain of instance {inst.id} is broken at seq "
                                         f"{broken.seq} ({broken.reason}); investigate before archiving")
                f.write(json.dumps({"kind": "instance", "id": inst.id, "process_key": inst.process_key,
                                    "status": inst.status, "trail_head": inst.trail_head,
                                    "trail_count": inst.trail_count}, ensure_ascii=False) + "\n")
                for e in events:
                    f.write(json.dumps({"kind": "event", **_event_row(e)}, ensure_ascii=False) + "\n")
                    running, count = link(running, e["hash"]), count + 1
            f.write(json.dumps({"kind": "footer", "archive_hash": running, "events": count,
                                "instances": len(instances)}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        ids = [i.id for i in instances]
        if ids:
            with append_only.suspended(session.connection()):
                for chunk in range(0, len(ids), 1000):
                    session.execute(delete(TrailEvent).where(TrailEvent.instance_id.in_(ids[chunk:chunk + 1000])))
        append_system_event(session, now=now, action=EVENT, actor_name="系统",
                            details={"file": out.name, "archive_hash": running, "events": count,
                                     "instance_count": len(ids), "instances": _ranges(ids),
                                     "prev_archive_hash": prev_hash, "before": before.isoformat()})
        session.flush()
    except BaseException:
        if out.exists():
            out.unlink()  # the transaction rolls back: no file may claim events still live
        raise
    return ArchiveResult(out, len(ids), count, running)


# ---------------------------------------------------------------- verification
@dataclass
class Verification:
    checked: int = 0
    chains: int = 0
    archives: int = 0
    recorded_archives: int = 0
    broken: Break | None = None
    where: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken is None

    def fail(self, where: str, broken: Break) -> "Verification":
        self.where, self.broken = where, broken
        return self


def verify(session: Session, archives: list[Path] | None = None, batch: int = 5000, *,
           workers: int = 1, anchor_key: str | bytes | None = None,
           anchor_exports: list[Path] = ()) -> Verification:
    """Every live chain and the system chain (services/trail.verify, the one implementation:
    archived instances must have no live events), then each archive file against the system
    chain's record of it, then the anchors (services/anchor.py) when a key is given."""
    live = trail_verify(session, batch, workers=workers)
    result = Verification(checked=live.checked, chains=live.chains)
    if live.broken is not None:
        return result.fail(live.chain, live.broken)
    records = recorded(session)
    result.recorded_archives = len(records)
    for path in archives or []:
        broken = _verify_file(session, Path(path), records, heads_of=_heads(session), result=result)
        if broken:
            return result.fail(f"archive {Path(path).name}", broken)
        result.archives += 1
    if records and len(archives or []) < len(records):
        result.notes.append(f"{len(records)} archive(s) recorded in the system chain, "
                            f"{len(archives or [])} supplied and checked")
    return _verify_anchors(session, result, anchor_key, anchor_exports)


def _verify_anchors(session: Session, result: Verification, key, exports) -> Verification:
    from . import anchor

    if not key:
        if session.scalar(select(func.count()).select_from(anchor.TrailAnchor)):
            result.notes.append("anchors not checked: TRAIL_ANCHOR_KEY is not set")
        return result
    checked = anchor.check(session, key, list(exports))
    if checked.problem is not None:
        return result.fail(f"anchor {checked.problem.anchor}", Break(None, checked.problem.anchor or 0,
                                                                      checked.problem.reason))
    if checked.latest is None:
        result.notes.append("no trail anchor yet: run `flask trail anchor` (e.g. from cron)")
    else:
        latest = checked.latest
        result.notes.append(f"{checked.anchors} anchor(s) verified; the latest (no. {latest.seq}, "
                            f"{latest.created_at:%Y-%m-%d %H:%M} UTC) covers events up to id "
                            f"{latest.last_event_id}: {latest.events} events in {latest.chains} chains; "
                            f"later events are protected by the hash chains only")
    return result


def _heads(session: Session):
    def lookup(iid: int):
        return session.execute(select(ProcessInstance.trail_head, ProcessInstance.trail_count)
                               .where(ProcessInstance.id == iid)).one_or_none()
    return lookup


def _verify_file(session, path: Path, records: list[dict], *, heads_of, result: Verification) -> Break | None:
    try:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        return Break(None, None, f"cannot read the archive: {exc}")
    if not lines or lines[0].get("kind") != "header" or lines[0].get("format") != FORMAT:
        return Break(None, None, "not a ParkFlow trail archive")
    if lines[-1].get("kind") != "footer":
        return Break(None, None, "the archive is truncated (no footer)")
    header, footer = lines[0], lines[-1]
    record = next((r for r in records if r.get("archive_hash") == footer.get("archive_hash")), None)
    if record is None:
        return Break(None, None, "its final hash is not recorded in the system chain (edited or forged)")
    running, count = header.get("prev_archive_hash"), 0
    if running != record.get("prev_archive_hash"):
        return Break(None, None, "its link to the previous archive does not match the system chain")
    instances: list[int] = []
    i = 1
    while i < len(lines) - 1:
        inst = lines[i]
        if inst.get("kind") != "instance":
            return Break(None, None, f"line {i + 1}: expected an instance record")
        events = []
        i += 1
        while i < len(lines) - 1 and lines[i].get("kind") == "event":
            events.append(_typed(lines[i]))
            i += 1
        stored = heads_of(inst["id"])
        if stored is None or (stored.trail_head, stored.trail_count) != (inst["trail_head"], inst["trail_count"]):
            return Break(None, None, f"instance {inst['id']}: chain head differs from the database")
        n, broken = verify_chain(events, stored.trail_head, stored.trail_count)
        if broken:
            return Break(broken.event_id, broken.seq, f"instance {inst['id']}: {broken.reason}")
        for e in events:
            running, count = link(running, e["hash"]), count + 1
        result.checked += n
        result.chains += 1
        instances.append(inst["id"])
    if running != footer["archive_hash"] or count != footer.get("events") or count != record.get("events"):
        return Break(None, None, "events do not add up to the recorded final hash and count")
    if set(instances) != _expand(record.get("instances") or []):
        return Break(None, None, "the instances in the file differ from those recorded")
    return None
