"""Prepared statements for the hot paths: a SQLAlchemy Core statement compiled once per dialect
and executed directly on the DBAPI cursor of the current connection.

`Connection.execute` spends far more CPU than the database on the short statements an action
sends (cache-key generation, execution context, parameter processing, the Result machinery): on
SQLite about 30× the cost of the statement itself. A `Prepared` keeps what that path computes once
and does only what each call needs:

* the SQL text and the order of its parameters, compiled once per dialect;
* the columns' own bind processors (UTC datetimes, JSON, booleans ...; SQL NULL passes through
  unprocessed unless the type asks to see None, `should_evaluate_none`), and result processors
  for the result columns that have one, chosen from the first cursor description;
* a missing required parameter is a `KeyError` (never a silent NULL); expanding parameters
  (`IN` lists) are refused at construction: their SQL depends on the values;
* `before_cursor_execute` listeners see the statement (statement counters, tracing);
* a driver error is raised as SQLAlchemy's `DBAPIError` family (`IntegrityError` ...) through the
  connection's own handler, which also invalidates the connection pool on a disconnect.

The statement runs in the connection's transaction (begun if the connection has none, like
SQLAlchemy's autobegin), so it is one more statement of the caller's unit of work. The ORM does
not see these writes: callers expire any entity they change (see `services/instance_rows.py`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import Connection
from sqlalchemy.sql.elements import ClauseElement

_MISSING = object()


class _Compiled:
    """One statement compiled for one dialect."""

    __slots__ = ("sql", "positional", "params", "result_types", "processors", "dialect")

    def __init__(self, statement: ClauseElement, dialect):
        compiled = statement.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("Prepared statements cannot take expanding (IN list) or literal-execute parameters")
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        for bind in by_name.values():
            if bind.expanding:
                raise ValueError(f"Prepared statements cannot take expanding parameter {bind.key!r}")
        escaped = compiled.escaped_bind_names or {}
        self.dialect = dialect
        self.sql = compiled.string
        self.positional = dialect.positional
        names = list(compiled.positiontup) if self.positional else list(by_name)
        # (name used by the caller, name in the SQL, processor, default or _MISSING, None→process)
        self.params = []
        for name in names:
            bind = by_name[name]
            processor = bind.type._cached_bind_processor(dialect)
            if bind.callable is not None:
                raise ValueError(f"Prepared statements cannot take callable parameter {bind.key!r}")
            default = _MISSING if bind.required else bind.value
            self.params.append((name, escaped.get(name, name), processor, default,
                                bool(getattr(bind.type, "should_evaluate_none", False))))
        self.result_types = [col[3] for col in compiled._result_columns]
        self.processors: list[tuple[int, Callable]] | None = None

    def bind(self, values: Mapping[str, Any]) -> Sequence | dict:
        out = [] if self.positional else {}
        for key, sql_name, processor, default, evaluate_none in self.params:
            value = values.get(key, _MISSING)
            if value is _MISSING:
                if default is _MISSING:
                    raise KeyError(key)
                value = default
            if processor is not None and (value is not None or evaluate_none):
                value = processor(value)
            if self.positional:
                out.append(value)
            else:
                out[sql_name] = value
        return out

    def result_processors(self, description) -> list[tuple[int, Callable]]:
        if self.processors is None:
            found = []
            for i, type_ in enumerate(self.result_types):
                coltype = description[i][1] if description and i < len(description) else None
                processor = type_._cached_result_processor(self.dialect, coltype)
                if processor is not None:
                    found.append((i, processor))
            self.processors = found
        return self.processors


class Prepared:
    """A Core statement, compiled once per dialect, run on the connection's DBAPI cursor.

    `params` are named after the statement's `bindparam()`s; bound literals in the statement keep
    their value. Rows come back as tuples (or `row(*values)` when `row` is given)."""

    __slots__ = ("statement", "row", "_compiled")

    def __init__(self, statement: ClauseElement, *, row: Callable[..., Any] | None = None):
        self.statement = statement
        self.row = row
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return found

    @property
    def sql(self) -> str:
        """For logs and tests: the SQL of the last dialect compiled for."""
        return next(iter(self._compiled.values())).sql if self._compiled else str(self.statement)

    # ------------------------------------------------------------ execution
    def _run(self, conn: Connection, params: Mapping[str, Any] | None, many: Iterable[Mapping] | None = None):
        compiled = self.compiled(conn.dialect)
        if not conn.in_transaction():
            conn.begin()  # what SQLAlchemy's autobegin would do
        if many is None:
            parameters = compiled.bind(params or {})
        else:
            parameters = [compiled.bind(p) for p in many]
        cursor = conn.connection.dbapi_connection.cursor()
        sql = compiled.sql
        if (conn._has_events or conn.engine._has_events) and conn.dispatch.before_cursor_execute:
            # Listeners (statement counters, tracing) see these statements like any other.
            for fn in conn.dispatch.before_cursor_execute:
                sql, parameters = fn(conn, cursor, sql, parameters, None, many is not None)
        try:
            if many is None:
                cursor.execute(sql, parameters)
            else:
                cursor.executemany(sql, parameters)
        except BaseException as exc:
            try:
                if isinstance(exc, conn.dialect.loaded_dbapi.Error):
                    # SQLAlchemy's own handler: the DBAPIError subclass, handle_error events, and
                    # on a disconnect the connection (and the pool) invalidated.
                    conn._handle_dbapi_exception(exc, sql, parameters, cursor, None)
                raise
            finally:
                cursor.close()
        return compiled, cursor

    def _rows(self, compiled: _Compiled, cursor) -> list:
        try:
            raw = cursor.fetchall() if cursor.description is not None else []
            processors = compiled.result_processors(cursor.description) if raw else ()
        finally:
            cursor.close()
        make = self.row
        if not processors:
            return [make(*r) for r in raw] if make is not None else [tuple(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, processor in processors:
                values[i] = processor(values[i])
            out.append(make(*values) if make is not None else tuple(values))
        return out

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list:
        return self._rows(*self._run(conn, params))

    def one_or_none(self, conn: Connection, params: Mapping[str, Any] | None = None):
        rows = self.all(conn, params)
        if len(rows) > 1:
            raise ValueError("more than one row where at most one was expected")
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None):
        """The first column of the first row, None without rows."""
        compiled, cursor = self._run(conn, params)
        try:
            first = cursor.fetchone() if cursor.description is not None else None
            if first is None:
                return None
            processors = compiled.result_processors(cursor.description)
        finally:
            cursor.close()
        value = first[0]
        for i, processor in processors:
            if i == 0:
                return processor(value)
        return value

    def rowcount(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        _compiled, cursor = self._run(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
        """executemany over `rows` (no result rows); the total row count the driver reports."""
        rows = list(rows)
        if not rows:
            return 0
        _compiled, cursor = self._run(conn, None, rows)
        try:
            return cursor.rowcount
        finally:
            cursor.close()


__all__ = ["Prepared"]
