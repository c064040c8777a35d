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
import importlib
import json
import logging
import os
import re
import socket
import struct
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import chdb
from aiohttp import BodyPartReader, web
from mode import Service

log = logging.getLogger(__name__)


def _optional_module(name: str) -> Any:
    """The module, or None: lz4 and zstd ship with clickhouse-connect, but the endpoint works without them."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_lz4_frame = _optional_module("lz4.frame")
_lz4_block = _optional_module("lz4.block")
# CityHash128 v1.0.2 checksums ClickHouse's native compressed blocks (compress=1/decompress=1).
_cityhash = _optional_module("clickhouse_cityhash.cityhash")
_zstd = _optional_module("backports.zstd") or _optional_module("compression.zstd")

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

# Table functions that only read what the engine already holds. Every other one (file, url, s3,
# remote, mysql, python, executable, iceberg... and whatever a new chDB adds) reaches outside the
# store and is refused in read-only mode; the list is the complement of this one, not a denylist,
# so a new I/O table function is refused until someone decides it is harmless.
SAFE_TABLE_FUNCTIONS = frozenset(
    {
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "primes",
        "generate_series",
        "generateseries",
        "generaterandom",
        "values",
        "sqlstandardvalues",
        "view",
        "viewifpermitted",
        "viewexplain",
        "merge",
        "null",
        "loop",
        "format",
        "dictionary",
    }
)
# Ordinary functions that read the file system; chDB lets file() read any path the worker can.
UNSAFE_FUNCTIONS = frozenset({"file"})

# ClickHouse's numeric codes for the errors this module raises itself.
ERROR_CODES: Mapping[str, int] = {
    "UNSUPPORTED_METHOD": 1,
    "BAD_ARGUMENTS": 36,
    "NOT_IMPLEMENTED": 48,
    "SYNTAX_ERROR": 62,
    "CANNOT_PARSE_NUMBER": 72,
    "UNKNOWN_DATABASE": 81,
    "UNKNOWN_COMPRESSION_METHOD": 89,
    "READONLY": 164,
    "QUERY_IS_TOO_LARGE": 229,
    "CANNOT_DECOMPRESS": 271,
    "CHECKSUM_DOESNT_MATCH": 40,
    "INTO_OUTFILE_NOT_ALLOWED": 358,
    "ACCESS_DENIED": 497,
    "UNKNOWN_EXCEPTION": 1002,
}

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, 26.x),
# by error name. READONLY is not in it: a ClickHouse server answers a refused write with 500.
_STATUS_BY_ERROR: Mapping[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

# Statements whose answer is a result set: ClickHouse then reports its format in X-ClickHouse-Format,
# which clickhouse-connect reads to tell an empty result from a statement without one.
_RESULT_KEYWORDS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "FROM", "("}
)

_TEXT_PLAIN = "text/plain; charset=UTF-8"
_INLINE_LEX_BYTES = 64 << 10


class ClickHouseError(Exception):
    """An error to answer the way ClickHouse does: ``Code: N. DB::Exception: message. (NAME)``."""

    def __init__(self, name: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.code = code if code is not None else ERROR_CODES.get(name, ERROR_CODES["UNKNOWN_EXCEPTION"])
        self.message = message

    @classmethod
    def from_engine(cls, error: BaseException) -> "ClickHouseError":
        """Parse chDB's exception text, unwrapping the nested copies it adds for some errors."""
        text = str(error).strip()
        start = text.find("Code: ")
        if start < 0:
            return cls("UNKNOWN_EXCEPTION", f"{type(error).__name__}: {text}")
        text = text[start:]
        # chDB wraps some errors in themselves: "Code: 73. DB::Exception: Code: 73. DB::Exception: x.
        # (UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT)"; a server reports the inner one.
        while (nested := _NESTED_ERROR.match(text)) is not None:
            text = nested.group(1)
        text = _TRAILING_REPEATS.sub("", text)
        parsed = _ENGINE_ERROR.match(text)
        if parsed is None:
            return cls("UNKNOWN_EXCEPTION", text)
        code, message, name = int(parsed.group(1)), parsed.group(2), parsed.group(3)
        return cls(name, message, code)

    @property
    def status(self) -> int:
        """ClickHouse's HTTP status for this error."""
        return _STATUS_BY_ERROR.get(self.name, 500)

    def body(self, version: str) -> bytes:
        """The response body a ClickHouse server of ``version`` sends."""
        message = self.message if self.message.endswith(".") else f"{self.message}."
        return f"Code: {self.code}. DB::Exception: {message} ({self.name}) (version {version})\n".encode()


