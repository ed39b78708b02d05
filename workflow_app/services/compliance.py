"""The compliance reviewer's reads (审计/合规): search every decision in the trail, draw a
reproducible random sample, flag what a reviewer looks for, and assemble one instance's dossier.

- Search: by process, department, person, action, date range (calendar days in Asia/Shanghai,
  turned into UTC bounds), instance and opinion text. Text goes into LIKE patterns escaped, so
  `%`, `_` and `\\` typed by a reviewer are data, never wildcards. Pages are keyset-paginated on
  the event id (newest first), so page 10,000 costs what page 1 does.
- Sampling: each matching event gets the key sha256(seed:id) and the N smallest keys are the
  sample. It depends only on the seed, the criteria and the events that exist — not on row order,
  the database or the Python version — so an audit note "seed 4711, 2026-03-01..03-31" redraws
  the same sample later (the trail is append-only; a closed date range never changes).
- Flags: decided after the task's deadline (the event that completed a task whose completed_at is
  past its due_at), 退回, 撤回, substitutions (on_behalf_of_id set) and a definition hash that
  disagrees with the stored revision. Refused self-approval attempts are not shown: nothing
  records them yet (the engine refuses them without logging; see the web console's note).
- The definition in force at each decision (definition_id -> revision + content hash) and a
  unified diff between two revisions' YAML.

Reads only; the caller's session is a read session. Exports live in services/exports.py.
"""
from __future__ import annotations

import difflib
import hashlib
import heapq
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from ..engine.errors import NotFound
from ..engine.trail import HASHED_FIELDS as _HASHED
from ..engine.trail import Break, verify_chain
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent, User
from . import queries
from .definitions import DefinitionStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE = 50
MAX_SAMPLE = 1000
INT32 = 2**31  # user and instance ids are INTEGER columns
FLAGS = ("late", "return", "withdraw", "substitute")
REVIEWER_ROLES = queries.OVERSIGHT_ROLES      # membership roles that open the console
REVIEWER_ADMINS = queries.OVERSIGHT_ADMINS    # and the audit administrator (三员分立)


def may_review(memberships, admin_role: str | None) -> bool:
    return admin_role in REVIEWER_ADMINS or any(r in REVIEWER_ROLES for _d, r in memberships)


# ---------------------------------------------------------------- criteria
@dataclass(frozen=True)
class Criteria:
    """What the reviewer asked for. Empty fields do not filter. `flags` are OR-ed: "show
    returns and withdrawals" means either."""

    process_key: str | None = None
    department: str | None = None
    person: str | None = None          # a user id, a user name, or part of a display name
    action: str | None = None
    date_from: date | None = None      # Asia/Shanghai calendar days, both inclusive
    date_to: date | None = None
    instance_id: int | None = None
    text: str | None = None            # part of an opinion
    flags: frozenset[str] = frozenset()

    def record(self) -> dict:
        """Plain JSON for the security log and the export's criteria sheet."""
        out = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}
        out["flags"] = sorted(self.flags)
        return {k: v for k, v in out.items() if v not in (None, "", [])}


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC covering Shanghai days first..last (a day there starts 16:00 UTC)."""
    start = datetime.combine(first, time(), SHANGHAI).astimezone(timezone.utc) if first else None
    end = (datetime.combine(last + timedelta(days=1), time(), SHANGHAI).astimezone(timezone.utc)
           if last else None)
    return start, end


def like_pattern(text: str) -> str:
    """'%text%' with LIKE's own metacharacters escaped (ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _late():
    # The event that completed a task (its action is the task's decision, taken at completed_at)
    # after the task's deadline; not the 认领 or 委派 that came before it.
    return and_(Task.status == "done", Task.due_at.is_not(None), Task.completed_at > Task.due_at,
                TrailEvent.action == Task.decision, TrailEvent.created_at >= Task.completed_at)


def _joined(*columns):
    return (select(*columns)
            .join(ProcessInstance, ProcessInstance.id == TrailEvent.instance_id)
            .outerjoin(Task, Task.id == TrailEvent.task_id)
            .outerjoin(ProcessDefinition, ProcessDefinition.id == TrailEvent.definition_id))


def _filtered(q, c: Criteria):
    if c.process_key:
        q = q.where(ProcessInstance.process_key == c.process_key)
    if c.department:
        q = q.where(TrailEvent.actor_department == c.department)
    if c.action:
        q = q.where(TrailEvent.action == c.action)
    if c.instance_id is not None:  # ids are 32-bit columns: a larger number matches nothing
        q = q.where(TrailEvent.instance_id == c.instance_id if 0 < c.instance_id < INT32 else false())
    start, end = day_bounds(c.date_from, c.date_to)
    if start is not None:
        q = q.where(TrailEvent.created_at >= start)
    if end is not None:
        q = q.where(TrailEvent.created_at < end)
    if c.text:
        q = q.where(TrailEvent.opinion.ilike(like_pattern(c.text), escape="\\"))
    if c.person:
        q = q.where(_person(c.person.strip()))
    if c.flags:
        wanted = {"late": _late(), "return": TrailEvent.action == "return",
                  "withdraw": TrailEvent.action == "withdraw",
                  "substitute": TrailEvent.on_behalf_of_id.is_not(None)}
        q = q.where(or_(*(wanted[f] for f in sorted(c.flags) if f in wanted), false()))
    return q


