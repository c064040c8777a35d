"""Property-based tests: hostile and malformed Kafka messages against the decoder and the row builder.

The decoder (``salespulse.schemas.decoding``) must turn *any* byte string on *any* input topic
into either a validated event/record or a ``Rejection`` with a known reason and a message a person
can act on — never an exception (contract §3: bad input goes to the DLQ and never stops the pipeline).
Every accepted event must then become a ClickHouse row (``salespulse.sinks.clickhouse.rows``) without raising,
with values that fit the columns of ``salespulse/sinks/sql/0001_events_and_reference.sql``.

Expectations below were checked against the code and the contract (docs/contract.md), notably:
- ``max_event_bytes`` (default 65 536) is checked before parsing: larger → ``payload_too_large``;
- the JSON parser (pydantic-core/jiter) has a nesting limit (~200 levels): deeper JSON, even in an
  unknown field, is ``invalid_json`` ("recursion limit exceeded"); shallow unknown nesting is ignored;
- bytes that fail to parse and are not UTF-8 are ``not_utf8``; otherwise ``invalid_json``;
- NaN/±Infinity literals are parsed, then refused by the field (``invalid_value``).

Each property counts the inputs it generated; the totals are printed when the module finishes
(visible in normal runs and with ``-s``).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

from salespulse.config import Settings
from salespulse.schemas.decoding import Decoder, Rejection, Tombstone
from salespulse.schemas.events import ACTIVITY_MODELS, ActivityEvent, Deal
from salespulse.schemas.reference import REFERENCE_MODELS, ReferenceRecord
from salespulse.sinks.clickhouse.rows import (
    EVENT_COLUMNS,
    REFERENCE_COLUMNS,
    BatchStamp,
    RowBuilder,
    SourcePosition,
)

# --------------------------------------------------------------------------------------------
# Fixtures, settings, counters
# --------------------------------------------------------------------------------------------

SETTINGS = Settings(currency_rates="EUR=1.08,CNY=0.14,JPY=0.0067")  # type: ignore[arg-type]
DECODER = Decoder(SETTINGS)
BUILDER = RowBuilder(SETTINGS)
MAX_BYTES = SETTINGS.max_event_bytes
POSITION = SourcePosition("crm.hostile", 7, 123_456)
STAMP = BatchStamp.at(datetime(2026, 3, 2, 1, 2, 3, 456_789, tzinfo=UTC))

EVENT_TYPES = ("visit", "call", "deal", "feedback")
RECORD_TYPES = ("org", "targets", "customers")
RATED = ("USD", "EUR", "CNY", "JPY")  # USD is the reporting currency (rate 1)

KNOWN_REASONS = frozenset(
    {
        "invalid_json",
        "not_utf8",
        "not_an_object",
        "missing_field",
        "invalid_value",
        "wrong_event_type",
        "unknown_currency",
        "payload_too_large",
        "empty_message",
        "invalid_tombstone",
    }
)

GENERATED: Counter[str] = Counter()


def _count(name: str) -> None:
    GENERATED[name] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_generated_inputs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print how many inputs each property generated, once the module's tests are done.

    Printed through the capture manager's ``global_and_fixture_disabled()`` — what
    ``capsys.disabled()`` uses — because ``capsys`` is function-scoped and this fixture is not; so
    the totals show in normal runs as well as with ``-s``.
    """
    yield
    lines = ["", "hostile-input properties: generated inputs per property"]
    lines += [f"  {name:<52} {GENERATED[name]:>7}" for name in sorted(GENERATED)]
    lines.append(f"  {'total':<52} {sum(GENERATED.values()):>7}")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n".join(lines))
    else:  # pragma: no cover - capture plugin disabled (-p no:capture)
        print("\n".join(lines))


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def dumps(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (stdlib: big integers allowed; NaN refused so none sneaks in by accident)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def assert_well_formed_rejection(result: object) -> None:
    assert isinstance(result, Rejection), result
    assert result.reason in KNOWN_REASONS, result
    assert isinstance(result.message, str) and result.message.strip(), result


def rejection(event_type: str, raw: bytes | None) -> Rejection:
    result = DECODER.decode_event(event_type, raw)
    assert_well_formed_rejection(result)
    assert isinstance(result, Rejection)
    return result


# ClickHouse column ranges (0001_events_and_reference.sql) of the integer columns an event fills.
UINT_COLUMNS = {
    "schema_version": 2**16,
    "visit_duration_minutes": 2**32,
    "call_duration_seconds": 2**32,
    "score": 2**8,
    "src_partition": 2**32,
    "src_offset": 2**64,
    "dedup_version": 2**64,
}
DECIMAL_COLUMNS = {"amount": (38, 4), "original_amount": (38, 10)}
DATETIME64_MAX_US = int(datetime(2299, 12, 31, tzinfo=UTC).timestamp()) * 1_000_000  # DateTime64 range


def check_event_row(event: ActivityEvent, fits_columns: bool = True) -> dict[str, Any]:
    """Build the row of an accepted event (never raises) and check it fits the events table."""
    values = BUILDER.event_row(event, POSITION, STAMP)
    assert len(values) == len(EVENT_COLUMNS)
    row = dict(zip(EVENT_COLUMNS, values, strict=True))
    assert row["event_id"] == event.event_id
    assert row["event_type"] == event.EVENT_TYPE
    if fits_columns:
        assert_fits_columns(row)
    return row


def assert_fits_columns(row: dict[str, Any]) -> None:
    assert 0 <= row["occurred_at"] < DATETIME64_MAX_US
    for column, bound in UINT_COLUMNS.items():
        assert isinstance(row[column], int) and 0 <= row[column] < bound, (column, row[column])
    for column, (precision, scale) in DECIMAL_COLUMNS.items():
        value = row[column]
        if value is not None:
            assert isinstance(value, Decimal) and value.is_finite()
            assert value == value.quantize(Decimal(1).scaleb(-scale), context=Context(prec=80))
            assert abs(value) < Decimal(10) ** (precision - scale), (column, value)
    for column in ("event_id", "rep_id", "customer_id", "deal_id", "source", "lost_reason", "comment"):
        row[column].encode("utf-8")  # ClickHouse String: must be encodable (no lone surrogates)


# --------------------------------------------------------------------------------------------
# Strategies: valid events per contract §3
# --------------------------------------------------------------------------------------------

ID_CHARS = string.ascii_letters + string.digits + "-_.:@/#|" + "张三李四王五销售客户éüñçøß" + "😀🚀"
ID_INNER = ID_CHARS + " "


@st.composite
def identifiers(draw: st.DrawFn, max_size: int = 128) -> str:
    """Non-empty, ≤128 chars, no surrounding blanks (may contain inner spaces)."""
    size = draw(st.one_of(st.integers(1, 24), st.integers(1, max_size)))
    if size == 1:
        return draw(st.sampled_from(ID_CHARS))
    inner = draw(
        st.text(alphabet=ID_INNER, max_size=size - 2)
        if size <= 26
        else long_texts(size - 2, size - 2, ID_INNER)
    )
    return draw(st.sampled_from(ID_CHARS)) + inner + draw(st.sampled_from(ID_CHARS))


@st.composite
def long_texts(draw: st.DrawFn, min_size: int, max_size: int, alphabet: str | None = None) -> str:
    """A long string of exactly n characters (a short random seed repeated: cheap to generate)."""
    size = draw(st.integers(min_size, max_size))
    chars = (
        st.text(min_size=1, max_size=16) if alphabet is None else st.text(alphabet, min_size=1, max_size=16)
    )
    seed = draw(chars)
    return (seed * (size // len(seed) + 1))[:size]


event_ids = st.one_of(
    st.text(min_size=1, max_size=32),  # any Unicode (no surrogates): event_id has no pattern
    long_texts(120, 128),
    st.uuids().map(str),
)
short_texts = st.one_of(st.text(max_size=40), long_texts(250, 256))

# Timestamps are accepted by the year as written, 1971–2099 (whatever the offset).
EARLIEST_LOCAL = datetime(1971, 1, 1)
LATEST_LOCAL = datetime(2099, 12, 31, 23, 59, 59)


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, datetime]:
    """An RFC 3339 timestamp with an offset, and the instant it means (computed independently).

    Fractions may have more digits than the microseconds kept: the instant is cut to the microsecond.
    """
    digits = draw(st.one_of(st.integers(0, 6), st.integers(7, 12)))
    fraction = draw(st.integers(0, 10**digits - 1)) if digits else 0
    micro = int(str(fraction).zfill(digits)[:6].ljust(6, "0")) if digits else 0
    minutes = draw(
        st.one_of(st.sampled_from([0, 480, -300, 330, 545, -210, 840, -720]), st.integers(-1439, 1439))
    )
    zone = timezone(timedelta(minutes=minutes))
    local = draw(st.datetimes(min_value=EARLIEST_LOCAL, max_value=LATEST_LOCAL)).replace(
        microsecond=micro, tzinfo=zone
    )
    utc = local.astimezone(UTC)
    if minutes == 0:
        offset = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "+" if minutes > 0 else "-"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    separator = draw(st.sampled_from("TTTt"))
    text = f"{local:%Y-%m-%d}{separator}{local:%H:%M:%S}"
    if digits:
        text += "." + str(fraction).zfill(digits)
    return text + offset, utc


RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> datetime:
    """Our own parser (not pydantic's): the instant an RFC 3339 timestamp names."""
    match = RFC3339.fullmatch(text)
    assert match, text
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))  # cut, never rounded
    offset = timedelta(0)
    if not match.group(8):
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        if match.group(9) == "-":
            offset = -offset
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset))


