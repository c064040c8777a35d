"""A request body → the raw bytes of each event or record it carries, or a refusal of the whole request.

Two formats (SPEC §8): a JSON array of objects, or NDJSON (``application/x-ndjson``: one JSON
object per line). Items are handed to the decoder as the exact bytes the caller sent — never
parsed and re-serialised — so amounts keep every digit and a rejected item gets the same
reason and message the DLQ would give the same bytes on a topic.

NDJSON is judged line by line: a line that is not JSON is one rejected item, the rest go on.
A JSON array must be valid JSON as a whole (its items cannot be told apart otherwise); an
invalid array refuses the request with 400.
"""

import re
from dataclasses import dataclass

import orjson

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
_WHITESPACE = b" \t\r\n"
# A JSON string (with its escapes), or one structural character.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


@dataclass
class BatchRefused(Exception):
    """The request as a whole is refused: nothing of it is published."""

    status: int
    error: str
    message: str


def split_body(body: bytes, content_type: str, max_items: int) -> list[bytes]:
    """The items of a request body, in order; raises :class:`BatchRefused` (400 or 413)."""
    items = split_ndjson(body) if content_type.lower() in NDJSON_TYPES else split_json_array(body)
    if len(items) > max_items:
        raise BatchRefused(
            413,
            "too_many_events",
            f"the request has {len(items)} events or records, above the limit of {max_items} per request "
            "(SALESPULSE_INGEST_MAX_EVENTS); split it into smaller requests. Nothing was published.",
        )
    return items


def split_ndjson(body: bytes) -> list[bytes]:
    """One item per line (``\\n``, optionally ``\\r\\n``); the final line break is optional.

    An empty line inside the body is an item too (the decoder rejects it as ``empty_message``),
    so that line numbers and indexes always agree and nothing is silently skipped.
    """
    if not body.strip(_WHITESPACE):
        return []
    lines = body.split(b"\n")
    if lines[-1] == b"" or not lines[-1].strip(_WHITESPACE):
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def split_json_array(body: bytes) -> list[bytes]:
    """The items of a JSON array as the byte slices the caller sent (raises 400 if it is not one)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BatchRefused(
            400,
            "invalid_json",
            f"the body is not valid JSON ({error}); send a JSON array of events, or NDJSON with "
            "Content-Type: application/x-ndjson to have each line judged on its own. Nothing was published.",
        ) from None
    if not isinstance(parsed, list):
        raise BatchRefused(
            400,
            "not_an_array",
            "the body must be a JSON array of events (or NDJSON with Content-Type: application/x-ndjson). "
            "Nothing was published.",
        )
    return _top_level_items(body)


def _top_level_items(body: bytes) -> list[bytes]:
    """Slices between the top-level commas of a JSON array known to be valid.

    The regular expression skips each string in one step (in C), so only strings and the
    structural characters are visited, not every byte.
    """
    items: list[bytes] = []
    depth = 0
    start = 0
    for token in _TOKENS.finditer(body):
        char = body[token.start()]
        if char == 0x22:  # a string
            continue
        if char in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth == 1:
                start = token.end()
        elif char in (0x5D, 0x7D):  # ] }
            if depth == 1:
                item = body[start : token.start()].strip(_WHITESPACE)
                if item:
                    items.append(item)
            depth -= 1
        elif depth == 1:  # a comma between items
            items.append(body[start : token.start()].strip(_WHITESPACE))
            start = token.end()
    return items


def with_source(raw: bytes, source: str) -> bytes:
    """The event object ``raw`` with ``"source": source`` added as its last member.

    Added at the end, so it wins over a ``"source": null`` earlier in the object (JSON parsers
    keep the last of repeated names); every other byte stays as sent.
    """
    body = raw.rstrip(_WHITESPACE)
    return body[:-1] + b',"source":' + orjson.dumps(source) + b"}"
