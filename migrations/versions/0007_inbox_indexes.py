"""inbox indexes keyed for the inbox queries at a million tasks

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 11:30:00

`queries.my_tasks` filters `(assignee_id = :u AND delegate_id IS NULL) OR delegate_id = :u` on
open tasks: without an index on delegate_id PostgreSQL cannot combine the two sides and walked
every open task of the district (85.8 ms p95 at 1M tasks, bench/README.md). Both inbox lists
page by `ORDER BY task.id DESC` (keyset `before_id`), so the partial indexes are keyed by id
instead of created_at: a department-queue page becomes a backward scan of 50 index entries,
however long the queue. The SQL is written out here so this revision stays what it was.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPEN = sa.text("status = 'open'")
QUEUED = sa.text("status = 'open' AND assignee_id IS NULL")


def _index(name: str, columns: list[str], where) -> None:
    op.create_index(name, 'task', columns, unique=False, postgresql_where=where, sqlite_where=where)


def _drop(name: str) -> None:
    op.drop_index(name, table_name='task')


def upgrade() -> None:
    _drop('ix_task_assignee_open')
    _drop('ix_task_queue_open')
    _index('ix_task_assignee_open', ['assignee_id', 'id'], OPEN)
    _index('ix_task_delegate_open', ['delegate_id'], OPEN)
    _index('ix_task_queue_open', ['department', 'role', 'id'], QUEUED)


def downgrade() -> None:
    _drop('ix_task_queue_open')
    _drop('ix_task_delegate_open')
    _drop('ix_task_assignee_open')
    _index('ix_task_queue_open', ['department', 'role', 'created_at'], QUEUED)
    _index('ix_task_assignee_open', ['assignee_id', 'created_at'], OPEN)
