"""`workflow_app.prepared`: the same values in and out as SQLAlchemy's own execution, on SQLite
and PostgreSQL, for the types the hot paths use (UTC datetimes, JSON, enums, booleans, NULL)."""
from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import (JSON, Boolean, Column, Enum, Integer, MetaData, String, Table, bindparam, create_engine,
                        insert, select, update)
from sqlalchemy.exc import IntegrityError

from workflow_app.database import Database, core_connection
from workflow_app.models.base import UTCDateTime
from workflow_app.prepared import Prepared


class Colour(enum.Enum):
    red = "red"
    green = "green"


_META = MetaData()
_T = Table("prepared_probe", _META,
           Column("id", Integer, primary_key=True),
           Column("name", String(40), nullable=False, unique=True),
           Column("at", UTCDateTime(timezone=True)),
           Column("data", JSON),
           Column("colour", Enum(Colour, native_enum=False, length=10)),
           Column("flag", Boolean, default=False))

_INSERT = Prepared(insert(_T).values(name=bindparam("p_name"), at=bindparam("p_at", type_=_T.c.at.type),
                                     data=bindparam("p_data", type_=_T.c.data.type),
                                     colour=bindparam("p_colour", type_=_T.c.colour.type),
                                     flag=bindparam("p_flag", type_=_T.c.flag.type)).returning(_T.c.id))
_BY_NAME = Prepared(select(_T.c.id, _T.c.name, _T.c.at, _T.c.data, _T.c.colour, _T.c.flag)
                    .where(_T.c.name == bindparam("name")))
_FLAGGED = Prepared(select(_T.c.name).where(_T.c.flag.is_(True), _T.c.colour == Colour.green).order_by(_T.c.name))
_SET_FLAG = Prepared(update(_T).where(_T.c.name == bindparam("name")).values(flag=bindparam("p_flag", type_=Boolean())))

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def pdb(database_url):
    engine = create_engine(Database(database_url).url)
    _META.drop_all(engine)
    _META.create_all(engine)
    engine.dispose()
    db = Database(database_url)
    yield db
    _META.drop_all(db.engine)
    db.dispose()


def _insert(conn, name, at=None, data=None, colour=None, flag=False):
    return _INSERT.scalar(conn, {"p_name": name, "p_at": at, "p_data": data, "p_colour": colour, "p_flag": flag})


def test_values_round_trip_like_sqlalchemy(pdb):
    at = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=SHANGHAI)
    with pdb.write() as session:
        conn = core_connection(session)
        first = _insert(conn, "a", at, {"k": [1, "二"], "n": None}, Colour.green, True)
        _insert(conn, "b")
    with pdb.read() as session:
        conn = core_connection(session)
        row = _BY_NAME.one_or_none(conn, {"name": "a"})
        reference = conn.execute(_BY_NAME.statement, {"name": "a"}).one()
        assert row == tuple(reference)
        assert row == (first, "a", at, {"k": [1, "二"], "n": None}, Colour.green, True)
        assert row[2].utcoffset() == timedelta(0)  # stored and read back as UTC
        empty = _BY_NAME.one_or_none(conn, {"name": "b"})
        assert empty[2:] == (None, None, None, False) == tuple(conn.execute(_BY_NAME.statement, {"name": "b"}).one())[2:]
        assert _BY_NAME.one_or_none(conn, {"name": "zz"}) is None
        assert _FLAGGED.all(conn) == [("a",)]  # bound literals (True, Colour.green) keep their value


def test_many_rowcount_and_scalar(pdb):
    with pdb.write() as session:
        conn = core_connection(session)
        for n in "abc":
            _insert(conn, n)
        assert _SET_FLAG.many(conn, [{"name": "a", "p_flag": True}, {"name": "c", "p_flag": True}]) == 2
        assert _SET_FLAG.rowcount(conn, {"name": "nobody", "p_flag": True}) == 0
        assert _SET_FLAG.many(conn, []) == 0
        assert Prepared(select(_T.c.flag).where(_T.c.name == "a")).scalar(conn) is True
        assert Prepared(select(_T.c.at).where(_T.c.name == "zz")).scalar(conn) is None
    with pdb.read() as session:
        assert session.execute(select(_T.c.name).where(_T.c.flag.is_(True)).order_by(_T.c.name)).scalars().all() == ["a", "c"]


def test_rows_as_named_tuples(pdb):
    from typing import NamedTuple

    class Row(NamedTuple):
        name: str

    with pdb.write() as session:
        conn = core_connection(session)
        _insert(conn, "a", flag=True, colour=Colour.green)
        assert Prepared(_FLAGGED.statement, row=Row).all(conn) == [Row("a")]


def test_missing_parameter_is_a_key_error(pdb):
    with pdb.write() as session:
        with pytest.raises(KeyError, match="name"):
            _BY_NAME.all(core_connection(session), {})


def test_expanding_parameters_are_refused():
    with pytest.raises(ValueError, match="expanding"):
        Prepared(select(_T.c.id).where(_T.c.id.in_(bindparam("ids", expanding=True)))).compiled(
            Database("sqlite://").engine.dialect)


def test_driver_errors_are_sqlalchemy_errors_and_the_transaction_rolls_back(pdb):
    with pytest.raises(IntegrityError):
        with pdb.write() as session:
            conn = core_connection(session)
            _insert(conn, "dup")
            _insert(conn, "dup")
    with pdb.read() as session:
        assert session.execute(select(_T.c.id)).all() == []


def test_statement_joins_the_sessions_transaction(pdb):
    with pytest.raises(RuntimeError):
        with pdb.write() as session:
            _insert(core_connection(session), "gone")
            raise RuntimeError("abort")
    with pdb.read() as session:
        assert session.execute(select(_T.c.id)).all() == []


def test_cursor_listeners_see_prepared_statements(pdb):
    from sqlalchemy import event

    seen = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement.split()[0], executemany))

    event.listen(pdb.engine, "before_cursor_execute", listener)
    try:
        with pdb.write() as session:
            conn = core_connection(session)
            _insert(conn, "a")
            _SET_FLAG.many(conn, [{"name": "a", "p_flag": True}])
    finally:
        event.remove(pdb.engine, "before_cursor_execute", listener)
    assert seen == [("INSERT", False), ("UPDATE", True)]
