"""A real HTTP client for the gateway (urllib), and posting a list of events in batches."""

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

TOKEN_NAME = "test-crm"
TOKEN = "test-crm-token-0123456789"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def post(
    url: str,
    body: bytes,
    token: str | None = TOKEN,
    content_type: str = "application/json",
    timeout: float = 60.0,
) -> Answer:
    """POST ``body``; the answer whatever its status (JSON decoded)."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, orjson.loads(response.read()), dict(response.headers))
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Answer(error.code, orjson.loads(raw) if raw else None, dict(error.headers))


def ndjson(items: Iterable[bytes | dict[str, Any]]) -> bytes:
    return b"".join((item if isinstance(item, bytes) else orjson.dumps(item)) + b"\n" for item in items)


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