calendar_dates = st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31))

AMOUNT_BOUND = Decimal(10) ** 18


@st.composite
def amounts(draw: st.DrawFn) -> tuple[Any, Decimal]:
    """An amount as sent (decimal string or JSON number) and the value it must decode to."""
    kind = draw(st.sampled_from(["string", "string", "int", "float"]))
    value: Any
    if kind == "int":
        value = draw(st.one_of(st.integers(0, 10**7), st.integers(0, 10**18 - 1)))
        return value, Decimal(value)
    if kind == "float":
        value = draw(st.floats(min_value=0, max_value=1e17, allow_nan=False, allow_infinity=False))
        return value, Decimal(repr(value))  # a JSON number is at most what a double holds
    places = draw(st.integers(0, 10))  # the row keeps 10 places (ORIGINAL_QUANTUM)
    value = draw(
        st.one_of(
            st.decimals(min_value=0, max_value=10**7, places=places),
            st.decimals(min_value=0, max_value=AMOUNT_BOUND - 1, places=places),
        )
    )
    text = f"{value:f}"  # plain digits: no exponent (str() of a Decimal may write one)
    return text, Decimal(text)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_EXTRA_KEYS = st.one_of(
    st.text(max_size=12), st.sampled_from(["stage", "amount", "score", "outcome", "crm_flag"])
)
# Unknown fields a CRM may add (other types' fields included): all must be ignored. Built once per
# event type, because building strategies on every draw is what makes hypothesis slow.


