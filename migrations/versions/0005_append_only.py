"""append-only evidence tables: triggers rejecting UPDATE / DELETE / TRUNCATE

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:40:00

The decision trail (`trail_event`) and the security log (`security_event`) are evidence (等保
安全审计, 网络安全法 第二十一条): rows are only ever inserted. These triggers make the database
refuse anything else, whoever the application is tricked into running. The SQL is written out
here (not imported) so this revision stays what it was when applied. Sanctioned maintenance
(archiving, restore, test cleanup) lifts them for one transaction: services/append_only.py.
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("trail_event", "security_event")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION parkflow_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'parkflow: table % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the decision trail and the security log are evidence; archive with flask trail archive';
END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(f'CREATE TRIGGER {table}_append_only_rows BEFORE UPDATE OR DELETE ON "{table}" '
                       f'FOR EACH ROW EXECUTE FUNCTION parkflow_append_only()')
            op.execute(f'CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON "{table}" '
                       f'FOR EACH STATEMENT EXECUTE FUNCTION parkflow_append_only()')
        return
    for table in TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f'CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} '
                       f'ON "{table}" BEGIN SELECT RAISE(ABORT, '
                       f"'parkflow: table {table} is append-only ({operation} refused)'); END")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_append_only_rows ON "{table}"')
            op.execute(f'DROP TRIGGER IF EXISTS {table}_append_only_truncate ON "{table}"')
        op.execute("DROP FUNCTION IF EXISTS parkflow_append_only()")
        return
    for table in TABLES:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{operation}")
