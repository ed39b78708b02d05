"""trail anchors: keyed checkpoints of every chain's head, append-only like the trail

Revision ID: 0008_engine
Revises: 0007
Create Date: 2026-12-06 21:00:00

`trail_anchor` rows are written by `flask trail anchor` (services/anchor.py). They get the same
append-only triggers as the trail (0005); the SQL is written out here so this revision stays
what it was when applied.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0008_engine'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('trail_anchor',
    sa.Column('seq', BIG, autoincrement=False, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_id', BIG, nullable=False),
    sa.Column('chains', BIG, nullable=False),
    sa.Column('events', BIG, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('prev_mac', sa.String(length=64), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_trail_anchor'))
    )
    if op.get_bind().dialect.name == "postgresql":
        # parkflow_append_only() comes from 0005
        op.execute('CREATE TRIGGER trail_anchor_append_only_rows BEFORE UPDATE OR DELETE ON "trail_anchor" '
                   'FOR EACH ROW EXECUTE FUNCTION parkflow_append_only()')
        op.execute('CREATE TRIGGER trail_anchor_append_only_truncate BEFORE TRUNCATE ON "trail_anchor" '
                   'FOR EACH STATEMENT EXECUTE FUNCTION parkflow_append_only()')
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(f'CREATE TRIGGER trail_anchor_append_only_{operation.lower()} BEFORE {operation} '
                   f'ON "trail_anchor" BEGIN SELECT RAISE(ABORT, '
                   f"'parkflow: table trail_anchor is append-only ({operation} refused)'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('DROP TRIGGER IF EXISTS trail_anchor_append_only_rows ON "trail_anchor"')
        op.execute('DROP TRIGGER IF EXISTS trail_anchor_append_only_truncate ON "trail_anchor"')
    else:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS trail_anchor_append_only_{operation}")
    op.drop_table('trail_anchor')
