"""Fixed statements on the transaction's own driver cursor: the hot paths' way to SQL.

SQLAlchemy's execution layer (statement construction, cache key, result proxy) costs tens of
microseconds per statement, more than a small indexed statement itself. The paths every
request takes (an append, the reads of an access decision) run their fixed SQL here instead,
on the same connection and in the same transaction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, CursorResult, Table


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement in each driver's parameter style (``:name`` / ``%(name)s``)."""

    sqlite: str
    postgresql: str


def statement(sql: str, *, postgresql: str | None = None) -> Statement:
    """A statement written with ``:name`` parameters; ``postgresql`` when its SQL differs."""
    return Statement(sqlite=sql, postgresql=re.sub(r":(\w+)", r"%(\1)s", postgresql or sql))


class InsertInto:
    """``INSERT INTO`` a table's columns: of one row (parameters named as the columns) or of
    many. Many rows are on SQLite one ``VALUES`` list (parameters ``column_index``), on
    PostgreSQL one JSON array of them (``json_populate_recordset``): a statement of the same
    text every time, which the driver parses once (it re-parses, in Python, every statement of
    more than 50 parameters, a third of a batch's time)."""

    __slots__ = ("_rows", "columns", "one_row", "postgresql_rows", "table")

    def __init__(self, table: Table) -> None:
        self.table = table.name
        self.columns = tuple(column.name for column in table.columns)
        self.one_row = self._values([f":{c}" for c in self.columns])
        names = ", ".join(self.columns)
        self.postgresql_rows = statement(
            f"INSERT INTO {self.table} ({names}) SELECT {names} "
            f"FROM json_populate_recordset(CAST(NULL AS {self.table}), CAST(:rows AS json))"
        )
        self._rows = functools.lru_cache(maxsize=64)(self._many)

    def rows(self, count: int) -> Statement:
        """The statement for ``count`` rows."""
        statement_of_rows: Statement = self._rows(count)
        return statement_of_rows

    def _many(self, count: int) -> Statement:
        return self._values([f":{c}_{i}" for i in range(count) for c in self.columns])

    def _values(self, params: list[str]) -> Statement:
        width = len(self.columns)
        rows = ", ".join(
            "(" + ", ".join(params[i : i + width]) + ")" for i in range(0, len(params), width)
        )
        return statement(f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {rows}")


Write = tuple[Statement, dict[str, Any] | list[dict[str, Any]]]
"""A data-modifying statement and its parameters (a list: run once for each, SQLite only)."""

SQLITE_VALUES_ROWS = 64
"""Up to this many rows, a SQLite insert is one ``VALUES`` list; beyond, the one-row statement
run for each (``executemany``): sqlite3 binds named parameters by a linear search of their
names, so one list of thousands of rows costs quadratic time (and hits the variable limit)."""


class WriteBatch:
    """Writes collected to run together (``DriverCursor.write_all``)."""

    __slots__ = ("_postgresql", "writes")

    def __init__(self, *, postgresql: bool) -> None:
        self._postgresql = postgresql
        self.writes: list[Write] = []

    def execute(self, sql: Statement, params: dict[str, Any] | None = None) -> None:
        """Add one statement."""
        self.writes.append((sql, params or {}))

    def insert(self, into: InsertInto, rows: Sequence[dict[str, Any]]) -> None:
        """Add the insert of these rows (each a mapping of the columns), as one statement."""
        if len(rows) == 1:
            self.writes.append((into.one_row, rows[0]))
        elif rows and self._postgresql:
            self.writes.append((into.postgresql_rows, {"rows": json_rows(rows)}))
        elif len(rows) > SQLITE_VALUES_ROWS:
            self.writes.append((into.one_row, list(rows)))
        elif rows:
            values = {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in into.columns}
            self.writes.append((into.rows(len(rows)), values))


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON array for PostgreSQL's ``json_populate_recordset`` (bytes as bytea
    input reads them)."""
    return orjson.dumps(rows, default=_bytea_text).decode()


def _bytea_text(value: object) -> str:
    """Bytes in JSON as PostgreSQL's bytea input reads them (``\\x`` and hex)."""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    raise TypeError(f"{type(value).__name__} has no JSON form here")


