"""The JSON API's parameters: a period, a scope, and the few options some endpoints take.

Every endpoint reads its query string through :func:`read_query`, which refuses a parameter the
endpoint does not know, so a misspelt ``perod`` is a 400 that names it rather than a silently
different answer. Periods follow SPEC §9: ``period=2026-03`` (a month), ``period=2026-Q1`` (a
quarter), ``period=2026-W10`` (an ISO week), ``period=2026`` (a year), or ``from=…&to=…`` (both
days included). Each has a *previous period*, the one the KPI cards compare with: the previous
month, quarter, week or year, or for a custom range the range of the same length just before it.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

LEVELS: tuple[str, ...] = ("company", "region", "team", "rep")
COMPANY_ENTITY = "all"
# The level one drill-down step below each level.
CHILD_LEVEL: dict[str, str | None] = {"company": "region", "region": "team", "team": "rep", "rep": None}
# Long enough for any review, short enough that a trend stays a few hundred points.
MAX_RANGE_DAYS = 3660
FIRST_YEAR, LAST_YEAR = 1970, 2199
MAX_ENTITY_LENGTH = 256

PeriodKind = Literal["month", "quarter", "week", "year", "range"]

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_YEAR = re.compile(r"(\d{4})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ParamError(ValueError):
    """A parameter is missing or wrong; the message names it, the value, and what is expected."""


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last``, both included."""

    kind: PeriodKind
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        """How the URL spells it: 2026-03, 2026-Q1, 2026-W10, 2026, or 2026-02-10..2026-03-05."""
        if self.kind == "month":
            return f"{self.first.year:04d}-{self.first.month:02d}"
        if self.kind == "quarter":
            return f"{self.first.year:04d}-Q{(self.first.month - 1) // 3 + 1}"
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if self.kind == "year":
            return f"{self.first.year:04d}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def previous(self) -> "Period":
        """The period the KPI cards compare with (see the module docstring)."""
        if self.kind == "month":
            return month(_shift_months(self.first, -1))
        if self.kind == "quarter":
            return quarter(_shift_months(self.first, -3))
        if self.kind == "year":
            return Period("year", date(self.first.year - 1, 1, 1), date(self.first.year - 1, 12, 31))
        length = timedelta(days=self.days)
        return Period(self.kind, self.first - length, self.last - length)

    def as_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "label": self.label,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
        }


@dataclass(frozen=True)
class Scope:
    """Whose numbers: the company, or one region, team or rep."""

    level: str
    entity: str

    @property
    def child_level(self) -> str | None:
        return CHILD_LEVEL[self.level]

    def as_json(self) -> dict[str, str]:
        return {"level": self.level, "entity": self.entity}


def _shift_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month(first: date) -> Period:
    return Period("month", first, _shift_months(first, 1) - timedelta(days=1))


def quarter(first: date) -> Period:
    return Period("quarter", first, _shift_months(first, 3) - timedelta(days=1))


def _year(text: str, name: str, value: str) -> int:
    year = int(text)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ParamError(f"{name}={value!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    return year


def parse_period_label(value: str) -> Period:
    """``2026-03``, ``2026-Q1``, ``2026-W10`` or ``2026`` as a Period."""
    text = value.strip()
    if match := _MONTH.fullmatch(text):
        year, number = _year(match[1], "period", value), int(match[2])
        if not 1 <= number <= 12:
            raise ParamError(f"period={value!r}: there is no month {number}; months are 01 to 12")
        return month(date(year, number, 1))
    if match := _QUARTER.fullmatch(text):
        year = _year(match[1], "period", value)
        return quarter(date(year, 3 * (int(match[2]) - 1) + 1, 1))
    if match := _WEEK.fullmatch(text):
        year, number = _year(match[1], "period", value), int(match[2])
        try:
            monday = date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ParamError(f"period={value!r}: {year} has no ISO week {number}") from None
        return Period("week", monday, monday + timedelta(days=6))
    if match := _YEAR.fullmatch(text):
        year = _year(match[1], "period", value)
        return Period("year", date(year, 1, 1), date(year, 12, 31))
    raise ParamError(
        f"period={value!r} is not a period; write a month (2026-03), a quarter (2026-Q1), "
        "an ISO week (2026-W10) or a year (2026), or give from= and to= instead"
    )


def parse_day(name: str, value: str) -> date:
    text = value.strip()
    if not _DAY.fullmatch(text):
        raise ParamError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-01")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ParamError(f"{name}={value!r} is not a date of the calendar") from None
    _year(text[:4], name, value)
    return day


def parse_period(query: Mapping[str, str]) -> Period:
    """The period of ``period=…`` or ``from=…&to=…`` (exactly one of the two forms)."""
    label, first, last = query.get("period"), query.get("from"), query.get("to")
    if label is not None and (first is not None or last is not None):
        raise ParamError("give either period= or from= and to=, not both")
    if label is not None:
        if not label.strip():
            raise ParamError("period= is empty; write e.g. period=2026-03")
        return parse_period_label(label)
    if first is None and last is None:
        raise ParamError("a period is required: period=2026-03 (or 2026-Q1, 2026-W10, 2026), or from=…&to=…")
    if first is None or last is None:
        missing = "from" if first is None else "to"
        raise ParamError(f"{missing}= is missing: a custom range needs both from= and to= (days included)")
    start, end = parse_day("from", first), parse_day("to", last)
    if start > end:
        raise ParamError(f"from={first} is after to={last}; the range must not end before it starts")
    period = Period("range", start, end)
    if period.days > MAX_RANGE_DAYS:
        raise ParamError(f"the range covers {period.days} days; at most {MAX_RANGE_DAYS} are allowed")
    return period


def parse_scope(query: Mapping[str, str], levels: Iterable[str] = LEVELS) -> Scope:
    """``level`` (default company) and ``entity`` (required below the company)."""
    allowed = tuple(levels)
    level = query.get("level", "company").strip() or "company"
    if level not in allowed:
        raise ParamError(f"level={level!r} is not a level; use one of {', '.join(allowed)}")
    entity = query.get("entity")
    if level == "company":
        if entity not in (None, "", COMPANY_ENTITY):
            raise ParamError(f"entity={entity!r}: the company level has one entity, '{COMPANY_ENTITY}'")
        return Scope("company", COMPANY_ENTITY)
    if entity is None or not entity.strip():
        raise ParamError(f"entity= is required with level={level} (the {level}'s id)")
    if len(entity) > MAX_ENTITY_LENGTH:
        raise ParamError(f"entity= is longer than {MAX_ENTITY_LENGTH} characters")
    return Scope(level, entity)


def parse_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ParamError(f"{name}={value} is out of range; use {low} to {high}")
    return value


def parse_choice(query: Mapping[str, str], name: str, default: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    value = query.get(name, default)
    if value not in options:
        raise ParamError(f"{name}={value!r} is not one of {', '.join(options)}")
    return value


def read_query(pairs: Iterable[tuple[str, str]], allowed: Iterable[str]) -> dict[str, str]:
    """The query string as a dict; a repeated or unknown parameter is an error."""
    known = tuple(allowed)
    query: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            expected = ", ".join(known) if known else "no parameters"
            raise ParamError(f"unknown parameter {name!r}; this endpoint takes {expected}")
        if name in query:
            raise ParamError(f"parameter {name!r} is given twice")
        query[name] = value
    return query