_NESTED_ERROR = re.compile(r"Code: \d+\. DB::Exception: (Code: \d+\. DB::Exception: .*)\Z", re.DOTALL)
_TRAILING_REPEATS = re.compile(r"(?: \(version [^)]*\)\. \([A-Z0-9_]+\))+\Z")
_ENGINE_ERROR = re.compile(
    r"Code: (\d+)\. DB::Exception: (.*?)\s*\(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\s*\Z", re.DOTALL
)


# --- reading SQL --------------------------------------------------------------------------------
#
# The endpoint needs a few facts about a statement before chDB runs it: where an INSERT's data
# starts, which output format it asks for, and (in read-only mode) whether it reaches outside the
# store. The lexer mirrors ClickHouse's quoting rules (strings with backslash escapes and doubled
# quotes, Unicode ‘’/“” quotes without escapes, $tag$ heredocs, --, "# " and /* */ comments). Where
# it cannot be exact it errs towards seeing more code, never less: text that ClickHouse would treat
# as a string or a comment is never taken for code that escapes a check. It works on bytes so an
# INSERT's binary data can be split off at an exact offset.

_TOKEN = re.compile(
    rb"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|\#[ !][^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>
          '(?:[^'\\]++|\\.|\\\Z|'')*+(?:'|\Z)
        | \xe2\x80\x98.*?(?:\xe2\x80\x99|\Z)
        | \$(?P<tag>[A-Za-z0-9_]*)\$.*?(?:\$(?P=tag)\$|\Z)
      )
    | (?P<quoted>
          "(?:[^"\\]++|\\.|\\\Z|"")*+(?:"|\Z)
        | `(?:[^`\\]++|\\.|\\\Z|``)*+(?:`|\Z)
        | \xe2\x80\x9c.*?(?:\xe2\x80\x9d|\Z)
      )
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[;(),.])
    | (?P<other>[^\s'"`;(),.A-Za-z_$/\#\-\xe2]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    start: int
    end: int
    text: bytes

    @property
    def word(self) -> str:
        """The upper-case keyword, or "" when the token is not a bare word."""
        return self.text.decode("ascii").upper() if self.kind == "word" else ""

    @property
    def name(self) -> str | None:
        """The identifier a word or quoted token spells, lower-cased; None for other tokens."""
        if self.kind == "word":
            return self.text.decode("ascii").lower()
        if self.kind == "quoted":
            inner = self.text[3:-3] if self.text.startswith(b"\xe2") else self.text[1:-1]
            return re.sub(rb"\\(.)|([\"`])\2", rb"\1\2", inner).decode("utf-8", "replace").lower()
        return None


def _tokens(sql: bytes) -> Iterator[_Token]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"  # the outermost group: a heredoc's tag reports as "string"
        if kind in ("space", "comment"):
            continue
        yield _Token(kind, match.start(), match.end(), match.group())


@dataclass
class SqlShape:
    """What the endpoint needs to know about one request's SQL before running it."""

    keyword: str = ""
    output_format: str | None = None
    # An INSERT ... FORMAT X: where its statement ends and its data (the rest of the request) starts.
    insert_format: str | None = None
    insert_settings_start: int | None = None
    insert_format_start: int | None = None
    data_start: int | None = None
    functions: set[str] = field(default_factory=set)
    reads_path_literal: bool = False
    into_outfile: bool = False
    second_statement_at: int | None = None

    @property
    def returns_rows(self) -> bool:
        """Whether the statement answers with a result set (so ClickHouse names its format)."""
        return self.keyword in _RESULT_KEYWORDS


def inspect_sql(sql: bytes) -> SqlShape:
    """Read the facts the endpoint checks from a statement; an INSERT's data is not scanned."""
    shape = SqlShape()
    previous: _Token | None = None
    format_keyword: _Token | None = None
    pending_format: _Token | None = None
    depth = 0
    ended = False
    insert_has_source = False
    for token in _tokens(sql):
        if ended:
            shape.second_statement_at = token.start
            break
        if pending_format is not None:
            # FORMAT X is the output format only when it ends the statement (or precedes SETTINGS);
            # otherwise "format" was a column name.
            if token.word == "SETTINGS" or token.text == b";":
                shape.output_format = pending_format.text.decode("ascii")
            pending_format = None
        word = token.word
        if not shape.keyword:
            shape.keyword = word or token.text.decode("utf-8", "replace")
        if token.text == b"(":
            if previous is not None and (name := previous.name) is not None:
                shape.functions.add(name)
            depth += 1
        elif token.text == b")":
            depth = max(0, depth - 1)
        elif token.text == b";":
            ended = True
        elif token.kind == "string" and previous is not None and previous.word in ("FROM", "JOIN"):
            shape.reads_path_literal = True
        elif word == "OUTFILE" and previous is not None and previous.word == "INTO":
            shape.into_outfile = True
        elif depth == 0 and shape.keyword == "INSERT":
            if word in ("VALUES", "SELECT", "WITH"):
                insert_has_source = True
            elif word == "SETTINGS" and not insert_has_source:
                shape.insert_settings_start = token.start
            elif (
                token.kind == "word"
                and format_keyword is not None
                and previous is format_keyword
                and not insert_has_source
            ):
                shape.insert_format = token.text.decode("ascii")
                shape.insert_format_start = format_keyword.start
                shape.data_start = _data_start(sql, token.end)
                return shape  # the rest is data, possibly binary: never scan it
        elif depth == 0 and token.kind == "word" and previous is not None and previous is format_keyword:
            pending_format = token
        if word == "FORMAT" and depth == 0:
            format_keyword = token
        previous = token
    if pending_format is not None:
        shape.output_format = pending_format.text.decode("ascii")
    return shape


def _data_start(sql: bytes, position: int) -> int:
    """Where INSERT data starts after its format name: past blanks and at most one line break, as in ClickHouse."""
    while position < len(sql) and sql[position] in b" \t\f":
        position += 1
    if sql[position : position + 1] == b"\r":
        position += 1
    if sql[position : position + 1] == b"\n":
        position += 1
    return position


def _check_statement(shape: SqlShape, readonly: bool, table_functions: frozenset[str]) -> None:
    """Refuse what a ClickHouse server refuses over HTTP, and in read-only mode what reads outside the store."""
    if shape.second_statement_at is not None:
        raise ClickHouseError(
            "SYNTAX_ERROR",
            f"Syntax error (Multi-statements are not allowed): failed at position {shape.second_statement_at + 1}: "
            "send one statement per request",
        )
    if shape.into_outfile:
        raise ClickHouseError(
            "INTO_OUTFILE_NOT_ALLOWED",
            "INTO OUTFILE is not allowed over HTTP: the result is the response body; save it on the client",
        )
    if not readonly:
        return
    outside = sorted(
        name
        for name in shape.functions
        if name in UNSAFE_FUNCTIONS or (name in table_functions and name not in SAFE_TABLE_FUNCTIONS)
    )
    if outside:
        raise ClickHouseError(
            "ACCESS_DENIED",
            f"{', '.join(f'{name}()' for name in outside)} reads data outside the store, which this read-only "
            "endpoint does not allow; query the database's tables and views instead",
        )
    if shape.reads_path_literal:
        raise ClickHouseError(
            "ACCESS_DENIED",
            "reading a file named by a string literal after FROM is not allowed by this read-only endpoint; "
            "query the database's tables and views instead",
        )


# --- compression ---------------------------------------------------------------------------------


def available_encodings() -> tuple[str, ...]:
    """Content encodings this endpoint decodes and produces, in ClickHouse's order of preference."""
    return (
        *(("zstd",) if _zstd is not None else ()),
        *(("lz4",) if _lz4_frame is not None else ()),
        "gzip",
        "deflate",
    )


def choose_encoding(accept_encoding: str) -> str | None:
    """The response encoding for an Accept-Encoding header, chosen the way ClickHouse does (by substring)."""
    return next((name for name in available_encodings() if name in accept_encoding), None)


def compress(data: bytes, encoding: str, level: int) -> bytes:
    """Compress a response body; deflate is zlib-wrapped, as ClickHouse sends it."""
    if encoding == "gzip":
        packer = zlib.compressobj(level, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()
    if encoding == "deflate":
        return zlib.compress(data, level)
    if encoding == "zstd":
        return bytes(_zstd.compress(data, level))
    if encoding == "lz4":
        return bytes(_lz4_frame.compress(data))
    raise ValueError(f"unsupported content encoding {encoding!r}")


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a request body of concatenated frames or members, refusing output over ``limit`` bytes.

    clickhouse-connect compresses each insert block as its own lz4 frame, and ``lz4.frame.decompress``
    silently stops after the first one, so every codec goes through the same frame loop here.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in available_encodings():
        raise ClickHouseError(
            "UNKNOWN_COMPRESSION_METHOD",
            f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(available_encodings())}",
        )
    output = bytearray()
    rest = data
    while rest:
        decoder = _decoder(encoding)
        try:
            output += decoder.decompress(rest, limit - len(output) + 1)
        except Exception as error:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS", f"cannot decompress the {encoding} request body: {error}"
            ) from None
        if len(output) > limit:
            raise ClickHouseError(
                "QUERY_IS_TOO_LARGE",
                f"the request body decompresses to more than {limit} bytes, this endpoint's limit",
            )
        if not decoder.eof:
            raise ClickHouseError("CANNOT_DECOMPRESS", f"the {encoding} request body is truncated")
        rest = decoder.unused_data
    return bytes(output)