def _person(person: str):
    """The person acted, or someone acted on their behalf (a substitution)."""
    if person.isascii() and person.isdigit() and int(person) < INT32:
        uid = int(person)
        return or_(TrailEvent.actor_id == uid, TrailEvent.on_behalf_of_id == uid)
    pattern = like_pattern(person)
    users = select(User.id).where(or_(User.username == person,
                                      User.display_name.like(pattern, escape="\\")))
    return or_(TrailEvent.actor_name.like(pattern, escape="\\"), TrailEvent.actor_id.in_(users),
               TrailEvent.on_behalf_of_id.in_(users))


# ---------------------------------------------------------------- rows
@dataclass
class Decision:
    """One trail event as the console shows it, with the definition in force and its flags."""

    event: TrailEvent
    title: str
    process_key: str
    due_at: datetime | None
    completed_at: datetime | None
    revision: int | None
    content_hash: str | None
    late: bool
    on_behalf_name: str | None = None

    @property
    def flags(self) -> list[str]:
        e = self.event
        out = ["late"] if self.late else []
        out += [a for a in ("return", "withdraw") if e.action == a]
        if e.on_behalf_of_id:
            out.append("substitute")
        if self.definition_mismatch:
            out.append("definition_mismatch")
        return out

    @property
    def definition_mismatch(self) -> bool:
        """The hash recorded with the decision is not the stored revision's (should never be)."""
        return bool(self.event.definition_hash and self.content_hash
                    and self.event.definition_hash != self.content_hash)


_ROW_COLUMNS = (TrailEvent, ProcessInstance.title, ProcessInstance.process_key, Task.due_at,
                Task.completed_at, ProcessDefinition.revision, ProcessDefinition.content_hash,
                _late().label("late"))


def _decisions(session: Session, q) -> list[Decision]:
    rows = [Decision(e, title, key, due, done, rev, chash, bool(late))
            for e, title, key, due, done, rev, chash, late in session.execute(q)]
    ids = {r.event.on_behalf_of_id for r in rows if r.event.on_behalf_of_id}
    if ids:
        names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
        for r in rows:
            r.on_behalf_name = names.get(r.event.on_behalf_of_id)
    return rows


@dataclass
class Page:
    rows: list[Decision]
    next_before: int | None          # pass as `before` for the next page; None on the last
    sample_seed: int | None = None
    matched: int | None = None       # how many events the sample was drawn from


def search(session: Session, criteria: Criteria, *, before: int | None = None,
           limit: int = PAGE) -> Page:
    """Newest first, `limit` per page; `before` is the last event id of the previous page."""
    limit = min(max(limit, 1), 500)
    q = _filtered(_joined(*_ROW_COLUMNS), criteria)
    if before:
        q = q.where(TrailEvent.id < min(before, 2**62))  # a forged huge cursor is just "from the top"
    rows = _decisions(session, q.order_by(TrailEvent.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].event.id if more and rows else None)


def sample_key(seed: int, event_id: int) -> bytes:
    return hashlib.sha256(f"{seed}:{event_id}".encode()).digest()


def sample(session: Session, criteria: Criteria, size: int, seed: int) -> Page:
    """`size` events drawn at random among those matching, reproducibly for a given seed."""
    size = min(max(size, 1), MAX_SAMPLE)
    ids = session.scalars(_filtered(_joined(TrailEvent.id), criteria)
                          .execution_options(yield_per=10000))
    matched = 0

    def keyed():
        nonlocal matched
        for event_id in ids:
            matched += 1
            yield sample_key(seed, event_id), event_id
    chosen = [eid for _k, eid in heapq.nsmallest(size, keyed())]
    rows = _decisions(session, _joined(*_ROW_COLUMNS).where(TrailEvent.id.in_(chosen))
                      .order_by(TrailEvent.id.desc())) if chosen else []
    return Page(rows, None, sample_seed=seed, matched=matched)


def iter_decisions(session: Session, criteria: Criteria, *, limit: int,
                   batch: int = 1000) -> Iterator[Decision]:
    """Every matching event, newest first, at most `limit` (for exports), read a batch at a time."""
    before, given = None, 0
    while given < limit:
        page = search(session, criteria, before=before, limit=min(batch, limit - given, 500))
        yield from page.rows
        given += len(page.rows)
        if page.next_before is None:
            return
        before = page.next_before


