"""Running one parsed request on the embedded chDB engine, on a handle of its own."""

import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import chdb

from salespulse.embedded.query_server.compression import compress, native_compress
from salespulse.embedded.query_server.errors import ClickHouseError
from salespulse.embedded.query_server.limits import QueryLimits
from salespulse.embedded.query_server.sql_guard import SqlShape


@dataclass(frozen=True)
class ServerInfo:
    """What every response reports about the engine, read once when the endpoint starts."""

    version: str
    timezone: str
    display_name: str
    table_functions: frozenset[str]


@dataclass
class QueryRequest:
    """One request, parsed: what to run, how, and how to answer."""

    sql: bytes
    shape: SqlShape
    output_format: str
    settings: dict[str, str]
    parameters: dict[str, str]
    database: str | None
    readonly: bool
    encoding: str | None
    compression_level: int
    native_compression: str | None = None


@dataclass
class QueryAnswer:
    body: bytes
    summary: dict[str, str]


def _quote(value: str) -> str:
    """A ClickHouse string literal; ClickHouse converts it to the setting's type."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """Runs requests on fresh chDB handles in a bounded thread pool (chDB releases the GIL)."""

    def __init__(
        self, path: str, default_database: str, max_concurrent_queries: int, limits: QueryLimits | None = None
    ) -> None:
        self.path = path
        self.default_database = default_database
        self.limits = limits
        self._limit_settings = limits.settings() if limits is not None else {}
        self.executor = ThreadPoolExecutor(max_concurrent_queries, thread_name_prefix="query-endpoint")
        self._anchor: Any = None
        self.info = ServerInfo("", "UTC", socket.gethostname(), frozenset())

    def open(self) -> None:
        """Open the handle that keeps the engine alive between requests and read what responses report.

        The first handle on a path starts the engine (a quarter of a second); later ones cost about a
        millisecond for as long as one stays open. The worker's sink normally holds one too.
        """
        self._anchor = chdb.connect(self.path)
        version, timezone = (
            self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        )
        functions = (
            self._anchor.query("SELECT name FROM system.table_functions", "TabSeparated").bytes().decode()
        )
        self.info = ServerInfo(
            version=version,
            timezone=timezone,
            display_name=socket.gethostname(),
            table_functions=frozenset(name.lower() for name in functions.split()),
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    def run(self, request: QueryRequest) -> QueryAnswer:
        """Run one request on its own handle and compress the answer; called in the thread pool."""
        started = time.perf_counter_ns()
        conn = chdb.connect(self.path)
        data_file: str | None = None
        try:
            if request.readonly:
                # First, so nothing the request asks for later can write.
                conn.query("SET readonly = 2")
            if self._limit_settings:
                # Before the client's own settings, which were checked to only tighten them.
                conn.query(
                    "SET "
                    + ", ".join(f"{name} = {_quote(value)}" for name, value in self._limit_settings.items())
                )
            if request.settings:
                conn.query(
                    "SET "
                    + ", ".join(f"{name} = {_quote(value)}" for name, value in request.settings.items())
                )
            self._use_database(conn, request.database)
            sql = request.sql
            if request.shape.data_start is not None:
                sql, data_file = self._insert_from_file(request)
            result = conn.query(sql, request.output_format, params=request.parameters)
            body = result.bytes() or b""
            summary = {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "written_rows": str(result.rows_written()),
                "written_bytes": str(result.bytes_written()),
                "total_rows_to_read": str(result.rows_read()),
                "result_bytes": str(len(body)),
                "elapsed_ns": str(time.perf_counter_ns() - started),
            }
        except ClickHouseError:
            raise
        except Exception as error:
            raise ClickHouseError.from_engine(error) from None
        finally:
            conn.close()
            if data_file is not None:
                os.unlink(data_file)
        if request.native_compression is not None:
            body = native_compress(body, request.native_compression)
        if request.encoding is not None:
            body = compress(body, request.encoding, request.compression_level)
        return QueryAnswer(body, summary)

    def _use_database(self, conn: Any, database: str | None) -> None:
        try:
            conn.query(f"USE {_quote_identifier(database or self.default_database)}")
        except Exception as error:
            engine_error = ClickHouseError.from_engine(error)
            # The configured database appears only once the worker has migrated; until then a
            # client that names no database (`curl /?query=SELECT+1`, a BI tool's connection test)
            # still works, on the engine's default database. A database the client names must exist.
            if database is not None or engine_error.name != "UNKNOWN_DATABASE":
                raise engine_error from None

    @staticmethod
    def _insert_from_file(request: QueryRequest) -> tuple[bytes, str]:
        """Turn ``INSERT ... FORMAT X <data>`` into ``INSERT ... FROM INFILE 'tmp' FORMAT X``.

        chDB takes an INSERT's data only from a file (clickhouse-connect's own chDB backend does the
        same). A read-only request gets an empty file: chDB refuses the write before reading it,
        whereas the bare statement would fail for want of data (NO_DATA_TO_INSERT), not as a write.
        """
        shape = request.shape
        assert shape.data_start is not None and shape.insert_format_start is not None
        assert shape.insert_format is not None
        with tempfile.NamedTemporaryFile(prefix="salespulse-insert-", suffix=".data", delete=False) as data:
            if not request.readonly:
                data.write(memoryview(request.sql)[shape.data_start :])
        settings_start = shape.insert_settings_start
        head_end = settings_start if settings_start is not None else shape.insert_format_start
        settings = request.sql[head_end : shape.insert_format_start] if settings_start is not None else b""
        sql = b"%s FROM INFILE %s %s FORMAT %s" % (
            request.sql[:head_end].rstrip(),
            _quote(data.name).encode(),
            settings.strip(),
            shape.insert_format.encode(),
        )
        return sql, data.name