def _not_one_of(names: Any) -> Any:
    own = frozenset(names)
    return lambda key: key not in own


EXTRA_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    event_type: st.dictionaries(
        _EXTRA_KEYS.filter(_not_one_of(model.model_fields)),
        _JSON_VALUES,
        max_size=4,
    )
    for event_type, model in ACTIVITY_MODELS.items()
}


@st.composite
def valid_events(
    draw: st.DrawFn, event_type: str | None = None
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(event_type, body to send, expected validated fields)."""
    event_type = event_type or draw(st.sampled_from(EVENT_TYPES))
    occurred_text, occurred = draw(timestamps())
    body: dict[str, Any] = {
        "event_id": draw(event_ids),
        "occurred_at": occurred_text,
        "rep_id": draw(identifiers()),
        "customer_id": draw(identifiers()),
    }
    expected: dict[str, Any] = {
        **body,
        "occurred_at": occurred,
        "deal_id": None,
        "source": None,
        "schema_version": 1,
    }
    if event_type != "deal" and draw(st.booleans()):
        body["deal_id"] = expected["deal_id"] = draw(st.one_of(st.none(), identifiers()))
    if draw(st.booleans()):
        body["source"] = expected["source"] = draw(st.one_of(st.none(), short_texts))
    if draw(st.booleans()):
        body["schema_version"] = expected["schema_version"] = draw(st.integers(1, 2**16 - 1))
    if draw(st.booleans()):
        body["event_type"] = event_type
    if event_type == "visit":
        specific = {
            "duration_minutes": draw(st.integers(0, 100_000)),
            "outcome": draw(st.sampled_from(["completed", "cancelled", "no_show"])),
        }
        body |= specific
        expected |= specific
    elif event_type == "call":
        specific = {
            "direction": draw(st.sampled_from(["outbound", "inbound"])),
            "duration_seconds": draw(st.integers(0, 10_000_000)),
            "outcome": draw(st.sampled_from(["connected", "no_answer", "busy", "voicemail"])),
        }
        body |= specific
        expected |= specific
    elif event_type == "deal":
        amount_sent, amount = draw(amounts())
        body |= {
            "deal_id": draw(identifiers()),
            "stage": draw(
                st.sampled_from(["prospecting", "qualified", "proposal", "negotiation", "won", "lost"])
            ),
            "amount": amount_sent,
        }
        expected |= {
            "deal_id": body["deal_id"],
            "stage": body["stage"],
            "amount": amount,
            "currency": None,
            "expected_close_date": None,
            "lost_reason": None,
        }
        if draw(st.booleans()):
            body["currency"] = expected["currency"] = draw(st.one_of(st.none(), st.sampled_from(RATED)))
        if draw(st.booleans()):
            close = draw(st.one_of(st.none(), calendar_dates))
            body["expected_close_date"] = None if close is None else close.isoformat()
            expected["expected_close_date"] = close
        if draw(st.booleans()):
            body["lost_reason"] = expected["lost_reason"] = draw(st.one_of(st.none(), short_texts))
    else:
        score_type = draw(st.sampled_from(["csat", "nps"]))
        score = draw(st.integers(1, 5) if score_type == "csat" else st.integers(0, 10))
        body |= {"score_type": score_type, "score": score}
        expected |= {"score_type": score_type, "score": score, "category": None, "comment": None}
        if draw(st.booleans()):
            body["category"] = expected["category"] = draw(
                st.one_of(st.none(), st.sampled_from(["praise", "complaint", "suggestion"]))
            )
        if draw(st.booleans()):
            comment = draw(st.one_of(st.none(), st.text(max_size=300), long_texts(3990, 4000)))
            body["comment"] = expected["comment"] = comment
    body |= draw(EXTRA_FIELDS[event_type])
    return event_type, body, expected


def assert_accepted_as(event_type: str, body: dict[str, Any], expected: dict[str, Any]) -> ActivityEvent:
    raw = dumps(body)
    note(f"raw={raw[:500]!r}")
    event = DECODER.decode_event(event_type, raw)
    assert not isinstance(event, Rejection), event
    assert isinstance(event, ACTIVITY_MODELS[event_type])
    for field, value in expected.items():
        got = getattr(event, field)
        assert got == value, (field, got, value)
    # occurred_at: the same instant *and* the same offset as written, checked with our own parser.
    ours = parse_rfc3339(body["occurred_at"])
    assert event.occurred_at == ours
    assert event.occurred_at.utcoffset() == ours.utcoffset()
    return event


# --------------------------------------------------------------------------------------------
# 1. Random bytes on every topic: never raises, always a known reason with a message
# --------------------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A valid event's bytes with a few bytes flipped, inserted or deleted."""
    _, body, _ = draw(valid_events())
    data = bytearray(dumps(body))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[at]
    return bytes(data)


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
).map(lambda value: json.dumps(value).encode())  # NaN and Infinity literals included

hostile_bytes = st.one_of(
    st.binary(max_size=512),
    st.tuples(st.binary(max_size=8), st.integers(MAX_BYTES - 2, MAX_BYTES + 2)).map(
        lambda t: (t[0] * 9000)[: t[1]]
    ),
    st.integers(MAX_BYTES - 12, MAX_BYTES + 2).map(lambda n: b'{"x":"' + b"y" * (n - 8) + b'"}'),
    st.text(max_size=200).map(str.encode),
    json_documents,
    mutated_bytes(),
    st.sampled_from([b"", b"null", b"{}", b"[]", b'""', b"\xef\xbb\xbf{}", b"\x00" * 8, b"{" * 5000, b"NaN"]),
)