# ---------------------------------------------------------------- definitions
@dataclass(frozen=True)
class Revision:
    id: int
    key: str
    revision: int
    version: str
    content_hash: str
    synced_at: datetime
    is_latest: bool


def _revision(row: ProcessDefinition) -> Revision:
    return Revision(row.id, row.key, row.revision, row.version, row.content_hash, row.synced_at,
                    row.is_latest)


def revisions(session: Session, key: str) -> list[Revision]:
    return [_revision(r) for r in session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.revision))]


def process_keys(session: Session) -> list[tuple[str, str, str]]:
    """(key, Chinese title, English title) of each process's newest revision."""
    return list(session.execute(select(ProcessDefinition.key, ProcessDefinition.title_zh,
                                       ProcessDefinition.title_en)
                                .where(ProcessDefinition.is_latest.is_(True))
                                .order_by(ProcessDefinition.key)).all())


@dataclass
class DefinitionDiff:
    old: Revision
    new: Revision
    lines: list[str]

    @property
    def identical(self) -> bool:
        return not self.lines


def definition_diff(session: Session, key: str, old: int, new: int) -> DefinitionDiff:
    rows = {r.revision: r for r in session.scalars(select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.revision.in_((old, new))))}
    if old not in rows or new not in rows:
        raise NotFound("no such revision")
    a, b = rows[old], rows[new]
    lines = list(difflib.unified_diff(
        a.source_text.splitlines(), b.source_text.splitlines(), lineterm="",
        fromfile=f"{key} r{a.revision} ({a.content_hash[:12]})",
        tofile=f"{key} r{b.revision} ({b.content_hash[:12]})"))
    return DefinitionDiff(_revision(a), _revision(b), lines)


# ---------------------------------------------------------------- one instance
@dataclass
class ChainCheck:
    """One instance's chain verified against the head stored on its row."""

    checked: int
    recorded: int
    head: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_instance(session: Session, instance_id: int) -> ChainCheck:
    inst = session.get(ProcessInstance, instance_id)
    if inst is None:
        raise NotFound("no such application")
    columns = [getattr(TrailEvent, c) for c in ("id", "prev_hash", "hash", *_HASHED)]
    events = session.execute(select(*columns).where(TrailEvent.instance_id == instance_id)
                             .order_by(TrailEvent.seq)).mappings()
    checked, broken = verify_chain(events, inst.trail_head, inst.trail_count)
    return ChainCheck(checked, inst.trail_count, inst.trail_head, broken)


@dataclass
class Dossier:
    """Everything the PDF and the read-only page show about one instance."""

    view: queries.InstanceView
    revisions: dict[int, Revision]            # definition id -> revision, for every event
    check: ChainCheck
    late_tasks: set[int] = field(default_factory=set)     # done after their due_at
    late_events: set[int] = field(default_factory=set)    # the events that completed them

    def revision_of(self, event: TrailEvent) -> Revision | None:
        return self.revisions.get(event.definition_id) if event.definition_id else None

    def changed_revision(self, index: int) -> Revision | None:
        """The previous revision when event `index` runs under a different one (a migration)."""
        if index == 0:
            return None
        before, now = (self.view.events[index - 1].definition_id, self.view.events[index].definition_id)
        return self.revisions.get(before) if before and now and before != now else None


def dossier(session: Session, store: DefinitionStore, instance_id: int, *, user_id: int,
            memberships, admin_role: str | None) -> Dossier:
    view = queries.instance_view(session, store, instance_id, user_id=user_id,
                                 memberships=memberships, admin_role=admin_role)
    ids = {e.definition_id for e in view.events if e.definition_id} | {view.instance.definition_id}
    revs = {r.id: _revision(r) for r in session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.id.in_(ids)))}
    late = {t.id for t in view.tasks if t.status == "done" and t.due_at and t.completed_at
            and t.completed_at > t.due_at}
    by_id = {t.id: t for t in view.tasks if t.id in late}
    late_events = {e.id for e in view.events if e.task_id in by_id
                   and e.action == by_id[e.task_id].decision
                   and e.created_at >= by_id[e.task_id].completed_at}
    return Dossier(view, revs, verify_instance(session, instance_id), late, late_events)


def trail_record(events: list[TrailEvent], check: ChainCheck) -> dict:
    """The chain as plain JSON (attached to the PDF): every hashed field, so anyone can recompute
    the hashes offline with engine.trail.verify_chain and compare the head with the system."""
    def plain(e: TrailEvent) -> dict:
        row = {name: getattr(e, name) for name in ("id", "prev_hash", "hash", *_HASHED)}
        row["created_at"] = e.created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return row
    return {"format": "parkflow-trail-v1", "head": check.head, "count": check.recorded,
            "verified": check.ok, "events": [plain(e) for e in events]}

