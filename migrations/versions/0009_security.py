"""security log hash chain: seq, prev_hash, hash on security_event

Revision ID: 0009_security
Revises: 0008_engine
Create Date: 2026-12-06 21:00:00

The security log becomes a hash chain like the decision trail (services/security_log.py): each
row's hash covers the previous row's hash and its recorded fields; the head is the `trail_head`
row `security_log`. Rows already present are chained here, oldest first, with the append-only
guard lifted for this transaction only. The hash function is written out so this revision stays
what it was when applied.
"""
import hashlib
import json
from datetime import timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0009_security'
down_revision: Union[str, Sequence[str], None] = '0008_engine'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The hash is restated here, not imported: a migration must keep producing what it produced when
# it was written, whatever the application code later becomes (tests check both agree today).
GENESIS = "0" * 64
FIELDS = ("seq", "created_at", "user_id", "username", "ip", "event", "outcome", "details")


def _text(value) -> str:
    if value is None:
        return "\x00"
    if hasattr(value, "astimezone"):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _hash(prev: str, row: dict) -> str:
    digest = hashlib.sha256(b"parkflow-security-log-v1")
    digest.update(prev.encode())
    for name in FIELDS:
        encoded = _text(row.get(name)).encode("utf-8")
        digest.update(b"%d:" % len(encoded))
        digest.update(encoded)
    return digest.hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('security_event') as batch:
        batch.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_index('uq_security_event_seq', 'security_event', ['seq'], unique=True)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, created_at, user_id, username, ip, event, outcome, details "
                                "FROM security_event ORDER BY id")).mappings().all()
    if not rows:
        return
    pg = bind.dialect.name == "postgresql"
    if pg:
        op.execute('ALTER TABLE "security_event" DISABLE TRIGGER USER')
    else:
        triggers = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                        "AND tbl_name = 'security_event'").all()
        for name, _sql in triggers:
            bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        values = dict(row)
        created = values["created_at"]
        if isinstance(created, str):  # SQLite: the stored ISO text
            from datetime import datetime
            created = datetime.fromisoformat(created)
        details = values["details"]
        if isinstance(details, str):
            details = json.loads(details)
        values.update(seq=seq, created_at=created, details=details if details is not None else {})
        digest = _hash(prev, values)
        bind.execute(sa.text("UPDATE security_event SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"),
                     {"seq": seq, "prev": prev, "hash": digest, "id": values["id"]})
        prev = digest
    bind.execute(sa.text("INSERT INTO trail_head (chain, head, count) VALUES ('security_log', :head, :count)"),
                 {"head": prev, "count": len(rows)})
    if pg:
        op.execute('ALTER TABLE "security_event" ENABLE TRIGGER USER')
    else:
        for _name, sql in triggers:
            bind.exec_driver_sql(sql)


def downgrade() -> None:
    op.execute("DELETE FROM trail_head WHERE chain = 'security_log'")
    op.drop_index('uq_security_event_seq', table_name='security_event')
    with op.batch_alter_table('security_event') as batch:
        batch.drop_column('hash')
        batch.drop_column('prev_hash')
        batch.drop_column('seq')
