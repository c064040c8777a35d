"""The ClickHouse HTTP query endpoint against a real chDB engine, over real HTTP on loopback.

chDB hosts one engine path per process, so every test here shares one session-wide path; each
test gets its own random database. The endpoints run on their own event loop in a background
thread, as they would inside a worker. Data is set up and checked through a direct chDB handle,
independently of the endpoint under test.
"""

import asyncio
import datetime as dt
import gzip
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import chdb
import clickhouse_connect
import lz4.block
import lz4.frame
import pytest
from backports import zstd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from salespulse.embedded.query_server import compression
from salespulse.embedded.query_server.compression import available_encodings, native_compression_available
from salespulse.embedded.query_server.limits import QueryLimits
from salespulse.embedded.query_server.service import QueryEndpoint
from salespulse.runtime.ports import free_port

T = TypeVar("T")

DEALS_DDL = (
    "CREATE TABLE {db}.deals (id UInt32, rep String, amount Decimal(18, 2), closed Date, "
    "at DateTime64(3, 'UTC'), score Nullable(Int8), tags Array(String)) ENGINE = MergeTree ORDER BY id"
)
DEALS_ROWS = (
    "INSERT INTO {db}.deals VALUES "
    "(1, 'rep-1', 1234.50, '2024-03-01', '2024-03-01 09:30:00.250', 5, ['a', 'b']), "
    "(2, '销售二', 0.01, '2024-12-31', '2024-12-31 23:59:59.999', NULL, [])"
)
EXPECTED_DEALS = [
    (
        1,
        "rep-1",
        Decimal("1234.50"),
        dt.date(2024, 3, 1),
        dt.datetime(2024, 3, 1, 9, 30, 0, 250000),
        5,
        ["a", "b"],
    ),
    (
        2,
        "销售二",
        Decimal("0.01"),
        dt.date(2024, 12, 31),
        dt.datetime(2024, 12, 31, 23, 59, 59, 999000),
        None,
        [],
    ),
]
DEFAULT_DATABASE = "qe_default"


class LoopThread:
    """An event loop in a background thread, like the worker's, to host endpoints."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="query-endpoint-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Endpoints:
    readonly: QueryEndpoint
    writable: QueryEndpoint
    loop: LoopThread

    @property
    def url(self) -> str:
        return self.readonly.url

    def start(self, endpoint: QueryEndpoint) -> QueryEndpoint:
        self.loop.run(endpoint.start())
        return endpoint

    def stop(self, endpoint: QueryEndpoint) -> None:
        self.loop.run(endpoint.stop())


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One HTTP request; error statuses are replies too. Bodies are returned as sent (no decoding)."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers.items()), error.read())


def query_url(base: str, **params: str) -> str:
    return f"{base}/?{urllib.parse.urlencode(params)}"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The one chDB engine path of this test process."""
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.fixture(scope="session")
def engine(chdb_path: str) -> Iterator[Any]:
    """A direct chDB handle: sets up and checks data without going through the endpoint."""
    conn = chdb.connect(chdb_path)
    conn.query(f"CREATE DATABASE IF NOT EXISTS {DEFAULT_DATABASE}")
    conn.query(f"CREATE TABLE IF NOT EXISTS {DEFAULT_DATABASE}.marker (name String) ENGINE = Memory")
    conn.query(f"INSERT INTO {DEFAULT_DATABASE}.marker VALUES ('default database')")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def endpoints(chdb_path: str, engine: Any) -> Iterator[Endpoints]:
    loop = LoopThread()
    running = Endpoints(
        # The default limits, but four queries at once whatever the cores: tests run queries side by side.
        readonly=QueryEndpoint(
            chdb_path,
            DEFAULT_DATABASE,
            "127.0.0.1",
            free_port(),
            loop=loop.loop,
            limits=QueryLimits(concurrent_queries=4),
        ),
        writable=QueryEndpoint(
            chdb_path, DEFAULT_DATABASE, "127.0.0.1", free_port(), readonly=False, loop=loop.loop
        ),
        loop=loop,
    )
    running.start(running.readonly)
    running.start(running.writable)
    yield running
    running.stop(running.readonly)
    running.stop(running.writable)
    loop.close()


@pytest.fixture
def database(engine: Any) -> Iterator[str]:
    """A fresh database holding the two known deals."""
    name = f"qe_{uuid.uuid4().hex[:12]}"
    engine.query(f"CREATE DATABASE {name}")
    engine.query(DEALS_DDL.format(db=name))
    engine.query(DEALS_ROWS.format(db=name))
    yield name
    engine.query(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def client(endpoints: Endpoints, database: str) -> Iterator[Client]:
    connected = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoints.readonly.port, database=database
    )
    yield connected
    connected.close()


