"""ClickHouse's HTTP interface over the embedded chDB engine, so BI tools can query the embedded store.

In embedded mode the worker hosts chDB in-process; nothing outside the process could read it.
This module serves the part of ClickHouse's HTTP interface (port 8123) that clickhouse-connect,
``curl`` and BI connectors (Grafana, Metabase, Superset) use, so they connect to the worker
exactly as to a ClickHouse server:

- ``GET|POST /`` runs the query given by the ``query`` URL parameter, the request body, or both
  (ClickHouse concatenates them with a newline; the rest of an INSERT is its data). URL parameters
  are settings, except the transport parameters ClickHouse itself consumes (``database``,
  ``default_format``, ``query_id``, ``session_id``, ``param_<name>`` query parameters...).
  ``multipart/form-data`` bodies (clickhouse-connect uses them for long query parameters) are read
  as parameters too.
- ``GET /ping``, ``GET /`` without a query and ``GET /replicas_status`` answer ``Ok.\\n``.
- Responses carry ClickHouse's headers (X-ClickHouse-Format, -Timezone, -Summary, -Query-Id,
  -Server-Display-Name); errors are ClickHouse's text (``Code: 164. DB::Exception: ... (READONLY)``)
  with X-ClickHouse-Exception-Code and ClickHouse's status for the code.
- Request bodies may be compressed (Content-Encoding gzip, deflate, lz4, zstd); responses are
  compressed when the client sends ``enable_http_compression=1`` and an Accept-Encoding we can
  produce, with ClickHouse's preference order (zstd, lz4, gzip, deflate).
- ClickHouse's native block compression (``compress=1`` for responses, ``decompress=1`` for
  bodies), which clickhouse-java (Metabase, DBeaver) uses by default, works when the
  clickhouse-cityhash package is installed (its checksums are CityHash128 v1.0.2); without it
  such requests get a NOT_IMPLEMENTED error that says so.

Every request runs on its own chDB handle (about a millisecond to open), so its settings, its
``USE`` and its temporary tables never leak into another request. In read-only mode (the default)
the handle is made ``readonly=2`` before anything else, which chDB enforces for good; on top of
that the endpoint refuses what a ClickHouse server refuses over HTTP (``INTO OUTFILE``,
multi-statements) and what only chDB would allow: table functions and the ``file()`` function
that read files, URLs or other servers, which would turn a query endpoint on the data store into
a way to read the machine. ``readonly=False`` exists for tests and fault injection, where the
endpoint plays a writable ClickHouse server (inserts with a data body included).

Not supported: sessions (``session_id`` is accepted and ignored: each request stands alone),
authentication (credentials are ignored; bind to loopback or put a proxy in front), external
data tables, progress headers and streaming: a result is materialised, then sent.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from salespulse.embedded.query_server.compression import (
    NATIVE_METHODS,
    choose_encoding,
    decompress,
    native_compression_available,
    native_decompress,
    zstd_available,
)
from salespulse.embedded.query_server.engine import Engine, QueryRequest
from salespulse.embedded.query_server.errors import ClickHouseError
from salespulse.embedded.query_server.limits import QueryLimits
from salespulse.embedded.query_server.sql_guard import check_statement, inspect_sql

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "TabSeparated"
OK_BODY = b"Ok.\n"
# Queries only, in read-only mode: ClickHouse parses at most 256 KiB of SQL (max_query_size), so
# 16 MiB leaves room for long parameter lists. A writable endpoint also takes insert data.
READONLY_MAX_BODY_BYTES = 16 << 20
WRITABLE_MAX_BODY_BYTES = 256 << 20

# Parameters ClickHouse's HTTP handler consumes itself; everything else in the URL is a setting.
TRANSPORT_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "buffer_size",
        "wait_end_of_query",
        "compress",
        "decompress",
        "client_protocol_version",
        "stacktrace",
        "role",
    }
)
_QUERY_PARAMETER_PREFIX = "param_"
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_TEXT_PLAIN = "text/plain; charset=UTF-8"
_INLINE_LEX_BYTES = 64 << 10


_BINARY_FORMATS = frozenset(
    {
        "native",
        "rowbinary",
        "rowbinarywithnames",
        "rowbinarywithnamesandtypes",
        "rowbinarywithdefaults",
        "parquet",
        "arrow",
        "arrowstream",
        "orc",
        "avro",
        "protobuf",
        "protobufsingle",
        "msgpack",
        "capnproto",
        "bsoneachrow",
        "npy",
    }
)


def content_type(output_format: str) -> str:
    """The Content-Type ClickHouse sends for a result in ``output_format``."""
    name = output_format.lower()
    if name in _BINARY_FORMATS:
        return "application/octet-stream"
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        header = "present" if "withnames" in name else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if (
        name.startswith("json") and ("eachrow" in name or name in ("jsonlines", "jsonl"))
    ) or name == "ndjson":
        return "application/x-ndjson; charset=UTF-8"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name == "xml":
        return "application/xml; charset=UTF-8"
    if name == "markdown":
        return "text/markdown; charset=UTF-8"
    return _TEXT_PLAIN


@dataclass(frozen=True)
class _Config:
    readonly: bool
    max_body_bytes: int
    limits: QueryLimits | None
    # Queries running or about to run; beyond it a request waits up to limits.queue_seconds.
    slots: asyncio.Semaphore


_ENGINE_KEY = web.AppKey("query_endpoint_engine", Engine)
_CONFIG_KEY = web.AppKey("query_endpoint_config", _Config)

# aiohttp must hand the body over as sent: the endpoint decodes Content-Encoding itself (lz4 and
# zstd included) under its own size limit. Pass these to web.AppRunner when serving create_app().
RUNNER_OPTIONS: Mapping[str, Any] = {"auto_decompress": False, "access_log": None}


def create_app(
    chdb_path: str,
    database: str,
    *,
    readonly: bool = True,
    max_body_bytes: int | None = None,
    limits: QueryLimits | None = None,
) -> web.Application:
    """The aiohttp application serving ClickHouse's HTTP interface over the chDB engine at ``chdb_path``.

    ``database`` is the default for requests that name none. A read-only endpoint enforces
    ``limits`` (the defaults of :class:`QueryLimits` when not given); a writable one, which plays a
    ClickHouse server in tests, none unless given. Serve it with ``web.AppRunner(app,
    **RUNNER_OPTIONS)`` (see ``serve``), which the endpoint's body decoding relies on.
    """
    limit = max_body_bytes or (READONLY_MAX_BODY_BYTES if readonly else WRITABLE_MAX_BODY_BYTES)
    # chDB compares engine paths literally: spell the directory the way clickhouse-connect does.
    path = chdb_path if chdb_path.startswith(("file:", ":memory:")) else os.path.realpath(chdb_path)
    if limits is None and readonly:
        limits = QueryLimits()
    concurrency = limits.concurrency if limits is not None else 4
    engine = Engine(path, database, concurrency, limits)
    app = web.Application(client_max_size=limit)
    app[_ENGINE_KEY] = engine
    app[_CONFIG_KEY] = _Config(
        readonly=readonly, max_body_bytes=limit, limits=limits, slots=asyncio.Semaphore(concurrency)
    )

    async def engine_lifetime(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(engine.executor, engine.open)
        yield
        await asyncio.to_thread(engine.close)

    app.cleanup_ctx.append(engine_lifetime)
    app.router.add_get("/ping", _ok)
    app.router.add_get("/replicas_status", _ok)
    app.router.add_route("*", "/", _query)
    app.router.add_route("*", "/{tail:.*}", _no_handler)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app`` on host:port; ``await runner.cleanup()`` stops it."""
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _ok(request: web.Request) -> web.Response:
    return web.Response(body=OK_BODY, content_type="text/html", charset="UTF-8")


