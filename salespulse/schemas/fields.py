"""Field types shared by events and reference records.

Limits here are part of the contract CRM integrators validate against (they appear
in the exported JSON Schemas), so each one is chosen to be generous for real data
and tight enough that ClickHouse stores every accepted value exactly.

Every text format (timestamps, dates, amounts written as strings, identifiers, currency
codes) is defined once, as a grammar: the decoder accepts a value exactly when it matches
the grammar, and the exported JSON Schema states the same grammar as its ``pattern``. So a
message passes the pipeline exactly when it passes the schema it publishes (checked by
tests/unit/test_schema_agreement.py). When a value fails, the decoder says which part is
wrong, because "does not match the pattern" is not something a person can act on.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

# --------------------------------------------------------------------------------------------
# Grammars, written once for the decoder and the JSON Schema
# --------------------------------------------------------------------------------------------
# JSON Schema patterns are ECMA-262 regular expressions that integrators run with Python's re,
# JavaScript's RegExp and others. The grammars use only what all of them read alike: explicit
# character classes (never \d, \s, \w or ".", whose meaning differs between engines: Python's \d
# takes Arabic-Indic digits), and no named groups (the syntax differs).


def schema_pattern(grammar: str) -> str:
    """The JSON Schema ``pattern`` that matches exactly the strings ``grammar`` matches whole.

    Python's ``$`` (what the jsonschema package uses) also matches before a final newline, so
    ``"USD\\n"`` would pass ``^[A-Z]{3}$``; ``(?!\\n)`` after it closes that gap and changes
    nothing for engines where ``$`` is the end of the text.
    """
    return f"^(?:{grammar})$(?!\\n)"


# Years as written. Dates are stored as ClickHouse Dates (1970-01-01 to 2149-06-06). A timestamp's
# day is taken in the reporting time zone, up to 14 hours away from the offset it was written
# with, and a day before 1970 would wrap around to 2149 in a Date: so timestamps start in 1971.
DATE_YEARS = "19[7-9][0-9]|20[0-9]{2}"
TIMESTAMP_YEARS = "197[1-9]|19[89][0-9]|20[0-9]{2}"
# Leap years from 1970 to 2099 are exactly the multiples of 4 (2000 is one; 2100 is outside).
_LEAP_YEARS = "19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26])"
_MONTH_DAY = (
    "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8])"
)


def _date_grammar(years: str) -> str:
    # Days that exist: validators that treat "format" as an annotation only (the default of
    # JSON Schema 2020-12) still refuse 2026-02-30 with this pattern.
    return f"(?:{years})-(?:{_MONTH_DAY})|(?:{_LEAP_YEARS})-02-29"


DATE_GRAMMAR = _date_grammar(DATE_YEARS)
# RFC 3339 §5.6 date-time: seconds required, any number of fraction digits, "T" and "Z" in either
# case, offsets Z or ±HH:MM with HH 00–23. Leap seconds (:60) are refused: the format checkers
# integrators use refuse them, and neither Python nor ClickHouse can hold them.
TIMESTAMP_GRAMMAR = (
    f"(?:{_date_grammar(TIMESTAMP_YEARS)})"
    "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
# Plain decimals: digits, optionally a point and more digits. At most 18 digits before the point
# keeps every amount below 10^18, far inside ClickHouse's Decimal(38, 4) even summed over years.
AMOUNT_GRAMMAR = "[0-9]{1,18}(?:\\.[0-9]+)?"
CURRENCY_GRAMMAR = "[A-Z]{3}"
# Identifiers: no control characters or line breaks anywhere, and no blank at either end, so that
# "rep-1", "rep-1 " and "rep-1\u200b" can never be three reps. Blanks are Unicode's White_Space
# plus the invisible U+200B ZERO WIDTH SPACE and U+FEFF BYTE ORDER MARK.
_FORBIDDEN = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"
_BLANK_OR_FORBIDDEN = _FORBIDDEN + " \\u00a0\\u1680\\u2000-\\u200b\\u202f\\u205f\\u3000\\ufeff"
IDENTIFIER_GRAMMAR = f"[^{_BLANK_OR_FORBIDDEN}](?:[^{_FORBIDDEN}]*[^{_BLANK_OR_FORBIDDEN}])?"

_DATE = re.compile(DATE_GRAMMAR)
_TIMESTAMP = re.compile(TIMESTAMP_GRAMMAR)
_AMOUNT = re.compile(AMOUNT_GRAMMAR)
_CURRENCY = re.compile(CURRENCY_GRAMMAR)
_IDENTIFIER = re.compile(IDENTIFIER_GRAMMAR)
_FORBIDDEN_CHAR = re.compile(f"[{_FORBIDDEN}]")

DATE_YEAR_RANGE = (1970, 2099)
TIMESTAMP_YEAR_RANGE = (1971, 2099)
TIMESTAMP_EXAMPLE = "2026-03-02T09:30:00+08:00"
MAX_IDENTIFIER_LENGTH = 128


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else "an object"


def _non_ascii_digit(text: str) -> bool:
    return any(char.isdigit() and not "0" <= char <= "9" for char in text)


# --------------------------------------------------------------------------------------------
# Timestamps and dates
# --------------------------------------------------------------------------------------------


def _timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            f"must be a string in RFC 3339 form such as {TIMESTAMP_EXAMPLE}, not {_json_kind(value)}"
        )
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(_timestamp_problem(value))
    # The grammar fixes every position: YYYY-MM-DDTHH:MM:SS, then fraction and offset.
    rest = value[19:]
    if rest[-1] in "Zz":
        offset, fraction = timedelta(0), rest[1:-1]
    else:
        offset = timedelta(hours=int(rest[-5:-3]), minutes=int(rest[-2:])) * (-1 if rest[-6] == "-" else 1)
        fraction = rest[1:-6]
    # Kept to the microsecond, cut rather than rounded: rounding could move an event written
    # 23:59:59.9999999 to the next day.
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    hour, minute, second = int(value[11:13]), int(value[14:16]), int(value[17:19])
    zone = UTC if not offset else timezone(offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)


# A loose reading of what people write instead, used only to explain a refusal.
_TIMESTAMP_LIKE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(.)([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?([.,][0-9]*)?(.*)", re.DOTALL
)


def _timestamp_problem(text: str) -> str:
    form = f"RFC 3339 form such as {TIMESTAMP_EXAMPLE}"
    if text != text.strip():
        return f"must be written without white space around it, in {form}"
    if _non_ascii_digit(text):
        return f"must be written with the digits 0-9, in {form}"
    if _DATE.fullmatch(text):
        return f"is a date without a time; a timestamp needs a time and a UTC offset, as in {form}"
    match = _TIMESTAMP_LIKE.fullmatch(text)
    if match is None:
        return f"must be in {form}"
    year, month, day, separator, hour, minute, second, fraction, offset = match.groups()
    problem = _date_problem(f"{year}-{month}-{day}", TIMESTAMP_YEAR_RANGE)
    if problem:
        return problem
    if separator not in "Tt":
        return f"must separate the date and the time with 'T' (got {separator!r}), as in {form}"
    if int(hour) > 23 or int(minute) > 59:
        return f"has time {hour}:{minute}: hours are 00–23 and minutes 00–59"
    if second is None:
        return f"must include the seconds (HH:MM:SS; RFC 3339 requires them), as in {form}"
    if second == "60":
        return "has second 60 (a leap second), which cannot be stored: write :59 or the next minute's :00"
    if int(second) > 59:
        return f"has second {second}: seconds are 00–59"
    if fraction is not None and (fraction[0] == "," or len(fraction) == 1):
        return "must write fractions of a second as '.' and at least one digit (…:00.5)"
    if not offset:
        return f"has no UTC offset (time zone): end it with Z or ±HH:MM, as in {form}"
    if re.fullmatch(r"[+-][0-9]{2}:[0-9]{2}", offset):
        return f"has offset {offset}: offset hours are 00–23 and minutes 00–59"
    if re.fullmatch(r"[+-][0-9]{4}|[+-][0-9]{2}", offset):
        return f"must write the UTC offset as ±HH:MM (got {offset!r}), as in {form}"
    return f"must end with a UTC offset, Z or ±HH:MM (got {offset!r}), as in {form}"


def _date_problem(text: str, years: tuple[int, int]) -> str | None:
    year = int(text[:4])
    if not years[0] <= year <= years[1]:
        return f"has year {year}: the years {years[0]}–{years[1]} are accepted"
    try:
        date.fromisoformat(text)
    except ValueError:
        return f"has a day that does not exist: {text}"
    return None


def _calendar_date(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a date written YYYY-MM-DD, not {_json_kind(value)}")
    if not _DATE.fullmatch(value):
        problem = None
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            problem = _date_problem(value, DATE_YEAR_RANGE)
        raise ValueError(
            problem or "must be a date written YYYY-MM-DD with the digits 0-9, such as 2026-03-02"
        )
    return date(int(value[0:4]), int(value[5:7]), int(value[8:10]))


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": schema_pattern(TIMESTAMP_GRAMMAR)}),
]
CalendarDate = Annotated[
    date,
    BeforeValidator(_calendar_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": schema_pattern(DATE_GRAMMAR)}),
]

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

AMOUNT_BOUND = Decimal(10) ** 18
AMOUNT_EXAMPLE = '"1234.50"'


def _amount(value: Any) -> Any:
    # JSON numbers are read as IEEE doubles, as nearly every JSON parser reads them (so the bounds
    # are checked on the value an integrator's validator sees); strings are read exactly.
    if isinstance(value, str):
        if not _AMOUNT.fullmatch(value):
            raise ValueError(_amount_problem(value))
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"must be a JSON number or a decimal string such as {AMOUNT_EXAMPLE}, not {_json_kind(value)}"
        )
    amount = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount >= AMOUNT_BOUND:
        raise ValueError("must be less than 1000000000000000000 (10^18)")
    return amount


def _amount_problem(text: str) -> str:
    if text != text.strip():
        return "must be written without white space around it"
    if text.lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
        return "must be a finite number"
    if _non_ascii_digit(text):
        return "must be written with the digits 0-9"
    if text[:1] == "-":
        return "must not be negative"
    if text[:1] == "+":
        return 'must be written without a sign (write "1000", not "+1000")'
    if "e" in text.lower():
        return 'must be written without an exponent (write "1000", not "1e3")'
    if any(char in text for char in "_, '"):
        return 'must be written without digit separators (write "1000", not "1_000" or "1,000")'
    if text.startswith("."):
        return 'needs a digit before the point (write "0.5", not ".5")'
    if text.endswith("."):
        return 'needs a digit after the point (write "1000" or "1000.0", not "1000.")'
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return "must be less than 1000000000000000000 (10^18): at most 18 digits before the point"
    return (
        f"must be a JSON number or a decimal string such as {AMOUNT_EXAMPLE}: digits 0-9 and at most one '.'"
    )


# Money: JSON numbers or plain decimal strings ("1234.50"), never NaN or infinity.
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 1e18},
                {"type": "string", "pattern": schema_pattern(AMOUNT_GRAMMAR)},
            ],
            "description": (
                'A JSON number or a decimal string such as "1234.50": digits 0-9, at most 18 before the '
                "point, no sign, exponent or separators. Send a string for exact amounts: JSON numbers "
                "are read as IEEE 754 doubles."
            ),
        }
    ),
]


def _whole_number(value: Any) -> Any:
    # JSON Schema's "integer" is a value, not a spelling: 30.0 and 3e1 are integers, and every
    # validator accepts them. Such floats become ints; everything else meets pydantic's strict int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Counts and scales: Annotated[int, Field(ge=0, le=10), WHOLE_NUMBER]. (The bounds must come first:
# after a validator, pydantic writes them into the JSON Schema as "ge"/"le", which no validator reads.)
WHOLE_NUMBER = BeforeValidator(_whole_number)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        forbidden = _FORBIDDEN_CHAR.search(value)
        if forbidden:
            code = f"U+{ord(forbidden.group()):04X}"
            raise ValueError(
                f"must not contain control characters or line breaks ({code} is character {forbidden.start() + 1})"
            )
        raise ValueError("must not start or end with white space or an invisible character")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise ValueError("must be an ISO 4217 code of three capital letters, such as USD or CNY")
    return value


# Identifiers of reps, customers, deals, teams...: non-empty, bounded, see IDENTIFIER_GRAMMAR.
# (Checked after pydantic's strict str and length checks, so the value is a str of 1–128 chars.)
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH),
    AfterValidator(_identifier),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDENTIFIER_LENGTH,
            "pattern": schema_pattern(IDENTIFIER_GRAMMAR),
        }
    ),
]
# event_id is an opaque token: any 1–128 characters.
EventId = Annotated[str, Field(min_length=1, max_length=128)]
# Free text (names, reasons, comments): any characters, line breaks included.
ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=4000)]
CurrencyCode = Annotated[
    str,
    AfterValidator(_currency),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": schema_pattern(CURRENCY_GRAMMAR),
            "description": "ISO 4217 code, e.g. USD",
        }
    ),
]
