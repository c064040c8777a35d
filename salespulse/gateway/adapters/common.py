"""What every adapter returns, and the readings of CRM values they share."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from salespulse.assembly.changes import Change
from salespulse.gateway.batches import BatchRefused


class ItemRejected(ValueError):
    """One vendor item cannot be translated: rejected with ``reason`` (and sent to the DLQ)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Rejected:
    index: int
    raw: bytes  # the vendor item's bytes, as sent
    reason: str
    message: str
    object_id: str | None = None


@dataclass(frozen=True)
class Ignored:
    """An item that is valid but has no contract meaning (another object, a deletion, ...)."""

    index: int
    reason: str


@dataclass
class Translation:
    changes: list[Change] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


def parse_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, or a 400 refusal of the request."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BatchRefused(
            400, "invalid_json", f"the body is not valid JSON ({error}); nothing was published"
        ) from None
    if not isinstance(parsed, dict):
        raise BatchRefused(400, "not_an_object", "the body must be a JSON object; nothing was published")
    return parsed


def epoch_ms(value: Any, what: str) -> int:
    """Milliseconds since the epoch from epoch ms (number or digits) or an ISO 8601 timestamp."""
    if isinstance(value, bool):
        raise ItemRejected("invalid_value", f"{what} must be a timestamp, not {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)  # the vendors write UTC without an offset
            return int(moment.timestamp() * 1000)
    raise ItemRejected(
        "invalid_value", f"{what} must be epoch milliseconds or an ISO 8601 timestamp, not {value!r}"
    )


def calendar_date(value: Any, what: str) -> str | None:
    """A date as YYYY-MM-DD, from a date, an ISO timestamp or epoch ms (HubSpot's date properties)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    return datetime.fromtimestamp(epoch_ms(value, what) / 1000, UTC).date().isoformat()


def amount(value: Any, what: str) -> str | None:
    """A non-negative decimal as text (every digit kept); None when the CRM has none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ItemRejected("invalid_value", f"{what} must be a number, not {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ItemRejected("invalid_value", f"{what} must be a number, not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ItemRejected("invalid_value", f"{what} must be a number ≥ 0, not {value!r}")
    return format(number, "f")


def whole(value: Any, what: str) -> int:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ItemRejected("invalid_value", f"{what} must be a whole number, not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ItemRejected("invalid_value", f"{what} must be a number ≥ 0, not {value!r}")
    return int(number)


def text_id(value: Any, what: str) -> str:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise ItemRejected("missing_field", f"{what} is missing")
    if isinstance(value, int | str):
        return str(value).strip()
    raise ItemRejected("invalid_value", f"{what} must be an id (string or integer), not {value!r}")