def engine_rows(engine: Any, sql: str) -> list[list[Any]]:
    return [json.loads(line) for line in engine.query(sql, "JSONCompactEachRow").bytes().splitlines()]


def engine_version(engine: Any) -> str:
    return str(engine.query("SELECT version()", "TabSeparated").bytes().decode().strip())


# --- clickhouse-connect ---------------------------------------------------------------------------


def test_clickhouse_connect_connects_and_reads_exact_typed_rows(
    endpoints: Endpoints, client: Client, engine: Any
) -> None:
    assert client.server_version == engine_version(engine)
    result = client.query("SELECT id, rep, amount, closed, at, score, tags FROM deals ORDER BY id")
    assert result.result_rows == EXPECTED_DEALS
    assert [t.name for t in result.column_types] == [
        "UInt32",
        "String",
        "Decimal(18, 2)",
        "Date",
        "DateTime64(3, 'UTC')",
        "Nullable(Int8)",
        "Array(String)",
    ]
    assert client.command("SELECT count() FROM deals") == 2
    assert client.command("SELECT id FROM deals WHERE id > 100") == ""


def test_datetime64_utc_comes_back_timezone_aware_when_asked(endpoints: Endpoints, database: str) -> None:
    aware = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoints.readonly.port, database=database, tz_mode="aware"
    )
    try:
        rows = aware.query("SELECT at FROM deals ORDER BY id").result_rows
    finally:
        aware.close()
    assert rows == [
        (dt.datetime(2024, 3, 1, 9, 30, 0, 250000, tzinfo=dt.UTC),),
        (dt.datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),),
    ]


def test_query_parameters_are_bound_server_side(client: Client) -> None:
    rows = client.query(
        "SELECT {name:String} AS name, {n:UInt8} + 1 AS n, rep FROM deals WHERE id = {id:UInt32}",
        parameters={"name": "O'Brien\t销售\\", "n": 41, "id": 2},
    ).result_rows
    assert rows == [("O'Brien\t销售\\", 42, "销售二")]


def test_long_parameters_travel_as_a_multipart_form(client: Client) -> None:
    # Past 4 KiB of parameters clickhouse-connect switches to multipart/form-data.
    long_text = "销" * 3000 + "x" * 5000
    rows = client.query(
        "SELECT lengthUTF8({s:String}), length({s:String}), {s:String} = {t:String}",
        parameters={"s": long_text, "t": long_text},
    )
    assert rows.result_rows == [(8000, 3000 * 3 + 5000, 1)]


def multipart(fields: list[tuple[str, str, str | None]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body of (name, value, filename) parts, as urllib3 builds one."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_form_fields_are_parameters_and_file_parts_are_refused(endpoints: Endpoints, database: str) -> None:
    body, headers = multipart(
        [("query", "SELECT rep FROM deals WHERE id = {id:UInt32}", None), ("param_id", "2", None)]
    )
    reply = http(query_url(endpoints.url, database=database), data=body, headers=headers)
    assert (reply.status, reply.text) == (200, "销售二\n")
    body, headers = multipart([("query", "SELECT * FROM ext", None), ("ext", "1\n2\n", "ext.tsv")])
    external = http(query_url(endpoints.url, ext_structure="a UInt8"), data=body, headers=headers)
    assert (external.status, external.headers["X-ClickHouse-Exception-Code"]) == (501, "48")


def test_bodies_over_the_limit_are_refused(endpoints: Endpoints, chdb_path: str) -> None:
    small = endpoints.start(
        QueryEndpoint(
            chdb_path,
            DEFAULT_DATABASE,
            "127.0.0.1",
            free_port(),
            max_body_bytes=1000,
            loop=endpoints.loop.loop,
        )
    )
    try:
        padded = b"SELECT 1 " + b" " * 1000
        too_long = http(small.url + "/", data=padded)
        assert (too_long.status, too_long.headers["X-ClickHouse-Exception-Code"]) == (413, "229")
        # A small gzip body that inflates past the limit is refused too, before it is all held in memory.
        bomb = http(small.url + "/", data=gzip.compress(padded * 1000), headers={"Content-Encoding": "gzip"})
        assert (bomb.status, bomb.headers["X-ClickHouse-Exception-Code"]) == (413, "229")
        body, headers = multipart([("query", "SELECT 1", None), ("param_x", "x" * 2000, None)])
        form = http(small.url + "/", data=body, headers=headers)
        assert (form.status, form.headers["X-ClickHouse-Exception-Code"]) == (413, "229")
        assert http(small.url + "/", data=b"SELECT 1").text == "1\n"
    finally:
        endpoints.stop(small)


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", "deflate", False])
def test_clickhouse_connect_reads_every_response_compression(
    endpoints: Endpoints, database: str, compress: str | bool
) -> None:
    connected = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoints.readonly.port, database=database, compress=compress
    )
    try:
        rows = connected.query(
            "SELECT id, rep, amount, closed, at, score, tags FROM deals ORDER BY id"
        ).result_rows
        numbers = connected.query("SELECT sum(number), count() FROM numbers(100000)").result_rows
    finally:
        connected.close()
    assert rows == EXPECTED_DEALS
    assert numbers == [(sum(range(100000)), 100000)]


def test_database_defaults_to_the_endpoints_database(endpoints: Endpoints) -> None:
    connected = clickhouse_connect.get_client(host="127.0.0.1", port=endpoints.readonly.port)
    try:
        assert connected.query("SELECT currentDatabase(), name FROM marker").result_rows == [
            (DEFAULT_DATABASE, "default database")
        ]
    finally:
        connected.close()


# --- curl and raw HTTP ----------------------------------------------------------------------------


def curl(*args: str) -> str:
    done = subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True, check=True)
    return done.stdout.decode()