async def _no_handler(request: web.Request) -> web.Response:
    text = (
        f"There is no handle {request.path}\n\n"
        "Use / or /ping for health checks.\n\n"
        "Send queries from your program with POST method or GET /?query=...\n"
    )
    return web.Response(status=404, text=text, content_type="text/plain", charset="UTF-8")


async def _query(request: web.Request) -> web.StreamResponse:
    engine = request.app[_ENGINE_KEY]
    config = request.app[_CONFIG_KEY]
    query_id = request.query.get("query_id") or str(uuid.uuid4())
    headers = {
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Server-Display-Name": engine.info.display_name,
    }
    if request.method in ("GET", "HEAD") and not request.query_string and not request.can_read_body:
        return await _ok(request)
    try:
        parsed = await _parse_request(request, engine, config)
        async with _slot(config):
            answer = await asyncio.get_running_loop().run_in_executor(engine.executor, engine.run, parsed)
    except ClickHouseError as error:
        log.debug("query %s refused: %s (%s)", query_id, error.message, error.name)
        return _error_response(error, engine.info.version, headers)
    except Exception as error:
        log.exception("query %s failed inside the endpoint", query_id)
        unexpected = ClickHouseError("UNKNOWN_EXCEPTION", f"{type(error).__name__}: {error}")
        return _error_response(unexpected, engine.info.version, headers)
    headers["X-ClickHouse-Timezone"] = parsed.settings.get("session_timezone") or engine.info.timezone
    headers["X-ClickHouse-Summary"] = json.dumps(answer.summary, separators=(",", ":"))
    output_format = parsed.shape.output_format or parsed.output_format
    if parsed.shape.returns_rows:
        headers["X-ClickHouse-Format"] = output_format
    headers["Content-Type"] = content_type(output_format) if parsed.shape.returns_rows else _TEXT_PLAIN
    if parsed.encoding is not None:
        headers["Content-Encoding"] = parsed.encoding
    return web.Response(body=answer.body, headers=headers)