def _decoder(encoding: str) -> Any:
    if encoding == "gzip":
        return zlib.decompressobj(31)
    if encoding == "deflate":
        return zlib.decompressobj(15)
    if encoding == "zstd":
        return _zstd.ZstdDecompressor()
    return _lz4_frame.LZ4FrameDecompressor()


# ClickHouse's native compressed blocks, what clickhouse-java (Metabase, DBeaver) asks for by default
# with compress=1: [CityHash128 of the rest][method][UInt32 size with this 9-byte header][UInt32 raw
# size][payload], one block per max_compress_block_size bytes.
NATIVE_METHODS: Mapping[str, int] = {"none": 0x02, "lz4": 0x82, "zstd": 0x90}
_NATIVE_BLOCK_BYTES = 1 << 20
_NATIVE_HEADER = struct.Struct("<BII")
_UINT64_MASK = (1 << 64) - 1


def native_compression_available() -> bool:
    """Whether compress=1/decompress=1 can be served: it needs clickhouse-cityhash and lz4."""
    return _cityhash is not None and _lz4_block is not None


def _native_checksum(block: bytes | memoryview) -> bytes:
    digest = int(_cityhash.CityHash128(bytes(block)))
    # Verified against the checksums in chDB's own MergeTree .bin files: high half first.
    return struct.pack("<QQ", digest >> 64, digest & _UINT64_MASK)