@fuzz(800)
@given(event_type=st.sampled_from(EVENT_TYPES), raw=st.one_of(st.none(), hostile_bytes))
def test_random_bytes_on_activity_topics_never_raise(event_type: str, raw: bytes | None) -> None:
    _count("random_bytes_activity")
    result = DECODER.decode_event(event_type, raw)
    if isinstance(result, Rejection):
        assert_well_formed_rejection(result)
        if raw is not None and len(raw) > MAX_BYTES:
            assert result.reason == "payload_too_large"
    else:
        assert isinstance(result, ACTIVITY_MODELS[event_type])
        assert raw is not None and 0 < len(raw) <= MAX_BYTES
        # Builds without raising and keeps the event_id. (Whether the values fit the ClickHouse
        # columns is checked by test_accepted_events_fit_the_clickhouse_columns, a known bug.)
        check_event_row(result, fits_columns=False)


@fuzz(400)
@given(
    record_type=st.sampled_from(RECORD_TYPES),
    key=st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40).map(str.encode)),
    raw=st.one_of(st.none(), hostile_bytes),
)
def test_random_bytes_on_reference_topics_never_raise(
    record_type: str, key: bytes | None, raw: bytes | None
) -> None:
    _count("random_bytes_reference")
    result = DECODER.decode_reference(record_type, key, raw)
    if isinstance(result, Rejection):
        assert_well_formed_rejection(result)
        assert (result.reason == "invalid_tombstone") == (raw is None)
    elif isinstance(result, Tombstone):
        assert raw is None and result.record_type == record_type
        assert result.record_key.count("|") == len(REFERENCE_MODELS[record_type].KEY_FIELDS) - 1
    else:
        assert isinstance(result, REFERENCE_MODELS[record_type])
    if not isinstance(result, Rejection):
        assert isinstance(result, ReferenceRecord | Tombstone)
        values = RowBuilder.reference_row(result, POSITION, STAMP.ingested_at)
        assert len(values) == len(REFERENCE_COLUMNS[record_type])


# --------------------------------------------------------------------------------------------
# 2. Valid events are accepted, with exactly the fields sent, and become rows
# --------------------------------------------------------------------------------------------


