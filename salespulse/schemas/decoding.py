"""From raw Kafka bytes to a validated event or record, or to a rejection with a reason.

Every rejection names a ``reason`` (a short code, used as a metrics label and for grouping
in the DLQ) and a ``message`` a CRM integrator can act on.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import from_json

from salespulse.schemas.events import ACTIVITY_MODELS, ActivityEvent, Deal
from salespulse.schemas.reference import REFERENCE_MODELS, ReferenceRecord

MAX_ERRORS_SHOWN = 3
MAX_INPUT_SHOWN = 60


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A null message on a compacted topic: deletes the record with this key."""

    record_type: str
    record_key: str


class DecodingRules(Protocol):
    """What decoding needs to know beyond the models: ``salespulse.config.Settings`` provides it."""

    @property
    def max_event_bytes(self) -> int: ...

    @property
    def reporting_currency(self) -> str: ...

    def rate_for(self, currency: str) -> Decimal | None: ...


class Decoder:
    """Validates messages of every input topic against the models of ``salespulse.schemas``."""

    def __init__(self, settings: DecodingRules) -> None:
        self._settings = settings
        self._max_bytes = settings.max_event_bytes

    def decode_event(self, event_type: str, value: bytes | None) -> ActivityEvent | Rejection:
        """Decode one activity message of ``event_type``."""
        early = self._check_size(value)
        if early is not None:
            return early
        assert value is not None
        try:
            event = ACTIVITY_MODELS[event_type].model_validate_json(value)
        except ValidationError as error:
            return _rejection_from(error, value)
        not_json = _non_json_literal(value)
        if not_json is not None:
            return not_json
        if isinstance(event, Deal):
            currency = event.currency or self._settings.reporting_currency
            if self._settings.rate_for(currency) is None:
                return Rejection(
                    "unknown_currency",
                    f"currency '{currency}' has no configured rate to {self._settings.reporting_currency}; "
                    f"add it to SALESPULSE_CURRENCY_RATES (e.g. {currency}=1.0) and replay the DLQ",
                )
        return event

    def decode_typed_event(self, value: bytes | None) -> ActivityEvent | Rejection:
        """Decode one activity event whose ``event_type`` field names its type (no topic says it).

        The ingestion gateway receives every type on one endpoint, so ``event_type`` is required
        here; everything else is judged exactly as :meth:`decode_event` judges a message on the
        type's topic, with the same reasons and messages.
        """
        early = self._check_size(value)
        if early is not None:
            return early
        assert value is not None
        try:
            parsed = from_json(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            # Not JSON, not UTF-8 or not an object: any model gives the DLQ's reason and message.
            return self.decode_event("visit", value)
        event_type = parsed.get("event_type")
        if event_type is None:
            return Rejection(
                "missing_field",
                "missing required field 'event_type' (one of " + ", ".join(ACTIVITY_MODELS) + "): "
                "it names the event's type and so its topic",
            )
        if not isinstance(event_type, str) or event_type not in ACTIVITY_MODELS:
            shown = repr(event_type)
            if len(shown) > MAX_INPUT_SHOWN:
                shown = shown[: MAX_INPUT_SHOWN - 3] + "..."
            return Rejection(
                "invalid_value",
                "field 'event_type': Input should be "
                + ", ".join(f"'{name}'" for name in ACTIVITY_MODELS)
                + f" (got {shown})",
            )
        return self.decode_event(event_type, value)

    def decode_reference(
        self, record_type: str, key: bytes | None, value: bytes | None
    ) -> ReferenceRecord | Tombstone | Rejection:
        """Decode one message of a compacted reference topic (a null value is a tombstone)."""
        if value is None:
            return self._tombstone(record_type, key)
        early = self._check_size(value)
        if early is not None:
            return early
        try:
            record = REFERENCE_MODELS[record_type].model_validate_json(value)
        except ValidationError as error:
            return _rejection_from(error, value)
        return _non_json_literal(value) or record

    def _check_size(self, value: bytes | None) -> Rejection | None:
        if value is None or len(value) == 0:
            return Rejection("empty_message", "the message has no value; every event is one JSON object")
        if len(value) > self._max_bytes:
            return Rejection(
                "payload_too_large",
                f"the message is {len(value)} bytes, above the limit of {self._max_bytes} "
                "(SALESPULSE_MAX_EVENT_BYTES)",
            )
        return None

    def _tombstone(self, record_type: str, key: bytes | None) -> Tombstone | Rejection:
        model = REFERENCE_MODELS[record_type]
        expected = "|".join(model.KEY_FIELDS)
        try:
            text = (key or b"").decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if not text or text.count("|") != len(model.KEY_FIELDS) - 1:
            return Rejection(
                "invalid_tombstone",
                f"a null message on the {record_type} topic deletes the record named by its key, "
                f"but the key {key!r} is not '{expected}'",
            )
        return Tombstone(record_type, text)


def _non_json_literal(raw: bytes) -> Rejection | None:
    """NaN and Infinity, which the models' parser reads but JSON (RFC 8259) does not have.

    In a known field the field refuses them; in an unknown field they would pass here and fail
    every strict JSON parser downstream, so the message is refused. The search is cheap and the
    second, strict parse only runs for the rare message that contains one of the two words.
    """
    if b"NaN" not in raw and b"Infinity" not in raw:
        return None
    try:
        from_json(raw, allow_inf_nan=False)
    except ValueError as error:
        return Rejection(
            "invalid_json",
            f"the message is not valid JSON: {error}; NaN and Infinity are not JSON values (send null, or leave the field out)",
        )
    return None


def _rejection_from(error: ValidationError, raw: bytes) -> Rejection:
    issues = error.errors(include_url=False)
    first = issues[0]
    kind = first["type"]
    if kind == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Rejection("not_utf8", f"the message is not UTF-8 text: {bad.reason} at byte {bad.start}")
        if raw.startswith(b"\xef\xbb\xbf"):
            return Rejection(
                "invalid_json",
                "the message starts with a byte order mark (bytes EF BB BF), which JSON sent over a network "
                "must not have: send the UTF-8 text without it",
            )
        return Rejection(
            "invalid_json", f"the message is not valid JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
        )
    if kind in ("model_type", "model_attributes_type") and not first["loc"]:
        return Rejection(
            "not_an_object", f"the message must be a JSON object, got {_json_kind(first.get('input'))}"
        )
    reason = {"missing": "missing_field", "event_type_mismatch": "wrong_event_type"}.get(
        kind, "invalid_value"
    )
    shown = "; ".join(_describe_issue(issue) for issue in issues[:MAX_ERRORS_SHOWN])
    more = len(issues) - MAX_ERRORS_SHOWN
    if more > 0:
        shown += f"; and {more} more"
    return Rejection(reason, shown)


def _describe_issue(issue: Any) -> str:
    field = ".".join(str(part) for part in issue["loc"])
    message = issue["msg"].removeprefix("Value error, ")
    if issue["type"] == "missing":
        return f"missing required field '{field}'"
    if not field:
        return message
    value = issue.get("input")
    shown = repr(value)
    if len(shown) > MAX_INPUT_SHOWN:
        shown = shown[: MAX_INPUT_SHOWN - 3] + "..."
    return f"field '{field}': {message} (got {shown})"


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__
