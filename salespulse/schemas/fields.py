"""Field types shared by events and reference records.

Limits here are part of the contract CRM integrators validate against (they appear
in the exported JSON Schemas), so each one is chosen to be generous for real data
and tight enough that ClickHouse stores every accepted value exactly.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema

# Identifiers of reps, customers, deals, teams...: non-empty, bounded, no surrounding blanks
# (a trailing space would silently split one rep into two).
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^\S(.*\S)?$"),
]
EventId = Annotated[str, Field(min_length=1, max_length=128)]
ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=4000)]

# Timestamps and dates are kept inside the range ClickHouse's Date type represents, so the
# day an event is counted on is always exact. Wider than any CRM history we expect.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


# pydantic also reads numbers and digit strings ("1772415000") as Unix times; contract §3 asks for
# RFC 3339 text with an offset, so numbers are refused here and pydantic-core checks the rest.
_NUMBER = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")


def _not_a_number(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be written as text in ISO 8601 / RFC 3339 form, not as a number")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: Any) -> Any:
    # Lax parsing would also take a datetime at midnight, or a number, as a date.
    if not isinstance(value, date) and not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _in_range(value: datetime | date) -> datetime | date:
    low, high = (EARLIEST, LATEST) if isinstance(value, datetime) else (EARLIEST.date(), LATEST.date())
    if not low <= value < high:
        raise ValueError("must be from 1970-01-01 up to (not including) 2100-01-01")
    return value


# (strict=False: after a Python validator the value reaches pydantic-core as a str, which strict
# mode refuses for dates; numbers have been refused, so lax parsing of the text is safe.)
# The JSON Schema states the range as a pattern on the year, which integrators' validators check.
_YEARS = "(19[7-9][0-9]|20[0-9]{2})"
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_not_a_number),
    AfterValidator(_in_range),
    Field(strict=False, json_schema_extra={"pattern": f"^{_YEARS}-"}),
]
CalendarDate = Annotated[
    date,
    BeforeValidator(_date_text),
    AfterValidator(_in_range),
    Field(strict=False, json_schema_extra={"pattern": f"^{_YEARS}-[0-9]{{2}}-[0-9]{{2}}$"}),
]

# Money: JSON numbers or decimal strings ("1234.50"), never NaN or infinity. The bound keeps
# sums of a year of deals far inside ClickHouse's Decimal(38, 4).
Amount = Annotated[
    Decimal,
    Field(ge=0, lt=Decimal(10) ** 18, allow_inf_nan=False, strict=False),
    # The schema integrators see: the same bounds, and decimal strings written plainly.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "exclusiveMaximum": 1e18},
                {"type": "string", "pattern": r"^[0-9]{1,18}(\.[0-9]+)?$"},
            ],
            "description": 'A JSON number or a decimal string such as "1234.50".',
        }
    ),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")]
