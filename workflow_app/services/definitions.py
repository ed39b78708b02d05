"""Process definitions in the database: sync from files, versions, compiled-spec cache, migration.

Stored definitions are immutable (a changed file becomes a new row with a new content hash), and
compiled specs are cached per process keyed by that content hash, never by row id: an id means
whatever the database says it means (another database, a restore, a test run emptied and
refilled), so every lookup learns the id's hash from the database — on the action path for free,
from the instance lock's join (`instance_rows.lock`) — and two processes can never disagree
about what a definition is.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from ..database import core_connection
from ..engine.errors import NotFound
from ..engine.loader import Catalogue, load_catalogue, load_text
from ..engine.organisation import Organisation, load_organisation
from ..engine.spec import ProcessSpec
from ..models import Department, ProcessDefinition
from ..prepared import Prepared
from .trail import append_system_event


_D = ProcessDefinition.__table__
_HASH = Prepared(select(_D.c.content_hash).where(_D.c.id == bindparam("definition_id")))
_LATEST = Prepared(select(_D.c.id, _D.c.content_hash).where(_D.c.key == bindparam("key"),
                                                            _D.c.is_latest.is_(True)))


@dataclass(frozen=True)
class SyncResult:
    key: str
    revision: int
    version: str
    content_hash: str
    created: bool
    warning: str | None = None  # e.g. the content changed but the declared version did not


class DefinitionStore:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.organisation: Organisation = load_organisation(self.directory / "organisation.yaml")
        self._specs: dict[str, ProcessSpec] = {}  # content hash -> compiled spec
        self._lock = threading.Lock()

    def catalogue(self) -> Catalogue:
        return load_catalogue([self.directory])

    def spec(self, session: Session, definition_id: int, content_hash: str | None = None) -> ProcessSpec:
        """The compiled spec of a stored definition. `content_hash`, when the caller already read
        it with the id, saves the statement that looks it up."""
        if content_hash is None:
            content_hash = _HASH.scalar(core_connection(session), {"definition_id": definition_id})
            if content_hash is None:
                raise NotFound(f"no definition {definition_id}")
        spec = self._specs.get(content_hash)
        if spec is None:
            row = session.get(ProcessDefinition, definition_id)
            if row is None:
                raise NotFound(f"no definition {definition_id}")
            spec = load_text(row.source_text, row.source_path)
            with self._lock:
                self._specs[row.content_hash] = spec
        return spec

    def latest(self, session: Session, key: str) -> tuple[int, ProcessSpec]:
        row = _LATEST.one_or_none(core_connection(session), {"key": key})
        if row is None:
            raise NotFound(f"no process {key!r} (run `flask defs sync`)")
        return row[0], self.spec(session, row[0], row[1])

    def sync(self, session: Session, now: datetime, actor_id: int | None = None,
             catalogue: Catalogue | None = None) -> list[SyncResult]:
        """Store every valid definition; a new content hash becomes the newest revision."""
        catalogue = catalogue or self.catalogue()
        if catalogue.problems:
            raise ValueError("definitions have problems:\n" + "\n".join(map(str, catalogue.problems)))
        self.sync_departments(session)
        results = []
        for key, spec in sorted(catalogue.specs.items()):
            row = session.scalar(select(ProcessDefinition).where(
                ProcessDefinition.key == key, ProcessDefinition.content_hash == spec.content_hash))
            created = row is None
            warning = None
            if row is None:
                previous = session.execute(
                    select(ProcessDefinition.revision, ProcessDefinition.version)
                    .where(ProcessDefinition.key == key)
                    .order_by(ProcessDefinition.revision.desc()).limit(1)).first()
                revision = (previous.revision if previous else 0) + 1
                if previous is not None and previous.version == spec.version:
                    # Still stored (the content hash is the identity), but people read the
                    # version: two different texts both called "1" confuse audits and migrations.
                    warning = (f"{spec.source}: content changed but its declared version "
                               f"{spec.version!r} did not (revision {previous.revision} has the same "
                               f"version); stored as revision {revision} — raise `version:`")
                row = ProcessDefinition(
                    key=key, revision=revision, version=spec.version, content_hash=spec.content_hash,
                    title_zh=spec.title.zh, title_en=spec.title.en,
                    source_path=str(Path(spec.source).name), source_text=spec.source_text,
                    is_latest=False, synced_at=now)
                session.add(row)
                session.flush()
            if not row.is_latest:
                session.execute(update(ProcessDefinition).where(ProcessDefinition.key == key)
                                .values(is_latest=False))
                row.is_latest = True
                session.flush()
                append_system_event(session, now=now, action="definition_sync", actor_id=actor_id,
                                    definition_id=row.id, definition_hash=row.content_hash,
                                    details={"key": key, "revision": row.revision,
                                             "version": row.version, "new": created})
            results.append(SyncResult(key, row.revision, row.version, row.content_hash, created, warning))
        return results

    def sync_departments(self, session: Session) -> None:
        existing = {d.code: d for d in session.scalars(select(Department))}
        for dept in self.organisation.departments.values():
            row = existing.get(dept.code) or Department(code=dept.code)
            row.name_zh, row.name_en, row.kind = dept.name.zh, dept.name.en, dept.kind
            row.parent_code, row.coordinator = dept.parent, dept.coordinator
            session.add(row)
        session.flush()