class DriverCursor:
    """Runs fixed statements on the transaction's own driver cursor (same connection, same
    transaction as the SQLAlchemy statements around it)."""

    __slots__ = ("_cursor", "_postgresql")

    def __init__(self, connection: Connection) -> None:
        self._cursor: Any = connection.connection.cursor()
        self._postgresql = connection.dialect.name == "postgresql"

    def __enter__(self) -> DriverCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def execute(self, sql: Statement, params: dict[str, Any] | None = None) -> None:
        """Run one statement."""
        self._cursor.execute(sql.postgresql if self._postgresql else sql.sqlite, params or {})

    def batch(self) -> WriteBatch:
        """An empty batch of writes for ``write_all``."""
        return WriteBatch(postgresql=self._postgresql)

    def write_all(self, batch: WriteBatch) -> None:
        """Run a batch of writes: on PostgreSQL as one statement of data-modifying ``WITH``
        queries (one round trip, one result to process: cheaper than a pipeline of them), on
        SQLite (no round trips) one after the other."""
        writes = batch.writes
        if not self._postgresql:
            for sql, params in writes:
                if isinstance(params, list):
                    self._cursor.executemany(sql.sqlite, params)
                else:
                    self.execute(sql, params)
        elif len(writes) == 1:
            sql, params = writes[0]
            assert isinstance(params, dict), "PostgreSQL inserts many rows as one JSON array"
            self.execute(sql, params)
        elif writes:
            self.execute(_with_all(tuple(sql for sql, _ in writes)), _numbered(writes, "w"))

    def first(self, sql: Statement, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        self.execute(sql, params)
        row: tuple[Any, ...] | None = self._cursor.fetchone()
        return row

    def close(self) -> None:
        """Release the driver cursor."""
        self._cursor.close()


_SAVEPOINT = statement("SAVEPOINT dstrail_unit")
_RELEASE = statement("RELEASE SAVEPOINT dstrail_unit")
_ROLLBACK_TO = statement("ROLLBACK TO SAVEPOINT dstrail_unit")


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A savepoint on the driver: what the block changed is undone if it raises (then raised
    on), kept otherwise. A third of the cost of SQLAlchemy's ``begin_nested`` per unit."""
    with DriverCursor(connection) as cursor:
        cursor.execute(_SAVEPOINT)
        try:
            yield
        except BaseException:
            cursor.execute(_ROLLBACK_TO)
            cursor.execute(_RELEASE)
            raise
        cursor.execute(_RELEASE)


def plain_rows(result: CursorResult[Any]) -> list[Any]:
    """The rows of a result as the driver made them (plain tuples), skipping a ``Row`` and a
    ``tuple()`` copy a row: a third of the time of a big read. For columns SQLAlchemy hands
    through unconverted: text, integers and binary (``bytes`` from both drivers)."""
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


Read = tuple[Statement, dict[str, Any]]
"""A single-row query and its parameters."""


class DriverReads:
    """Single-row reads of one transaction on the driver, with read-ahead.

    ``ahead`` sends several reads at once (one statement on PostgreSQL; nothing to save on
    SQLite, which has no round trips, so it reads nothing ahead there). Each time a read was
    asked for ahead, one later ``first`` of the same statement and parameters takes its row
    from there. Call it just before those reads: a row read ahead is as it was then.
    """

    __slots__ = ("_ahead", "_connection")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._ahead: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}

    def ahead(self, reads: Sequence[Read]) -> None:
        """Read these now, together; what was read ahead before and not taken is dropped."""
        self._ahead = {}
        if self._connection.dialect.name != "postgresql" or len(reads) < 2:
            return
        distinct: dict[tuple[str, tuple[Any, ...]], Read] = {}
        uses: dict[tuple[str, tuple[Any, ...]], int] = {}
        for read in reads:
            key = _key(*read)
            distinct.setdefault(key, read)
            uses[key] = uses.get(key, 0) + 1
        keys = sorted(distinct)  # one statement text for the same reads, whatever their order
        ordered = [distinct[key] for key in keys]
        with DriverCursor(self._connection) as cursor:
            row = cursor.first(_together(tuple(sql for sql, _ in ordered)), _numbered(ordered, "r"))
        assert row is not None
        for key, found in zip(keys, row, strict=True):
            self._ahead[key] = [tuple(found.values()) if found else None, uses[key]]

    def holds(self, read: Read) -> bool:
        """Whether this read was read ahead and not yet taken."""
        return _key(*read) in self._ahead

    def first(self, sql: Statement, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a query, or None: read ahead, else read now."""
        if self._ahead:
            key = _key(sql, params)
            entry = self._ahead.get(key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._ahead[key]
                found: tuple[Any, ...] | None = entry[0]
                return found
        with DriverCursor(self._connection) as cursor:
            return cursor.first(sql, params)


def _numbered_sql(sql: Statement, prefix: str, index: int) -> str:
    """The PostgreSQL text of the ``index``-th statement of a combined one: its parameters
    renamed ``{prefix}{index}_{name}`` so that they cannot clash with the others'."""
    return re.sub(r"%\((\w+)\)s", rf"%({prefix}{index}_\1)s", sql.postgresql)


def _numbered(statements: Sequence[Write], prefix: str) -> dict[str, Any]:
    """The parameters of combined statements, renamed as ``_numbered_sql`` renames them."""
    numbered: dict[str, Any] = {}
    for index, (_, values) in enumerate(statements):
        assert isinstance(values, dict), "PostgreSQL inserts many rows as one JSON array"
        numbered.update((f"{prefix}{index}_{name}", value) for name, value in values.items())
    return numbered


@functools.lru_cache(maxsize=256)
def _with_all(writes: tuple[Statement, ...]) -> Statement:
    """One PostgreSQL statement running several writes (``WITH w0 AS (...), ... SELECT 1``)."""
    parts = [f"w{index} AS ({_numbered_sql(sql, 'w', index)})" for index, sql in enumerate(writes)]
    together = "WITH " + ", ".join(parts) + " SELECT 1"
    return Statement(sqlite=together, postgresql=together)


@functools.lru_cache(maxsize=256)
def _together(queries: tuple[Statement, ...]) -> Statement:
    """One PostgreSQL statement answering several single-row queries: a row of JSON objects
    (the columns of each query's first row in order, or null). One round trip, and cheaper
    than a pipeline of them (whose bookkeeping costs more than the queries)."""
    parts = [
        f"(SELECT row_to_json(r) FROM ({_numbered_sql(sql, 'r', index)}) r LIMIT 1)"
        for index, sql in enumerate(queries)
    ]
    together = "SELECT " + ", ".join(parts)
    return Statement(sqlite=together, postgresql=together)


def _key(sql: Statement, params: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return sql.sqlite, tuple(sorted(params.items()))
