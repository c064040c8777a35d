"""Compression of request and response bodies: HTTP content encodings (gzip, deflate, lz4, zstd)
and ClickHouse's native compressed blocks (``compress=1``/``decompress=1``), as ClickHouse does them."""

import importlib
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from salespulse.embedded.query_server.errors import ClickHouseError


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


def zstd_available() -> bool:
    """Whether zstd (HTTP encoding and native block method) can be served."""
    return _zstd is not None


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
