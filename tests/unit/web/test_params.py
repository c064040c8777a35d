"""The manager page's parameters, ratios and labels, without any server (each expectation by hand)."""

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from salespulse.web.kpis import derived, empty_sums
from salespulse.web.params import ParamError, Period, parse_period, parse_scope, read_query

STATIC = Path(__file__).resolve().parents[3] / "salespulse" / "web" / "static"


@pytest.mark.parametrize(
    ("query", "first", "last", "previous_first", "previous_last", "label"),
    [
        ({"period": "2026-03"}, date(2026, 3, 1), date(2026, 3, 31), date(2026, 2, 1), date(2026, 2, 28), "2026-03"),
        ({"period": "2026-01"}, date(2026, 1, 1), date(2026, 1, 31), date(2025, 12, 1), date(2025, 12, 31), "2026-01"),
        ({"period": "2024-03"}, date(2024, 3, 1), date(2024, 3, 31), date(2024, 2, 1), date(2024, 2, 29), "2024-03"),
        ({"period": "2026-Q1"}, date(2026, 1, 1), date(2026, 3, 31), date(2025, 10, 1), date(2025, 12, 31), "2026-Q1"),
        ({"period": "2026-Q3"}, date(2026, 7, 1), date(2026, 9, 30), date(2026, 4, 1), date(2026, 6, 30), "2026-Q3"),
        # ISO week 1 of 2026 starts on Monday 2025-12-29; the week before is 2025-W52.
        ({"period": "2026-W01"}, date(2025, 12, 29), date(2026, 1, 4), date(2025, 12, 22), date(2025, 12, 28), "2026-W01"),
        ({"period": "2025"}, date(2025, 1, 1), date(2025, 12, 31), date(2024, 1, 1), date(2024, 12, 31), "2025"),
        # A custom range: the same number of days just before (10 Feb – 5 Mar is 24 days).
        ({"from": "2026-02-10", "to": "2026-03-05"}, date(2026, 2, 10), date(2026, 3, 5), date(2026, 1, 17),
         date(2026, 2, 9), "2026-02-10..2026-03-05"),
        ({"from": "2026-03-01", "to": "2026-03-01"}, date(2026, 3, 1), date(2026, 3, 1), date(2026, 2, 28),
         date(2026, 2, 28), "2026-03-01..2026-03-01"),
    ],
)  # fmt: skip
def test_periods_and_their_previous_periods(
    query: dict[str, str], first: date, last: date, previous_first: date, previous_last: date, label: str
) -> None:
    period = parse_period(query)
    assert (period.first, period.last, period.label) == (first, last, label)
    previous = period.previous()
    assert (previous.first, previous.last) == (previous_first, previous_last)
    assert previous.days == period.days or period.kind in ("month", "quarter", "year")


def test_a_previous_period_of_a_month_is_the_whole_previous_month() -> None:
    march = Period("month", date(2026, 3, 1), date(2026, 3, 31))
    assert march.previous().days == 28 and march.previous().previous().days == 31


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"period": "2026-00"}, "no month 0"),
        ({"period": "2026-Q0"}, "is not a period"),
        ({"period": "2020-W53"}, None),  # 2020 has 53 ISO weeks: valid
        ({"period": "2021-W53"}, "2021 has no ISO week 53"),
        ({"period": " "}, "period= is empty"),
        ({"from": "2026-02-29", "to": "2026-03-01"}, "not a date of the calendar"),
        ({"from": "2026-3-1", "to": "2026-03-01"}, "YYYY-MM-DD"),
        ({"from": "3000-01-01", "to": "3000-01-02"}, "between 1970 and 2199"),
    ],
)
def test_bad_periods_say_what_is_wrong(query: dict[str, str], message: str | None) -> None:
    if message is None:
        assert parse_period(query).days == 7
        return
    with pytest.raises(ParamError, match=message):
        parse_period(query)


def test_scopes() -> None:
    assert parse_scope({}).entity == "all"
    assert parse_scope({"level": "company", "entity": "all"}).level == "company"
    assert parse_scope({"level": "rep", "entity": "rep-01"}).child_level is None
    assert parse_scope({"level": "region", "entity": "north"}).child_level == "team"
    with pytest.raises(ParamError, match="longer than 256"):
        parse_scope({"level": "rep", "entity": "r" * 257})


def test_unknown_and_repeated_parameters_are_refused() -> None:
    assert read_query([("level", "team")], ("level", "entity")) == {"level": "team"}
    with pytest.raises(ParamError, match="this endpoint takes level, entity"):
        read_query([("levle", "team")], ("level", "entity"))
    with pytest.raises(ParamError, match="takes no parameters"):
        read_query([("x", "1")], ())


def test_ratios_come_from_the_sums_and_are_none_without_a_denominator() -> None:
    sums = {**empty_sums(), "deals_won": 3, "deals_lost": 1, "won_amount": Decimal("1000.0100"), "cycle_days_sum": 10,
            "csat_count": 8, "csat_satisfied": 6, "nps_count": 16, "nps_promoters": 6, "nps_detractors": 4,
            "calls": 0, "calls_connected": 0}  # fmt: skip
    ratios = derived(sums)
    assert ratios["win_rate"] == Decimal("0.75")
    assert ratios["avg_deal_size"] == Decimal("333.3366666666666666666666667")
    assert ratios["avg_cycle_days"] == Decimal("3.333333333333333333333333333")
    assert ratios["csat"] == Decimal("0.75")
    assert ratios["nps"] == Decimal("12.5")  # 100 × (6 − 4) / 16
    assert ratios["connect_rate"] is None
    assert all(value is None for value in derived(empty_sums()).values())


def test_chinese_and_english_labels_have_the_same_keys() -> None:
    en = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    untranslated = {key for key in en if en[key] == zh[key] and any(c.isalpha() for c in en[key])}
    assert untranslated == {"brand"}  # the product's name stays as it is
    # Every key the page's scripts and HTML name exists.
    sources = [path.read_text(encoding="utf-8") for path in (STATIC / "js").glob("*.js")]
    sources.append((STATIC / "index.html").read_text(encoding="utf-8"))
    named = set()
    for source in sources:
        named |= set(
            re.findall(r'(?:t\(|data-i18n(?:-placeholder|-title)?=)["`]([a-z_]+\.[a-z_.]+)["`]', source)
        )
    assert named and named <= set(en), sorted(named - set(en))
