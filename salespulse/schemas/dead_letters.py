"""The dead-letter topic: what a rejected message looks like there.

Each DLQ record is a JSON object a person can read — the reason, where the message came
from, and the original bytes (base64, plus the text when it is UTF-8) — keyed by
``topic|partition|offset`` so a record written twice (after a worker crash) is recognised.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from salespulse.schemas.decoding import Rejection

# DLQ records must stay below the broker's message size limit (1 MB by default): larger
# payloads are referenced by position and digest instead of copied.
MAX_COPIED_PAYLOAD = 256 * 1024


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A rejected message and where it was read."""

    record_type: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    rejection: Rejection

    @property
    def dlq_key(self) -> bytes:
        return f"{self.topic}|{self.partition}|{self.offset}".encode()


def dlq_value(message: RejectedMessage, app_id: str, now: datetime | None = None) -> bytes:
    """The JSON body of the DLQ record for ``message``."""
    value = message.value
    body: dict[str, Any] = {
        "reason": message.rejection.reason,
        "message": message.rejection.message,
        "type": message.record_type,
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "source_key": _text_or_none(message.key),
        "source_timestamp_ms": message.timestamp_ms,
        "rejected_at": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "rejected_by": app_id,
        "payload_bytes": 0 if value is None else len(value),
        "payload_sha256": None if value is None else hashlib.sha256(value).hexdigest(),
    }
    if value is not None and len(value) <= MAX_COPIED_PAYLOAD:
        body["payload_base64"] = base64.b64encode(value).decode("ascii")
        body["payload_text"] = _text_or_none(value)
    else:
        body["payload_base64"] = None
        body["payload_text"] = None
        body["payload_omitted"] = value is not None
    return orjson.dumps(body)


def _text_or_none(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
