"""Running a granted query on PostgreSQL, MySQL or MariaDB, answering an Arrow table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pymysql

from dstrail.errors import InvalidInput, UpstreamError

CONNECT_TIMEOUT_S = 10


def _port(config: dict[str, str], default: int) -> int:
    value = config.get("port") or str(default)
    if not value.isdigit():
        raise InvalidInput(f"config: port {value!r} is not a number")
    return int(value)


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def to_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows as an Arrow table; columns Arrow cannot infer become strings."""
    columns = [_column([row[i] for row in rows]) for i in range(len(names))]
    return pa.Table.from_arrays(columns, names=list(names))


def _postgresql(config: dict[str, str], credentials: dict[str, str], sql: str) -> pa.Table:
    try:
        with (
            psycopg.connect(
                host=config.get("host") or "127.0.0.1",
                port=_port(config, 5432),
                dbname=config.get("database") or "postgres",
                user=credentials.get("username") or None,
                password=credentials.get("password") or None,
                connect_timeout=CONNECT_TIMEOUT_S,
                autocommit=True,
                application_name="dstrail",
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(sql.encode())
            if cursor.description is None:
                return pa.table({})
            names = [column.name for column in cursor.description]
            return to_table(names, cursor.fetchall())
    except psycopg.Error as error:
        message = str(error).strip() or type(error).__name__
        raise UpstreamError(f"PostgreSQL: {message}") from None


def _mysql(config: dict[str, str], credentials: dict[str, str], sql: str) -> pa.Table:
    try:
        connection = pymysql.connect(
            host=config.get("host") or "127.0.0.1",
            port=_port(config, 3306),
            user=credentials.get("username") or "",
            password=credentials.get("password") or "",
            database=config.get("database") or None,
            connect_timeout=CONNECT_TIMEOUT_S,
            autocommit=True,
            charset="utf8mb4",
        )
        with connection, connection.cursor() as cursor:
            cursor.execute(sql)
            if cursor.description is None:
                return pa.table({})
            names = [column[0] for column in cursor.description]
            return to_table(names, cursor.fetchall())
    except pymysql.err.Error as error:
        code, message = (*error.args, "", "")[:2] if error.args else ("", str(error))
        raise UpstreamError(f"MySQL error {code}: {message}".strip()) from None


def run_query(
    data_source_type: str, config: dict[str, str], credentials: dict[str, str], sql: str
) -> pa.Table:
    """The whole result of ``sql``; ``UpstreamError`` with the database's message on failure."""
    if data_source_type == "PostgreSQLConfig":
        return _postgresql(config, credentials, sql)
    if data_source_type in ("MySQLConfig", "MariaDBConfig"):
        return _mysql(config, credentials, sql)
    raise InvalidInput(f"queries on {data_source_type} are not supported")