@contextlib.asynccontextmanager
async def _slot(config: _Config) -> AsyncIterator[None]:
    """One of the endpoint's concurrent query slots, waited for at most ``queue_seconds``."""
    wait = config.limits.queue_seconds if config.limits is not None else None
    try:
        await asyncio.wait_for(config.slots.acquire(), wait)
    except TimeoutError:
        assert config.limits is not None
        raise ClickHouseError(
            "TOO_MANY_SIMULTANEOUS_QUERIES",
            f"Too many simultaneous queries. Maximum: {config.limits.concurrency}; "
            f"this query waited {wait:g}s for a slot; try again later",
        ) from None
    try:
        yield
    finally:
        config.slots.release()


def _error_response(error: ClickHouseError, version: str, headers: Mapping[str, str]) -> web.Response:
    return web.Response(
        status=error.status,
        body=error.body(version),
        headers={**headers, "X-ClickHouse-Exception-Code": str(error.code), "Content-Type": _TEXT_PLAIN},
    )


async def _parse_request(request: web.Request, engine: Engine, config: _Config) -> QueryRequest:
    if request.method not in ("GET", "HEAD", "POST"):
        raise ClickHouseError(
            "UNSUPPORTED_METHOD", f"HTTP method {request.method} is not supported; use GET or POST"
        )
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params.setdefault(name, value)  # the first of repeated parameters wins, as in ClickHouse
    body = b""
    if request.content_type == "multipart/form-data":
        await _read_form(request, params, config.max_body_bytes)
    elif request.can_read_body:
        body = await _read_body(request, config.max_body_bytes)
    native_response = _flag(params.get("compress"))
    if (native_response or _flag(params.get("decompress"))) and not native_compression_available():
        raise ClickHouseError(
            "NOT_IMPLEMENTED",
            "compress=1/decompress=1 (ClickHouse's native block compression) needs the clickhouse-cityhash "
            "package, which is not installed; install it, or turn the client's compression off or to HTTP "
            "compression (enable_http_compression=1)",
        )
    if _flag(params.get("decompress")) and body:
        verify = not _flag(params.get("http_native_compression_disable_checksumming_on_decompress"))
        body = await asyncio.to_thread(native_decompress, body, config.max_body_bytes, verify=verify)

    query = params.get("query", "").encode()
    sql = query + b"\n" + body if query and body else query or body
    if not sql.strip():
        raise ClickHouseError("SYNTAX_ERROR", "Empty query")

    readonly = config.readonly or request.method in ("GET", "HEAD")  # GET is read-only in ClickHouse
    settings: dict[str, str] = {}
    parameters: dict[str, str] = {}
    for name, value in params.items():
        if name.startswith(_QUERY_PARAMETER_PREFIX):
            parameters[name.removeprefix(_QUERY_PARAMETER_PREFIX)] = value
        elif name in TRANSPORT_PARAMETERS or not name:
            continue
        elif not _SETTING_NAME.match(name):
            raise ClickHouseError(
                "BAD_ARGUMENTS",
                f"invalid setting name {name!r}: a setting is a letter or _ followed by letters, digits or _",
            )
        elif name == "readonly" and config.readonly:
            raise ClickHouseError("READONLY", "Cannot modify 'readonly' setting in readonly mode")
        else:
            settings[name] = value
    if config.readonly and config.limits is not None:
        config.limits.check_client_settings(settings)

    # Lexing is quick for a query; a long inline INSERT (writable mode) is lexed off the event loop.
    shape = inspect_sql(sql) if len(sql) < _INLINE_LEX_BYTES else await asyncio.to_thread(inspect_sql, sql)
    check_statement(shape, config.readonly, engine.info.table_functions)
    if config.readonly and config.limits is not None:
        config.limits.check_query_settings(shape.settings_named)

    encoding = None
    if settings.get("enable_http_compression", "0").lower() in ("1", "true"):
        encoding = choose_encoding(request.headers.get("Accept-Encoding", "").lower())
    try:
        level = int(settings.get("http_zlib_compression_level", "3"))
    except ValueError:
        raise ClickHouseError(
            "CANNOT_PARSE_NUMBER", "http_zlib_compression_level must be an integer from 1 to 9"
        ) from None

    return QueryRequest(
        sql=sql,
        shape=shape,
        output_format=params.get("default_format") or DEFAULT_FORMAT,
        settings=settings,
        parameters=parameters,
        database=params.get("database") or None,
        readonly=readonly,
        encoding=encoding,
        compression_level=min(9, max(1, level)),
        native_compression=_native_method(settings) if native_response else None,
    )