def test_curl_select_1(endpoints: Endpoints) -> None:
    assert curl(f"{endpoints.url}/?query=SELECT+1") == "1\n"
    assert curl(f"{endpoints.url}/?query=SELECT%201%2B1") == "2\n"


def test_curl_posts_the_query_as_the_body_and_concatenates_it_with_the_query_parameter(
    endpoints: Endpoints, database: str
) -> None:
    url = query_url(endpoints.url, database=database)
    assert curl(url, "--data-binary", "SELECT rep FROM deals ORDER BY id") == "rep-1\n销售二\n"
    # ClickHouse runs `query` + newline + body as one statement.
    url = query_url(endpoints.url, database=database, query="SELECT rep FROM deals")
    assert curl(url, "--data-binary", "WHERE id = 2") == "销售二\n"


def test_ping_and_root_answer_ok(endpoints: Endpoints) -> None:
    assert curl(f"{endpoints.url}/ping") == "Ok.\n"
    assert curl(f"{endpoints.url}/") == "Ok.\n"
    assert curl(f"{endpoints.url}/replicas_status") == "Ok.\n"
    missing = http(f"{endpoints.url}/play")
    assert missing.status == 404
    assert missing.text.startswith("There is no handle /play\n")


def test_json_each_row_and_csv_with_names(endpoints: Endpoints, database: str) -> None:
    reply = http(
        query_url(endpoints.url, database=database),
        data=b"SELECT id, rep, amount, score FROM deals ORDER BY id FORMAT JSONEachRow",
    )
    assert reply.status == 200
    assert reply.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert [json.loads(line) for line in reply.text.splitlines()] == [
        {"id": 1, "rep": "rep-1", "amount": 1234.5, "score": 5},
        {"id": 2, "rep": "销售二", "amount": 0.01, "score": None},
    ]
    reply = http(
        query_url(
            endpoints.url,
            database=database,
            default_format="CSVWithNames",
            query="SELECT id, rep, closed, tags FROM deals ORDER BY id",
        )
    )
    assert reply.status == 200
    assert reply.headers["X-ClickHouse-Format"] == "CSVWithNames"
    assert reply.headers["Content-Type"] == "text/csv; charset=UTF-8; header=present"
    assert reply.text == (
        '"id","rep","closed","tags"\n1,"rep-1","2024-03-01","[\'a\',\'b\']"\n2,"销售二","2024-12-31","[]"\n'
    )