def native_compress(data: bytes, method: str, zstd_level: int = 1) -> bytes:
    """``data`` as ClickHouse native compressed blocks (``compress=1``)."""
    output = bytearray()
    for start in range(0, len(data), _NATIVE_BLOCK_BYTES):
        raw = data[start : start + _NATIVE_BLOCK_BYTES]
        if method == "lz4":
            payload = bytes(_lz4_block.compress(raw, store_size=False))
        elif method == "zstd" and _zstd is not None:
            payload = bytes(_zstd.compress(raw, zstd_level))
        elif method == "none":
            payload = raw
        else:
            raise ClickHouseError(
                "UNKNOWN_COMPRESSION_METHOD", f"network_compression_method {method!r} is not supported"
            )
        block = (
            _NATIVE_HEADER.pack(NATIVE_METHODS[method], _NATIVE_HEADER.size + len(payload), len(raw))
            + payload
        )
        output += _native_checksum(block) + block
    return bytes(output)


def native_decompress(data: bytes, limit: int, *, verify: bool = True) -> bytes:
    """Decode ClickHouse native compressed blocks (``decompress=1``), refusing output over ``limit`` bytes."""
    output = bytearray()
    view = memoryview(data)
    position = 0
    while position < len(view):
        if len(view) - position < 16 + _NATIVE_HEADER.size:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS", "the request body ends inside a compressed block header"
            )
        checksum = view[position : position + 16]
        method, size, raw_size = _NATIVE_HEADER.unpack_from(view, position + 16)
        block = view[position + 16 : position + 16 + size]
        if size < _NATIVE_HEADER.size or len(block) < size:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS", f"a compressed block claims {size} bytes; the body has fewer"
            )
        if len(output) + raw_size > limit:
            raise ClickHouseError(
                "QUERY_IS_TOO_LARGE",
                f"the request body decompresses to more than {limit} bytes, this endpoint's limit",
            )
        if verify and _native_checksum(block) != checksum:
            raise ClickHouseError(
                "CHECKSUM_DOESNT_MATCH", "a compressed block's checksum does not match its data"
            )
        payload = bytes(block[_NATIVE_HEADER.size :])
        try:
            if method == NATIVE_METHODS["lz4"]:
                raw = _lz4_block.decompress(payload, uncompressed_size=raw_size)
            elif method == NATIVE_METHODS["zstd"] and _zstd is not None:
                raw = _zstd.decompress(payload)
            elif method == NATIVE_METHODS["none"]:
                raw = payload
            else:
                raise ClickHouseError(
                    "UNKNOWN_COMPRESSION_METHOD", f"compressed block method 0x{method:02x} is not supported"
                )
        except ClickHouseError:
            raise
        except Exception as error:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS", f"cannot decompress a compressed block: {error}"
            ) from None
        if len(raw) != raw_size:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS", f"a compressed block holds {len(raw)} bytes, not {raw_size}"
            )
        output += raw
        position += 16 + size
    return bytes(output)