def _flag(value: str | None) -> bool:
    """A boolean URL parameter, parsed as ClickHouse parses one."""
    return value is not None and value.strip().lower() in ("1", "true")


def _native_method(settings: Mapping[str, str]) -> str:
    """The block compression for compress=1.

    ClickHouse 26.9 made ZSTD its default network compression, which clickhouse-java up to 0.9.8
    (bundled by Metabase) cannot read; every client that asks for compress=1 reads LZ4, so LZ4 stays
    the default here unless the request names a method.
    """
    method = settings.get("network_compression_method", "lz4").strip().lower()
    if method not in NATIVE_METHODS or (method == "zstd" and not zstd_available()):
        raise ClickHouseError(
            "UNKNOWN_COMPRESSION_METHOD",
            f"network_compression_method {method!r} is not supported; use {', '.join(NATIVE_METHODS)}",
        )
    return method


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, size-checked before and after decoding its Content-Encoding."""
    too_large = ClickHouseError(
        "QUERY_IS_TOO_LARGE", f"the request body is larger than {limit} bytes, this endpoint's limit"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    received = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        received += chunk
        if len(received) > limit:
            raise too_large
    encoding = request.headers.get("Content-Encoding", "")
    if not encoding:
        return bytes(received)
    return await asyncio.to_thread(decompress, bytes(received), encoding, limit)


async def _read_form(request: web.Request, params: dict[str, str], limit: int) -> None:
    """Fields of a multipart/form-data body are parameters; file parts would be external data."""
    reader = await request.multipart()
    budget = limit  # aiohttp's client_max_size does not cover streamed multipart reads
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.filename is not None or part.name is None:
            raise ClickHouseError(
                "NOT_IMPLEMENTED",
                "external data (file parts of a multipart request) is not supported by this endpoint",
            )
        value = bytearray()
        while chunk := await part.read_chunk(1 << 16):
            value += chunk
            budget -= len(chunk)
            if budget < 0:
                raise ClickHouseError(
                    "QUERY_IS_TOO_LARGE", f"the form is larger than {limit} bytes, this endpoint's limit"
                )
        text = bytes(part.decode(value)).decode(part.get_charset(default="utf-8"))
        params.setdefault(part.name, text)
