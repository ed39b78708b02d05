"""Moving running instances from one definition revision to another (`flask defs migrate`).

Editing a YAML file never changes running instances: they stay pinned to the revision they
started on. Moving them is this explicit, all-or-nothing operation with a step mapping; each moved
instance gets a `migrate` trail event naming both revisions and their content hashes.
"""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..engine.errors import ActionError
from ..engine.runtime import Runtime
from ..engine.state import SYSTEM
from ..models import ProcessDefinition, ProcessInstance
from .definitions import DefinitionStore
from .directory import SqlDirectory
from .workflow import Workflow


def migrate_instances(session: Session, store: DefinitionStore, workflow: Workflow, key: str,
                      from_revision: int, to_revision: int, mapping: dict[str, str]) -> list[int]:
    """Move every running instance of `key` on `from_revision`; raise ValueError (nothing
    written: the caller's transaction rolls back) if any instance cannot be moved."""
    source = session.scalar(select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.revision == from_revision))
    target = session.scalar(select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.revision == to_revision))
    if source is None or target is None:
        raise ValueError(f"{key}: revision {from_revision if source is None else to_revision} not found")
    new_spec = store.spec(session, target.id)
    old_spec = store.spec(session, source.id)
    unknown = sorted(set(mapping) - set(old_spec.steps))
    if unknown:
        raise ValueError(f"--map names steps not in revision {from_revision}: {', '.join(unknown)}")
    ids = list(session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.definition_id == source.id, ProcessInstance.status == "running")
        .order_by(ProcessInstance.id)))
    runtime = Runtime(SqlDirectory(session, store.organisation))
    now = workflow.clock()
    moved = []
    for instance_id in ids:
        row = workflow._lock(session, instance_id)
        state = workflow._state(session, row, old_spec)
        step = mapping.get(state.current_step, state.current_step)
        details = {"from_revision": from_revision, "to_revision": to_revision,
                   "from_hash": source.content_hash, "to_hash": target.content_hash,
                   "from_step": state.current_step, "to_step": step}
        try:
            effect = runtime.migrate(state, new_spec, step, now, details)
        except ActionError as exc:
            raise ValueError(f"instance {instance_id} at step {state.current_step!r}: {exc.message}") from None
        pinned = SimpleNamespace(**{**row._asdict(), "definition_id": target.id})  # event names the new revision
        workflow._commit_effect(session, runtime, pinned, new_spec, state, effect, SYSTEM, now)
        session.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                        .values(definition_id=target.id))
        moved.append(instance_id)
    return moved
