"""Models and migrations agree: on a database built by `alembic upgrade head` (the `db` fixture;
SQLite always, PostgreSQL with TEST_DATABASE_URL) Alembic's autogenerate comparison against
`workflow_app.models` finds nothing to add, drop or alter — tables, columns, types, nullability,
indexes, unique constraints and foreign keys."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table

from workflow_app.models import Base


def differences(db, metadata: MetaData) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_models_and_migrations_do_not_drift(db):
    assert differences(db, Base.metadata) == []


def test_the_comparison_sees_a_drift(db):
    """The check is not vacuous: a model column no migration created is reported."""
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    Table("trail_anchor", drifted, Column("extra", Integer), extend_existing=True)
    found = differences(db, drifted)
    assert [(d[0], d[2], d[3].name) for d in found] == [("add_column", "trail_anchor", "extra")]