@fuzz(400)
@given(valid_events())
def test_valid_events_are_accepted_with_their_fields(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _count("valid_events_accepted")
    event_type, body, expected = case
    assert_accepted_as(event_type, body, expected)


@fuzz(300)
@given(valid_events())
def test_every_accepted_event_becomes_a_row(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _count("accepted_events_to_rows")
    event_type, body, expected = case
    event = assert_accepted_as(event_type, body, expected)
    row = check_event_row(event)
    assert row["occurred_at"] == (expected["occurred_at"] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    if isinstance(event, Deal):
        currency = event.currency or "USD"
        rate = SETTINGS.rate_for(currency)
        assert rate is not None
        assert row["original_currency"] == currency
        assert abs(row["original_amount"] - expected["amount"]) <= Decimal("0.00000000005")
        assert abs(row["amount"] - expected["amount"] * rate) <= Decimal("0.00005") + expected[
            "amount"
        ] * rate * Decimal("1e-27")


# --------------------------------------------------------------------------------------------
# 3. Truncated valid events are never accepted
# --------------------------------------------------------------------------------------------


@fuzz(300)
@given(case=valid_events(), data=st.data())
def test_truncated_events_are_rejected(
    case: tuple[str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    _count("truncated_events")
    event_type, body, _ = case
    raw = dumps(body)
    cut = data.draw(st.one_of(st.integers(0, len(raw) - 1), st.integers(max(0, len(raw) - 4), len(raw) - 1)))
    prefix = raw[:cut]
    result = rejection(event_type, prefix)
    if not prefix:
        assert result.reason == "empty_message"
        return
    try:
        prefix.decode("utf-8")
    except UnicodeDecodeError:  # cut inside a multi-byte character
        assert result.reason == "not_utf8"
    else:
        assert result.reason == "invalid_json"


# --------------------------------------------------------------------------------------------
# 4. Mutated valid events get the precise reason
# --------------------------------------------------------------------------------------------

REQUIRED = {
    "visit": ("event_id", "occurred_at", "rep_id", "customer_id", "duration_minutes", "outcome"),
    "call": ("event_id", "occurred_at", "rep_id", "customer_id", "direction", "duration_seconds", "outcome"),
    "deal": ("event_id", "occurred_at", "rep_id", "customer_id", "deal_id", "stage", "amount"),
    "feedback": ("event_id", "occurred_at", "rep_id", "customer_id", "score_type", "score"),
}


@fuzz(200)
@given(case=valid_events(), data=st.data())
def test_missing_required_field(
    case: tuple[str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    _count("missing_required_field")
    event_type, body, _ = case
    field = data.draw(st.sampled_from(REQUIRED[event_type]))
    del body[field]
    result = rejection(event_type, dumps(body))
    assert result.reason == "missing_field"
    assert f"'{field}'" in result.message


NOT_A_STRING = st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2), st.just({"a": 1}))
NOT_AN_INT = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),  # 30.0 is an int
    st.booleans(),
    st.just([1]),
    st.text(),
)

# field -> strategy of values that are invalid for it (wrong type or out of range), per event type.
COMMON_BAD: dict[str, Any] = {
    "event_id": st.one_of(NOT_A_STRING, st.none(), st.just(""), long_texts(129, 300)),
    "occurred_at": st.one_of(
        NOT_A_STRING,
        st.none(),
        st.sampled_from(
            [
                "yesterday",
                "2026-03-02T09:30:00",
                "2026-03-02",
                "1969-12-31T23:59:59Z",
                "2100-01-01T00:00:00Z",
                "1970-12-31T23:30:00-01:00",
                "1970-01-01T00:30:00+01:00",
                "2026-13-01T00:00:00Z",
                "",
            ]
        ),
    ),
    "rep_id": st.one_of(
        NOT_A_STRING,
        st.none(),
        st.sampled_from(["", " rep", "rep ", "\trep", "a\nb"]),
        long_texts(129, 200, "r"),
    ),
    "customer_id": st.one_of(NOT_A_STRING, st.none(), st.just(""), st.just("cust\n")),
    "schema_version": st.one_of(st.integers(max_value=0), st.just("1"), st.just(1.5), st.booleans()),
    "source": st.one_of(NOT_A_STRING, long_texts(257, 400, "s")),
}
SPECIFIC_BAD: dict[str, dict[str, Any]] = {
    "visit": {
        "duration_minutes": st.one_of(
            st.integers(max_value=-1), st.integers(min_value=100_001), NOT_AN_INT, st.none()
        ),
        "outcome": st.one_of(
            st.text().filter(lambda s: s not in ("completed", "cancelled", "no_show")), NOT_A_STRING
        ),
    },
    "call": {
        "direction": st.one_of(st.sampled_from(["Outbound", "in", ""]), NOT_A_STRING, st.none()),
        "duration_seconds": st.one_of(
            st.integers(max_value=-1), st.integers(min_value=10_000_001), NOT_AN_INT
        ),
        "outcome": st.one_of(st.sampled_from(["answered", "CONNECTED", "completed"]), NOT_A_STRING),
    },
    "deal": {
        "deal_id": st.one_of(NOT_A_STRING, st.none(), st.just(""), st.just(" d1")),
        "stage": st.one_of(
            st.sampled_from(["closed", "Won", "open", "discovery", ""]), NOT_A_STRING, st.none()
        ),
        "amount": st.one_of(
            st.decimals(max_value=Decimal("-0.0000000001"), allow_nan=False, allow_infinity=False).map(str),
            st.integers(max_value=-1),
            st.integers(min_value=10**18, max_value=10**30),
            st.sampled_from(["1e18", "abc", "", "NaN", "-Infinity", "0x10", "1,000"]),
            st.booleans(),
            st.none(),
            st.just([]),
            st.just({}),
        ),
        "currency": st.one_of(st.sampled_from(["usd", "EU", "EURO", "€", "", "U1D"]), NOT_A_STRING),
        "expected_close_date": st.one_of(
            st.sampled_from(
                ["2026-02-30", "1969-12-31", "2100-01-01", "2026-13-01", "next week", "2026-03-02T00:00:00Z"]
            ),
            st.integers(),
            st.booleans(),
        ),
        "lost_reason": st.one_of(NOT_A_STRING, long_texts(257, 300, "l")),
    },
    "feedback": {
        "score_type": st.one_of(st.sampled_from(["CSAT", "ces", "", "nps "]), NOT_A_STRING, st.none()),
        "score": st.one_of(st.integers(max_value=-1), st.integers(min_value=11), NOT_AN_INT, st.none()),
        "category": st.one_of(st.sampled_from(["bug", "Praise", ""]), NOT_A_STRING),
        "comment": st.one_of(NOT_A_STRING, long_texts(4001, 4100, "c好")),
    },
}


@fuzz(500)
@given(case=valid_events(), data=st.data())
def test_wrong_type_or_out_of_range_value(
    case: tuple[str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    _count("invalid_value")
    event_type, body, _ = case
    candidates = {**COMMON_BAD, **SPECIFIC_BAD[event_type]}
    field = data.draw(st.sampled_from(sorted(candidates)))
    body[field] = data.draw(candidates[field])
    result = rejection(event_type, dumps(body))
    assert result.reason == "invalid_value", (field, body.get(field), result)
    assert field in result.message


@fuzz(100)
@given(case=valid_events("feedback"), data=st.data())
def test_feedback_score_outside_its_scale(
    case: tuple[str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    _count("feedback_score_scale")
    _, body, _ = case
    score_type = data.draw(st.sampled_from(["csat", "nps"]))
    bad = data.draw(
        st.sampled_from([0, 6, 7, 10, 11]) if score_type == "csat" else st.sampled_from([-1, 11, 100])
    )
    body |= {"score_type": score_type, "score": bad}
    result = rejection("feedback", dumps(body))
    assert result.reason == "invalid_value"
    assert "score" in result.message


@fuzz(100)
@given(case=valid_events(), data=st.data())
def test_event_type_of_another_topic(
    case: tuple[str, dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    _count("wrong_event_type")
    event_type, body, _ = case
    other = data.draw(
        st.one_of(
            st.sampled_from([t for t in EVENT_TYPES if t != event_type]),
            st.text(max_size=12).filter(lambda s: s != event_type),
        )
    )
    body["event_type"] = other
    result = rejection(event_type, dumps(body))
    assert result.reason == "wrong_event_type"
    assert "does not match" in result.message


@fuzz(100)
@given(case=valid_events("deal"), currency=st.from_regex(r"\A[A-Z]{3}\Z").filter(lambda c: c not in RATED))
def test_currency_without_a_rate(case: tuple[str, dict[str, Any], dict[str, Any]], currency: str) -> None:
    _count("unknown_currency")
    _, body, _ = case
    body["currency"] = currency
    result = rejection("deal", dumps(body))
    assert result.reason == "unknown_currency"
    assert currency in result.message and "SALESPULSE_CURRENCY_RATES" in result.message


# --------------------------------------------------------------------------------------------
# 5. Huge strings: the byte limit first, then each field's documented length limit
# --------------------------------------------------------------------------------------------


@fuzz(100)
@given(
    case=valid_events(),
    size=st.one_of(st.integers(0, 200_000), st.integers(MAX_BYTES - 600, MAX_BYTES + 50)),
    char=st.sampled_from(["x", "é", "好", "😀", "\\", '"']),
)
def test_payload_size_limit_is_exact(
    case: tuple[str, dict[str, Any], dict[str, Any]], size: int, char: str
) -> None:
    """An unknown field of any size: accepted iff the message fits in max_event_bytes."""
    _count("payload_size_limit")
    event_type, body, expected = case
    body["crm_blob"] = char * (size // len(char.encode()))
    raw = dumps(body)
    result = DECODER.decode_event(event_type, raw)
    if len(raw) > MAX_BYTES:
        assert isinstance(result, Rejection) and result.reason == "payload_too_large"
        assert str(len(raw)) in result.message and str(MAX_BYTES) in result.message
    else:
        assert_accepted_as(event_type, body, expected)


@fuzz(30)
@given(case=valid_events("feedback"), size=st.integers(1_000_000, 2_000_000))
def test_megabyte_comment_is_too_large(case: tuple[str, dict[str, Any], dict[str, Any]], size: int) -> None:
    _count("megabyte_comment")
    _, body, _ = case
    body["comment"] = "好" * (size // 3)
    result = rejection("feedback", dumps(body))
    assert result.reason == "payload_too_large"


@fuzz(120)
@given(
    case=valid_events(),
    field=st.sampled_from(["event_id", "rep_id", "customer_id", "source", "comment", "lost_reason"]),
    char=st.sampled_from(["x", "é", "好", "😀"]),
    data=st.data(),
)
def test_field_length_limits_count_characters(
    case: tuple[str, dict[str, Any], dict[str, Any]], field: str, char: str, data: st.DataObject
) -> None:
    """Limits are in characters (contract §3: event_id 1–128 chars), whatever their UTF-8 size."""
    _count("field_length_limits")
    event_type, body, expected = case
    limit = {
        "event_id": 128,
        "rep_id": 128,
        "customer_id": 128,
        "source": 256,
        "comment": 4000,
        "lost_reason": 256,
    }[field]
    if (field == "comment" and event_type != "feedback") or (field == "lost_reason" and event_type != "deal"):
        field = "source"
        limit = 256
    length = data.draw(st.one_of(st.integers(limit - 2, limit + 2), st.integers(limit + 1, limit * 10)))
    body[field] = expected[field] = char * length
    raw = dumps(body)
    result = DECODER.decode_event(event_type, raw)
    if len(raw) > MAX_BYTES:
        assert isinstance(result, Rejection) and result.reason == "payload_too_large"
    elif length > limit:
        assert isinstance(result, Rejection) and result.reason == "invalid_value", result
        assert field in result.message
    else:
        check_event_row(assert_accepted_as(event_type, body, expected))


# --------------------------------------------------------------------------------------------
# 6. Deep nesting: a clear rejection beyond the parser's depth limit, never a RecursionError
# --------------------------------------------------------------------------------------------


def nested(depth: int, style: str) -> bytes:
    if style == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@fuzz(80)
@given(
    case=valid_events(),
    depth=st.one_of(st.integers(1_000, 10_000), st.just(10_000)),
    style=st.sampled_from(["array", "object"]),
    where=st.sampled_from(["unknown_field", "known_field", "top_level"]),
)
def test_deep_nesting_is_rejected_not_crashing(
    case: tuple[str, dict[str, Any], dict[str, Any]], depth: int, style: str, where: str
) -> None:
    _count("deep_nesting")
    event_type, body, _ = case
    deep = nested(depth, style)
    if where == "top_level":
        raw = deep
    elif where == "known_field":
        raw = dumps(body).replace(b'"rep_id":', b'"rep_id":' + deep + b',"x":', 1)
    else:
        raw = b'{"crm_tree":' + deep + b"," + dumps(body)[1:]
    result = rejection(event_type, raw)  # never raises (no RecursionError)
    if len(raw) > MAX_BYTES:
        assert result.reason == "payload_too_large"
    else:
        assert result.reason == "invalid_json"
        assert "recursion limit" in result.message


@fuzz(60)
@given(case=valid_events(), depth=st.integers(1, 100), style=st.sampled_from(["array", "object"]))
def test_shallow_unknown_nesting_is_ignored(
    case: tuple[str, dict[str, Any], dict[str, Any]], depth: int, style: str
) -> None:
    _count("shallow_nesting")
    event_type, body, expected = case
    raw = b'{"crm_tree":' + nested(depth, style) + b"," + dumps(body)[1:]
    event = DECODER.decode_event(event_type, raw)
    assert not isinstance(event, Rejection), event
    assert event.event_id == expected["event_id"]


def test_very_deep_nesting_with_a_large_byte_limit() -> None:
    """100k levels (the size limit raised to allow it): still a rejection, no RecursionError."""
    _count("very_deep_nesting")
    decoder = Decoder(Settings(max_event_bytes=1_000_000))
    for raw in (nested(100_000, "array"), b'{"x":' + nested(100_000, "object") + b"}"):
        result = decoder.decode_event("visit", raw)
        assert isinstance(result, Rejection) and result.reason == "invalid_json"


# --------------------------------------------------------------------------------------------
# 7. Wrong encodings
# --------------------------------------------------------------------------------------------

NON_ASCII = "éüñçøßàâêîôûÿ¥£§°±µ¶·¿ÀÉÑÖÜ"
TEMPLATES: dict[str, dict[str, Any]] = {
    "visit": {"duration_minutes": 30, "outcome": "completed"},
    "call": {"direction": "inbound", "duration_seconds": 65, "outcome": "busy"},
    "deal": {"deal_id": "d-1", "stage": "won", "amount": "1200.50", "currency": "EUR"},
    "feedback": {"score_type": "csat", "score": 4, "comment": "très bien"},
}


@fuzz(250)
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    occurred=timestamps(),
    name=st.text(alphabet=NON_ASCII + "abc ", min_size=1, max_size=20).filter(
        lambda s: any(c in NON_ASCII for c in s)
    ),
    encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252"]),
)
def test_non_utf8_encodings_are_rejected(
    event_type: str, occurred: tuple[str, datetime], name: str, encoding: str
) -> None:
    """JSON in UTF-16/32 or a legacy 8-bit code page: not_utf8 whenever the bytes are not UTF-8.

    (UTF-16 without a BOM of mostly ASCII text *is* valid UTF-8 — NUL-padded — and is then
    invalid_json; a latin-1 text that happens to be valid UTF-8 cannot be told apart, so it is skipped.)
    """
    _count("wrong_encodings")
    body = {
        "event_id": f"e-{name}",
        "occurred_at": occurred[0],
        "rep_id": f"rep {name} x",
        "customer_id": "客户-1" if encoding.startswith("utf") else "cust-1",
        "source": name,
        **TEMPLATES[event_type],
    }
    raw = dumps(body).decode().encode(encoding)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        valid_utf8 = False
    else:
        valid_utf8 = True
    if encoding in ("latin-1", "cp1252"):
        assume(not valid_utf8)
    result = rejection(event_type, raw)
    if valid_utf8:
        assert result.reason == "invalid_json"
    else:
        assert result.reason == "not_utf8"
        assert "not UTF-8" in result.message


# --------------------------------------------------------------------------------------------
# 8. NaN / Infinity literals are never accepted
# --------------------------------------------------------------------------------------------

NUMERIC_FIELDS = {
    "visit": ["duration_minutes", "schema_version"],
    "call": ["duration_seconds", "schema_version"],
    "deal": ["amount", "schema_version"],
    "feedback": ["score", "schema_version"],
}


@fuzz(200)
@given(
    case=valid_events(),
    literal=st.sampled_from(
        [
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"nan",
            b"inf",
            b"-inf",
            b"+Infinity",
            b"1e400",
            b"-1e400",
            b'"NaN"',
            b'"Infinity"',
            b'"-Infinity"',
            b'"inf"',
            b'"sNaN"',
            b'"1e400"',
        ]
    ),
    data=st.data(),
)
def test_nan_and_infinity_are_never_accepted(
    case: tuple[str, dict[str, Any], dict[str, Any]], literal: bytes, data: st.DataObject
) -> None:
    _count("nan_infinity")
    event_type, body, _ = case
    field = data.draw(st.sampled_from(NUMERIC_FIELDS[event_type]))
    body[field] = "__PLACEHOLDER__"
    raw = dumps(body).replace(b'"__PLACEHOLDER__"', literal)
    result = rejection(event_type, raw)
    assert result.reason in ("invalid_value", "invalid_json"), result
    if result.reason == "invalid_value":
        assert field in result.message


# --------------------------------------------------------------------------------------------
# 9. Timestamps and dates out of range or without an offset
# --------------------------------------------------------------------------------------------


@st.composite
def bad_timestamps(draw: st.DrawFn) -> str:
    text, _ = draw(timestamps())
    kind = draw(
        st.sampled_from(
            [
                "year",
                "month",
                "day",
                "hour",
                "minute",
                "second",
                "offset",
                "no_offset",
                "date_only",
                "too_early",
                "too_late",
                "offset_hour",
                "offset_minute",
            ]
        )
    )
    head = text[:10]
    if kind == "year":
        return draw(st.sampled_from(["0000", "10000", "99999", "-001", "+2026"])) + text[4:]
    if kind == "month":
        return text[:5] + draw(st.sampled_from(["00", "13", "99"])) + text[7:]
    if kind == "day":
        return text[:8] + draw(st.sampled_from(["00", "32", "99"])) + text[10:]
    if kind == "hour":
        return text[:11] + draw(st.sampled_from(["24", "25", "99"])) + text[13:]
    if kind == "minute":
        return text[:14] + draw(st.sampled_from(["60", "99"])) + text[16:]
    if kind == "second":
        return text[:17] + draw(st.sampled_from(["60", "61", "99"])) + text[19:]  # 60: a leap second
    if kind == "offset_hour":
        return RFC3339_OFFSET.sub("", text) + draw(st.sampled_from(["+24:00", "-25:00", "+99:00"]))
    if kind == "offset_minute":
        return RFC3339_OFFSET.sub("", text) + draw(st.sampled_from(["+01:60", "-05:99"]))
    if kind in ("offset", "no_offset"):
        return RFC3339_OFFSET.sub("", text) + (
            draw(st.sampled_from(["UTC", "GMT", "+8", "CST"])) if kind == "offset" else ""
        )
    if kind == "date_only":
        return head
    if kind == "too_early":
        return draw(
            st.sampled_from(
                [
                    "1969-12-31T23:59:59Z",
                    "1900-01-01T00:00:00Z",
                    "0001-01-01T00:00:00Z",
                    "1970-01-01T00:00:00.000001+00:01",
                    "1970-12-31T23:59:59-14:00",
                ]
            )
        )
    return draw(
        st.sampled_from(["2100-01-01T00:00:00Z", "2100-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z"])
    )


RFC3339_OFFSET = re.compile(r"([Zz]|[+-]\d{2}:\d{2})$")


@fuzz(300)
@given(case=valid_events(), occurred_at=bad_timestamps())
@example(
    case=(
        "visit",
        {
            "event_id": "v",
            "occurred_at": "",
            "rep_id": "r",
            "customer_id": "c",
            "duration_minutes": 1,
            "outcome": "completed",
        },
        {},
    ),
    occurred_at="2026-03-02T09:30:00",
)
def test_timestamps_out_of_range_or_without_offset_are_rejected(
    case: tuple[str, dict[str, Any], dict[str, Any]], occurred_at: str
) -> None:
    _count("bad_timestamps")
    event_type, body, _ = case
    body["occurred_at"] = occurred_at
    result = rejection(event_type, dumps(body))
    assert result.reason == "invalid_value", (occurred_at, result)
    assert "occurred_at" in result.message


@fuzz(100)
@given(
    case=valid_events("deal"),
    close=st.one_of(
        st.sampled_from(
            [
                "0000-01-01",
                "10000-01-01",
                "2026-13-01",
                "2026-00-10",
                "2026-02-30",
                "2026-04-31",
                "1969-12-31",
                "2100-01-01",
                "2026-3-2",
                "2026/03/02",
                "02.03.2026",
                "",
            ]
        ),
        st.dates(max_value=date(1969, 12, 31)).map(date.isoformat),
        st.dates(min_value=date(2100, 1, 1)).map(date.isoformat),
    ),
)
def test_expected_close_dates_out_of_range_are_rejected(
    case: tuple[str, dict[str, Any], dict[str, Any]], close: str
) -> None:
    _count("bad_close_dates")
    _, body, _ = case
    body["expected_close_date"] = close
    result = rejection("deal", dumps(body))
    assert result.reason == "invalid_value"
    assert "expected_close_date" in result.message


# --------------------------------------------------------------------------------------------
# 10. Bugs these properties found (fixed; kept as regression tests with the failing input as example)
# --------------------------------------------------------------------------------------------

MINIMAL: dict[str, dict[str, Any]] = {
    "visit": {
        "event_id": "v-1",
        "occurred_at": "2026-03-02T09:30:00+08:00",
        "rep_id": "r",
        "customer_id": "c",
        "duration_minutes": 45,
        "outcome": "completed",
    },
    "deal": {
        "event_id": "d-1",
        "occurred_at": "2026-03-02T09:30:00Z",
        "rep_id": "r",
        "customer_id": "c",
        "deal_id": "deal-1",
        "stage": "won",
        "amount": "1",
    },
}


@fuzz(100)
@given(case=valid_events(), version=st.one_of(st.integers(1, 2**16 - 1), st.integers(2**16, 2**80)))
@example(case=("visit", dict(MINIMAL["visit"]), {}), version=65_536)
def test_accepted_events_fit_the_clickhouse_columns(
    case: tuple[str, dict[str, Any], dict[str, Any]], version: int
) -> None:
    _count("regression_schema_version_fits_uint16")
    event_type, body, _ = case
    body["schema_version"] = version
    result = DECODER.decode_event(event_type, dumps(body))
    if isinstance(result, Rejection):
        assert result.reason == "invalid_value" and "schema_version" in result.message
    else:
        check_event_row(result, fits_columns=True)


@st.composite
def precise_amounts(draw: st.DrawFn) -> str:
    """Decimal strings with more than the 10 places the row keeps, some just under the 10^18 bound."""
    places = draw(st.integers(11, 30))
    near_bound = "999999999999999999." + "9" * places
    anywhere = draw(st.decimals(min_value=0, max_value=AMOUNT_BOUND - 1, places=places))
    return draw(st.sampled_from([near_bound, f"{anywhere:f}"]))


@fuzz(100)
@given(case=valid_events("deal"), amount=precise_amounts())
@example(case=("deal", dict(MINIMAL["deal"]), {}), amount="999999999999999999.99999999995")
def test_accepted_amounts_with_many_places_become_rows(
    case: tuple[str, dict[str, Any], dict[str, Any]], amount: str
) -> None:
    _count("regression_precise_amounts_to_rows")
    _, body, _ = case
    body["amount"] = amount
    event = DECODER.decode_event("deal", dumps(body))
    assert isinstance(event, Deal), event  # below 10^18: a valid amount per the schema
    row = check_event_row(event)
    assert abs(row["original_amount"] - Decimal(amount)) <= Decimal("0.00000000005")


@fuzz(100)
@given(
    case=valid_events("deal"),
    field=st.sampled_from(["occurred_at", "expected_close_date"]),
    text=st.one_of(
        st.integers(0, 4_102_444_799).map(str),
        st.integers(0, 4_102_444_799_000).map(str),
        st.floats(0, 4e9, allow_nan=False).map(lambda f: f"{f:.3f}"),
    ),
)
@example(case=("deal", dict(MINIMAL["deal"]), {}), field="occurred_at", text="1772415000")
def test_digit_strings_are_not_timestamps(
    case: tuple[str, dict[str, Any], dict[str, Any]], field: str, text: str
) -> None:
    _count("regression_digit_string_timestamps")
    _, body, _ = case
    body[field] = text
    result = rejection("deal", dumps(body))
    assert result.reason == "invalid_value" and field in result.message