# --- formats -------------------------------------------------------------------------------------

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


# --- running one request -------------------------------------------------------------------------


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


class _Engine:
    """Runs requests on fresh chDB handles in a bounded thread pool (chDB releases the GIL)."""

    def __init__(self, path: str, default_database: str, max_concurrent_queries: int) -> None:
        self.path = path
        self.default_database = default_database
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


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    readonly: bool
    max_body_bytes: int


_ENGINE_KEY = web.AppKey("query_endpoint_engine", _Engine)
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
    max_concurrent_queries: int = 4,
) -> web.Application:
    """The aiohttp application serving ClickHouse's HTTP interface over the chDB engine at ``chdb_path``.

    ``database`` is the default for requests that name none. Serve it with ``web.AppRunner(app,
    **RUNNER_OPTIONS)`` (see ``serve``), which the endpoint's body decoding relies on.
    """
    limit = max_body_bytes or (READONLY_MAX_BODY_BYTES if readonly else WRITABLE_MAX_BODY_BYTES)
    # chDB compares engine paths literally: spell the directory the way clickhouse-connect does.
    path = chdb_path if chdb_path.startswith(("file:", ":memory:")) else os.path.realpath(chdb_path)
    engine = _Engine(path, database, max_concurrent_queries)
    app = web.Application(client_max_size=limit)
    app[_ENGINE_KEY] = engine
    app[_CONFIG_KEY] = _Config(readonly=readonly, max_body_bytes=limit)

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


def _error_response(error: ClickHouseError, version: str, headers: Mapping[str, str]) -> web.Response:
    return web.Response(
        status=error.status,
        body=error.body(version),
        headers={**headers, "X-ClickHouse-Exception-Code": str(error.code), "Content-Type": _TEXT_PLAIN},
    )


async def _parse_request(request: web.Request, engine: _Engine, config: _Config) -> QueryRequest:
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

    # Lexing is quick for a query; a long inline INSERT (writable mode) is lexed off the event loop.
    shape = inspect_sql(sql) if len(sql) < _INLINE_LEX_BYTES else await asyncio.to_thread(inspect_sql, sql)
    _check_statement(shape, config.readonly, engine.info.table_functions)

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
    if method not in NATIVE_METHODS or (method == "zstd" and _zstd is None):
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


# --- service -------------------------------------------------------------------------------------


class QueryEndpoint(Service):
    """Serves ClickHouse's HTTP interface over the worker's embedded chDB store on host:port.

    Pass it to ``faust.Worker(app, *services)``: it binds when the worker starts and closes the
    listener, waits for running queries and releases its chDB handle when the worker stops.
    """

    def __init__(
        self,
        chdb_path: str,
        database: str,
        host: str,
        port: int,
        *,
        readonly: bool = True,
        max_body_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chdb_path = chdb_path
        self.database = database
        self.host = host
        self.port = port
        self.readonly = readonly
        self.max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"http://{self.host}:{self.port}"

    async def on_start(self) -> None:
        app = create_app(
            self.chdb_path, self.database, readonly=self.readonly, max_body_bytes=self.max_body_bytes
        )
        self._runner = await serve(app, self.host, self.port)
        mode = "read-only" if self.readonly else "writable"
        log.info("ClickHouse HTTP query endpoint (%s) on %s, database %s", mode, self.url, self.database)

    async def on_stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
