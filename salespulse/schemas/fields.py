"""Field types shared by events and reference records.

Limits here are part of the contract CRM integrators validate against (they appear
in the exported JSON Schemas), so each one is chosen to be generous for real data
and tight enough that ClickHouse stores every accepted value exactly.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, Field

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


# Checked by pydantic-core itself (not a Python validator): this runs for every event.
Timestamp = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST)]
CalendarDate = Annotated[date, Field(ge=EARLIEST.date(), lt=LATEST.date())]

# Money: JSON numbers or decimal strings ("1234.50"), never NaN or infinity. The bound keeps
# sums of a year of deals far inside ClickHouse's Decimal(38, 4).
Amount = Annotated[
    Decimal,
    Field(ge=0, lt=Decimal(10) ** 18, allow_inf_nan=False, strict=False),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")]