def test_response_headers_match_clickhouse(endpoints: Endpoints, database: str, engine: Any) -> None:
    reply = http(query_url(endpoints.url, database=database, query_id="q-42", query="SELECT id FROM deals"))
    assert reply.status == 200
    assert reply.headers["X-ClickHouse-Query-Id"] == "q-42"
    assert reply.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert reply.headers["Content-Type"] == "text/tab-separated-values; charset=UTF-8"
    timezone = engine.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
    assert reply.headers["X-ClickHouse-Timezone"] == timezone
    assert reply.headers["X-ClickHouse-Server-Display-Name"] == socket.gethostname()
    summary = json.loads(reply.headers["X-ClickHouse-Summary"])
    assert (summary["read_rows"], summary["written_rows"], summary["result_bytes"]) == ("2", "0", "4")
    shanghai = http(query_url(endpoints.url, session_timezone="Asia/Shanghai", query="SELECT timezone()"))
    assert (shanghai.text, shanghai.headers["X-ClickHouse-Timezone"]) == ("Asia/Shanghai\n", "Asia/Shanghai")


@pytest.mark.parametrize("encoding", available_encodings())
def test_response_is_compressed_when_asked(endpoints: Endpoints, encoding: str) -> None:
    expected = "".join(f"{n}\n" for n in range(1000)).encode()
    asked = query_url(endpoints.url, enable_http_compression="1", query="SELECT number FROM numbers(1000)")
    reply = http(asked, headers={"Accept-Encoding": encoding})
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == encoding
    decoders = {
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
        "zstd": zstd.decompress,
        "lz4": lz4.frame.decompress,
    }
    assert decoders[encoding](reply.body) == expected
    # Without enable_http_compression ClickHouse ignores Accept-Encoding.
    plain = http(
        query_url(endpoints.url, query="SELECT number FROM numbers(1000)"),
        headers={"Accept-Encoding": encoding},
    )
    assert "Content-Encoding" not in plain.headers
    assert plain.body == expected


def test_response_encoding_follows_clickhouses_preference(endpoints: Endpoints) -> None:
    asked = query_url(endpoints.url, enable_http_compression="1", query="SELECT 1")
    reply = http(asked, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert reply.headers["Content-Encoding"] == "zstd"
    assert zstd.decompress(reply.body) == b"1\n"


def native_blocks(data: bytes, cityhash128: Any) -> bytes:
    """ClickHouse native LZ4 blocks built here, independently of the endpoint's codec."""
    payload = lz4.block.compress(data, store_size=False)
    block = struct.pack("<BII", 0x82, 9 + len(payload), len(data)) + payload
    digest = cityhash128(block)
    return struct.pack("<QQ", digest >> 64, digest & (2**64 - 1)) + block


def read_native_blocks(body: bytes, cityhash128: Any) -> tuple[bytes, list[int]]:
    """Decode (and checksum) native blocks; returns the data and each block's method byte."""
    data, methods, position = b"", [], 0
    while position < len(body):
        method, size, raw_size = struct.unpack_from("<BII", body, position + 16)
        block = body[position + 16 : position + 16 + size]
        digest = cityhash128(block)
        assert body[position : position + 16] == struct.pack("<QQ", digest >> 64, digest & (2**64 - 1))
        methods.append(method)
        if method == 0x82:
            data += lz4.block.decompress(block[9:], uncompressed_size=raw_size)
        else:
            data += zstd.decompress(block[9:])
        position += 16 + size
    return data, methods


def test_native_compression_needs_clickhouse_cityhash(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployment without the package: simulated by hiding it from the endpoint module.
    monkeypatch.setattr(compression, "_cityhash", None)
    assert not native_compression_available()
    reply = http(query_url(endpoints.url, compress="1", query="SELECT 1"))
    assert (reply.status, reply.headers["X-ClickHouse-Exception-Code"]) == (501, "48")
    assert "clickhouse-cityhash" in reply.text


def test_native_block_compression_both_ways(endpoints: Endpoints) -> None:
    import clickhouse_cityhash.cityhash as cityhash  # a dependency: BI connectors compress this way

    expected = "".join(f"{n}\n" for n in range(300_000)).encode()  # over 1 MiB: two blocks
    reply = http(query_url(endpoints.url, compress="1", query="SELECT number FROM numbers(300000)"))
    assert reply.status == 200
    assert read_native_blocks(reply.body, cityhash.CityHash128) == (expected, [0x82, 0x82])
    zstd_reply = http(
        query_url(endpoints.url, compress="1", network_compression_method="ZSTD", query="SELECT 7")
    )
    assert read_native_blocks(zstd_reply.body, cityhash.CityHash128) == (b"7\n", [0x90])
    body = native_blocks(b"SELECT 40 ", cityhash.CityHash128) + native_blocks(b"+ 2", cityhash.CityHash128)
    assert http(query_url(endpoints.url, decompress="1"), data=body).text == "42\n"
    corrupt = bytearray(body)
    corrupt[-1] ^= 0xFF
    refused = http(query_url(endpoints.url, decompress="1"), data=bytes(corrupt))
    assert (refused.status, refused.headers["X-ClickHouse-Exception-Code"]) == (500, "40")


def test_compressed_request_bodies_are_decoded(endpoints: Endpoints, database: str) -> None:
    url = query_url(endpoints.url, database=database)
    # Two gzip members, as a streaming client may send them: ClickHouse reads both.
    body = gzip.compress(b"SELECT sum(id) ") + gzip.compress(b"FROM deals")
    assert http(url, data=body, headers={"Content-Encoding": "gzip"}).text == "3\n"
    body = lz4.frame.compress(b"SELECT max(id) ") + lz4.frame.compress(b"FROM deals")
    assert http(url, data=body, headers={"Content-Encoding": "lz4"}).text == "2\n"
    broken = http(url, data=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert (broken.status, broken.headers["X-ClickHouse-Exception-Code"]) == (500, "271")


# --- read-only ------------------------------------------------------------------------------------

READONLY_REFUSAL = "Cannot execute query in readonly mode. (READONLY)"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO deals (id, rep, amount, closed, at, score, tags) "
        "VALUES (3, 'x', 1, '2024-01-01', '2024-01-01 00:00:00', NULL, [])",
        "DROP TABLE deals",
        "CREATE TABLE extra (a UInt8) ENGINE = Memory",
        "TRUNCATE TABLE deals",
        "ALTER TABLE deals DELETE WHERE id = 1",
    ],
)
def test_writes_are_refused_and_change_nothing(
    endpoints: Endpoints, database: str, engine: Any, statement: str
) -> None:
    reply = http(query_url(endpoints.url, database=database), data=statement.encode())
    # ClickHouse 26 maps no HTTP status to READONLY (exceptionCodeToHTTPStatus), so a server sends 500.
    assert reply.status == 500
    assert reply.headers["X-ClickHouse-Exception-Code"] == "164"
    assert (
        reply.text
        == f"Code: 164. DB::Exception: default: {READONLY_REFUSAL} (version {engine_version(engine)})\n"
    )
    assert engine_rows(engine, f"SELECT id, rep FROM {database}.deals ORDER BY id") == [
        [1, "rep-1"],
        [2, "销售二"],
    ]
    assert engine_rows(engine, f"SELECT name FROM system.tables WHERE database = '{database}'") == [["deals"]]


def test_clickhouse_connect_sees_the_refusal_as_a_database_error(
    client: Client, engine: Any, database: str
) -> None:
    with pytest.raises(DatabaseError) as refused:
        client.command("DROP TABLE deals")
    assert (refused.value.code, refused.value.name) == (164, "READONLY")
    assert engine_rows(engine, f"SELECT count() FROM {database}.deals") == [[2]]


def test_readonly_cannot_be_lifted(endpoints: Endpoints, engine: Any) -> None:
    reply = http(query_url(endpoints.url, readonly="0", query="SELECT 1"))
    assert (reply.status, reply.headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert reply.text == (
        "Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. "
        f"(READONLY) (version {engine_version(engine)})\n"
    )
    in_query = http(query_url(endpoints.url, query="SELECT 1 SETTINGS readonly = 0"))
    assert (in_query.status, in_query.headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert "(READONLY)" in in_query.text


def test_settings_apply_to_their_request_only(endpoints: Endpoints) -> None:
    with_setting = http(
        query_url(endpoints.url, max_result_rows="7", query="SELECT getSetting('max_result_rows')")
    )
    assert with_setting.text == "7\n"
    # Without it, the endpoint's own limit (SALESPULSE_SQL_MAX_RESULT_ROWS).
    assert http(query_url(endpoints.url, query="SELECT getSetting('max_result_rows')")).text == "1000000\n"


def test_bad_setting_names_and_unknown_settings_are_refused(endpoints: Endpoints) -> None:
    bad_name = http(f"{endpoints.url}/?query=SELECT+1&max%20threads=1")
    assert (bad_name.status, bad_name.headers["X-ClickHouse-Exception-Code"]) == (400, "36")
    unknown = http(query_url(endpoints.url, no_such_setting="1", query="SELECT 1"))
    assert (unknown.status, unknown.headers["X-ClickHouse-Exception-Code"]) == (404, "115")
    assert "Unknown setting 'no_such_setting'" in unknown.text


def test_syntax_errors_and_unknown_tables_are_reported_like_clickhouse(
    endpoints: Endpoints, database: str, engine: Any
) -> None:
    version = engine_version(engine)
    reply = http(query_url(endpoints.url, query="SELEC 1"))
    assert (reply.status, reply.headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert reply.text.startswith("Code: 62. DB::Exception: Syntax error: failed at position ")
    assert reply.text.endswith(f"(SYNTAX_ERROR) (version {version})\n")
    missing = http(query_url(endpoints.url, database=database, query="SELECT * FROM nope"))
    assert (missing.status, missing.headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert missing.text.endswith(f"(UNKNOWN_TABLE) (version {version})\n")
    no_database = http(query_url(endpoints.url, database="no_such_db", query="SELECT 1"))
    assert (no_database.status, no_database.headers["X-ClickHouse-Exception-Code"]) == (404, "81")
    empty = http(endpoints.url + "/", data=b"")
    assert (empty.status, empty.text) == (
        400,
        f"Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR) (version {version})\n",
    )


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "file()"),
        ("SELECT file('/etc/hostname')", "file()"),
        ("SELECT * FROM `file` ('/etc/hostname', 'LineAsString')", "file()"),
        ("SELECT count() FROM url('http://127.0.0.1:9/', 'LineAsString')", "url()"),
        ("SELECT * FROM s3('http://127.0.0.1:9/x.csv')", "s3()"),
        ("SELECT * FROM remote('127.0.0.1:9', system.one)", "remote()"),
        ("SELECT * FROM python('frame')", "python()"),
        # ‘…’ is a string to ClickHouse even around a plain quote; file() between two is code.
        ("SELECT ‘'’, file('/etc/hostname'), ‘'’", "file()"),
        ("SELECT * FROM '/etc/hostname'", "string literal after FROM"),
    ],
)
def test_reading_outside_the_store_is_refused(endpoints: Endpoints, sql: str, named: str) -> None:
    reply = http(endpoints.url + "/", data=sql.encode())
    assert (reply.status, reply.headers["X-ClickHouse-Exception-Code"]) == (403, "497")
    assert named in reply.text
    assert "(ACCESS_DENIED)" in reply.text


def test_names_inside_strings_and_comments_are_not_calls(endpoints: Endpoints) -> None:
    sql = "SELECT 'file(' AS s, $$url($$ AS t, sum(number) FROM numbers(4) -- file('/etc/hostname')\n"
    assert http(endpoints.url + "/", data=sql.encode()).text == "file(\turl(\t6\n"


def test_into_outfile_and_multi_statements_are_refused(endpoints: Endpoints, tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    outfile = http(endpoints.url + "/", data=f"SELECT 1 INTO OUTFILE '{target}'".encode())
    assert (outfile.status, outfile.headers["X-ClickHouse-Exception-Code"]) == (500, "358")
    assert not target.exists()
    multi = http(endpoints.url + "/", data=b"SELECT 1; SELECT 2")
    assert (multi.status, multi.headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert "Multi-statements are not allowed" in multi.text
    assert http(endpoints.url + "/", data=b"SELECT 1;").text == "1\n"


def test_the_event_loop_answers_while_a_query_runs(endpoints: Endpoints) -> None:
    slow: list[Reply] = []
    worker = threading.Thread(
        target=lambda: slow.append(
            http(query_url(endpoints.url, query="SELECT sum(sleepEachRow(0.5)) FROM numbers(6)"))
        )
    )
    worker.start()
    try:
        wait = threading.Event()
        wait.wait(0.5)  # let the slow query reach chDB
        assert curl(f"{endpoints.url}/ping") == "Ok.\n"
        assert curl(f"{endpoints.url}/?query=SELECT+2") == "2\n"
        assert worker.is_alive(), "the slow query (3 s of sleepEachRow) should still be running"
    finally:
        worker.join(30)
    assert slow[0].text == "0\n"


# --- writable mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_clickhouse_connect_inserts_into_a_writable_endpoint(
    endpoints: Endpoints, database: str, engine: Any, compress: str | bool
) -> None:
    writer = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoints.writable.port, database=database, compress=compress
    )
    rows = [
        (3, "新人", Decimal("99.99"), dt.date(2025, 1, 2), dt.datetime(2025, 1, 2, 3, 4, 5, 6000), -1, ["x"]),
        (4, "rep-4", Decimal("0.00"), dt.date(1970, 1, 1), dt.datetime(1970, 1, 1), None, ["y", "z"]),
    ]
    try:
        writer.insert("deals", rows, column_names=["id", "rep", "amount", "closed", "at", "score", "tags"])
        read_back = writer.query("SELECT * FROM deals ORDER BY id").result_rows
    finally:
        writer.close()
    assert read_back == [*EXPECTED_DEALS, *rows]
    assert engine_rows(
        engine,
        f"SELECT id, rep, toString(amount), toString(at), score FROM {database}.deals WHERE id > 2 ORDER BY id",
    ) == [
        [3, "新人", "99.99", "2025-01-02 03:04:05.006", -1],
        [4, "rep-4", "0", "1970-01-01 00:00:00.000", None],
    ]


def test_a_large_insert_arrives_whole(endpoints: Endpoints, database: str, engine: Any) -> None:
    engine.query(f"CREATE TABLE {database}.wide (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
    count = 600_000  # several Native blocks, each its own lz4 frame
    writer = clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoints.writable.port, database=database, compress="lz4"
    )
    try:
        writer.insert("wide", [(n, f"s{n % 1000}") for n in range(count)], column_names=["n", "s"])
    finally:
        writer.close()
    expected_lengths = sum(len(f"s{n % 1000}") for n in range(count))
    assert engine_rows(engine, f"SELECT count(), sum(n), sum(length(s)) FROM {database}.wide") == [
        [count, count * (count - 1) // 2, expected_lengths]
    ]


def test_insert_with_settings_and_a_text_body(endpoints: Endpoints, database: str, engine: Any) -> None:
    url = query_url(
        endpoints.writable.url,
        database=database,
        query="INSERT INTO deals (id, rep, amount, closed, at) SETTINGS max_insert_threads = 1 FORMAT CSV",
    )
    reply = http(
        url, data=b"7,csv-rep,1.5,2024-05-06,2024-05-06 07:08:09\n8,other,2,2024-05-07,2024-05-07 00:00:00\n"
    )
    assert reply.status == 200, reply.text
    assert json.loads(reply.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert engine_rows(
        engine, f"SELECT id, rep, toString(amount) FROM {database}.deals WHERE id > 2 ORDER BY id"
    ) == [
        [7, "csv-rep", "1.5"],
        [8, "other", "2"],
    ]


def test_get_is_read_only_even_on_a_writable_endpoint(
    endpoints: Endpoints, database: str, engine: Any
) -> None:
    reply = http(query_url(endpoints.writable.url, database=database, query="DROP TABLE deals"))
    assert (reply.status, reply.headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert engine_rows(engine, f"SELECT count() FROM {database}.deals") == [[2]]


def test_clickhouse_connect_insert_is_refused_by_the_readonly_endpoint(
    client: Client, engine: Any, database: str
) -> None:
    with pytest.raises(DatabaseError) as refused:
        client.insert(
            "deals", [(9, "no", Decimal(1), dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), None, [])]
        )
    assert (refused.value.code, refused.value.name) == (164, "READONLY")
    assert engine_rows(engine, f"SELECT count() FROM {database}.deals") == [[2]]


# --- lifecycle ------------------------------------------------------------------------------------


def test_a_missing_default_database_falls_back_but_a_named_one_must_exist(
    endpoints: Endpoints, chdb_path: str
) -> None:
    endpoint = endpoints.start(
        QueryEndpoint(chdb_path, "not_migrated_yet", "127.0.0.1", free_port(), loop=endpoints.loop.loop)
    )
    try:
        assert curl(f"{endpoint.url}/?query=SELECT+currentDatabase()") == "default\n"
        named = http(query_url(endpoint.url, database="not_migrated_yet", query="SELECT 1"))
        assert (named.status, named.headers["X-ClickHouse-Exception-Code"]) == (404, "81")
    finally:
        endpoints.stop(endpoint)


def test_stop_releases_the_port(endpoints: Endpoints, chdb_path: str) -> None:
    port = free_port()
    endpoint = endpoints.start(
        QueryEndpoint(chdb_path, DEFAULT_DATABASE, "127.0.0.1", port, loop=endpoints.loop.loop)
    )
    assert curl(f"{endpoint.url}/?query=SELECT+3") == "3\n"
    endpoints.stop(endpoint)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind(("127.0.0.1", port))


# --- resource limits (issue 17, point 2) ------------------------------------------------------------

LIMITS = QueryLimits(
    max_execution_seconds=2,
    max_memory_bytes=64 << 20,
    max_result_rows=100,
    concurrent_queries=1,
    queue_seconds=0.5,
)


@pytest.fixture(scope="module")
def limited(endpoints: Endpoints, chdb_path: str) -> Iterator[str]:
    """A read-only endpoint with small limits, on the same engine; its URL."""
    endpoint = endpoints.start(
        QueryEndpoint(
            chdb_path, DEFAULT_DATABASE, "127.0.0.1", free_port(), loop=endpoints.loop.loop, limits=LIMITS
        )
    )
    yield endpoint.url
    endpoints.stop(endpoint)


def refused(reply: Reply) -> tuple[int, str, str]:
    """(status, code, name) of an error reply."""
    return (
        reply.status,
        reply.headers.get("X-ClickHouse-Exception-Code", ""),
        reply.text.rsplit("(", 2)[-2].strip(") "),
    )


def test_the_limits_are_in_force_on_every_request(limited: str, endpoints: Endpoints) -> None:
    names = "max_execution_time, max_memory_usage, max_result_rows, result_overflow_mode, max_threads"
    sql = f"SELECT {', '.join(f'getSetting({name!r})' for name in names.split(', '))}"
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert http(query_url(limited, query=sql)).text == f"2\t{64 << 20}\t100\tthrow\t{threads}\n"
    # The default endpoint has the default limits.
    assert http(query_url(endpoints.url, query=sql)).text == f"30\t{1 << 30}\t1000000\tthrow\t{threads}\n"


def test_a_memory_hungry_query_fails_cleanly_with_memory_limit_exceeded(limited: str) -> None:
    reply = http(query_url(limited, query="SELECT length(groupArray(number)) FROM numbers(20000000)"))
    assert refused(reply) == (500, "241", "MEMORY_LIMIT_EXCEEDED"), reply.text
    assert http(query_url(limited, query="SELECT 1")).text == "1\n"  # the endpoint carries on


def test_a_query_running_too_long_is_stopped(limited: str) -> None:
    started = time.monotonic()
    reply = http(
        query_url(limited, max_block_size="1", query="SELECT sum(sleepEachRow(0.25)) FROM numbers(40)")
    )
    assert refused(reply) == (408, "159", "TIMEOUT_EXCEEDED"), reply.text
    assert time.monotonic() - started < 8  # stopped near 2 s, not after the 10 s it asks for


def test_results_beyond_the_row_limit_are_refused(limited: str) -> None:
    assert http(query_url(limited, query="SELECT count() FROM numbers(100)")).text == "100\n"
    reply = http(query_url(limited, query="SELECT number FROM numbers(101)"))
    assert refused(reply) == (500, "396", "TOO_MANY_ROWS_OR_BYTES"), reply.text
    # A client may tighten a limit...
    tighter = http(query_url(limited, max_result_rows="10", query="SELECT number FROM numbers(11)"))
    assert refused(tighter)[1:] == ("396", "TOO_MANY_ROWS_OR_BYTES")


@pytest.mark.parametrize(
    "params",
    [
        {"max_result_rows": "0", "query": "SELECT 1"},
        {"max_execution_time": "100", "query": "SELECT 1"},
        {"max_memory_usage": "0", "query": "SELECT 1"},
        {"result_overflow_mode": "break", "query": "SELECT 1"},
        {"profile": "default", "query": "SELECT 1"},
        {"query": "SELECT number FROM numbers(1000) SETTINGS max_result_rows = 0"},
        {"query": "SELECT * FROM (SELECT 1 SETTINGS `max_memory_usage`=0)"},
        {"query": "SELECT 1 SETTINGS max_threads = 64, max_execution_time = 0"},
    ],
)
def test_a_client_cannot_loosen_a_limit(limited: str, params: dict[str, str]) -> None:
    reply = http(query_url(limited, **params))
    assert refused(reply) == (500, "452", "SETTING_CONSTRAINT_VIOLATION"), reply.text


def test_beyond_the_concurrency_limit_a_query_waits_then_is_refused(limited: str) -> None:
    slow = threading.Thread(
        target=http,
        args=(
            query_url(limited, max_block_size="1", query="SELECT sum(sleepEachRow(0.25)) FROM numbers(6)"),
        ),
    )
    slow.start()
    time.sleep(0.3)
    reply = http(query_url(limited, query="SELECT 1"))
    slow.join()
    assert refused(reply) == (500, "202", "TOO_MANY_SIMULTANEOUS_QUERIES"), reply.text
    assert http(query_url(limited, query="SELECT 1")).text == "1\n"
