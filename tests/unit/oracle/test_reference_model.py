"""The reference model itself, on tiny cases whose expected rows are worked out by hand.

Unless a test says otherwise the reporting time zone is UTC, the reporting currency USD and
EUR converts at 1.08. Org: r1 in team t1, r2 in team t2, both in region g1, from 2026-01-01.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tests.oracle.reference_model import KPI_COLUMNS, expected_views

ORG_R1 = {"rep_id": "r1", "team_id": "t1", "region_id": "g1", "effective_from": "2026-01-01"}
ORG_R2 = {"rep_id": "r2", "team_id": "t2", "region_id": "g1", "effective_from": "2026-01-01"}
ORG = [ORG_R1, ORG_R2]
RATES = {"EUR": "1.08"}
ALL_STAGES = ("prospecting", "qualified", "proposal", "negotiation")


def views(
    events: list[dict[str, Any]], org: list[dict[str, Any]] | None = None, tz: str = "UTC"
) -> dict[str, list[tuple[Any, ...]]]:
    return expected_views(
        ORG if org is None else org, events, timezone=tz, reporting_currency="USD", currency_rates=RATES
    )


def visit(event_id: str, at: str, rep: str = "r1", customer: str = "c1", **extra: Any) -> dict[str, Any]:
    return {
        "event_type": "visit",
        "event_id": event_id,
        "occurred_at": at,
        "rep_id": rep,
        "customer_id": customer,
        "duration_minutes": 30,
        "outcome": "completed",
        **extra,
    }


def call(
    event_id: str, at: str, rep: str = "r1", customer: str = "c1", seconds: int = 60, **extra: Any
) -> dict[str, Any]:
    return {
        "event_type": "call",
        "event_id": event_id,
        "occurred_at": at,
        "rep_id": rep,
        "customer_id": customer,
        "direction": "outbound",
        "duration_seconds": seconds,
        "outcome": "connected",
        **extra,
    }


def feedback(
    event_id: str, at: str, score_type: str, score: int, rep: str = "r1", customer: str = "c1", **extra: Any
) -> dict[str, Any]:
    return {
        "event_type": "feedback",
        "event_id": event_id,
        "occurred_at": at,
        "rep_id": rep,
        "customer_id": customer,
        "score_type": score_type,
        "score": score,
        **extra,
    }


def deal(
    event_id: str,
    at: str,
    stage: str,
    amount: str | int = "100",
    rep: str = "r1",
    customer: str = "c1",
    deal_id: str = "D1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event_type": "deal",
        "event_id": event_id,
        "occurred_at": at,
        "rep_id": rep,
        "customer_id": customer,
        "deal_id": deal_id,
        "stage": stage,
        "amount": amount,
        **extra,
    }


def kpi(day: str, level: str, entity: str, **values: Any) -> tuple[Any, ...]:
    """A kpi_daily row: the named columns, zero elsewhere."""
    assert set(values) <= set(KPI_COLUMNS), set(values) - set(KPI_COLUMNS)
    cells = [values.get(name, 0) for name in KPI_COLUMNS]
    return (date.fromisoformat(day), level, entity, *cells)


def kpi4(day: str, rep: str, team: str, region: str, **values: Any) -> list[tuple[Any, ...]]:
    """The same values on the rep, its team, its region and the company."""
    return [
        kpi(day, "rep", rep, **values),
        kpi(day, "team", team, **values),
        kpi(day, "region", region, **values),
        kpi(day, "company", "all", **values),
    ]


def utc(*parts: int) -> datetime:
    """A naive UTC datetime, as clickhouse-connect returns DateTime64(6, 'UTC')."""
    return datetime(*parts)  # type: ignore[arg-type]


def levels(rep: str = "r1", team: str = "t1", region: str = "g1") -> list[tuple[str, str]]:
    return [("company", "all"), ("region", region), ("rep", rep), ("team", team)]


def test_won_then_reopened_stops_counting_as_won() -> None:
    result = views(
        [
            deal("d1", "2026-02-01T10:00:00Z", "qualified", "1000"),
            deal("d2", "2026-02-03T10:00:00Z", "won", "1000"),
            deal("d3", "2026-02-05T10:00:00Z", "negotiation", "1000"),
        ]
    )
    # Created 02-01 (and c1's first event); the 02-03 win no longer counts: no won row at all.
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", new_customers=1, deals_created=1)
    )
    # Open in negotiation since the reopening event (the 02-03 win is not part of the final run).
    assert result["deals_current"] == [
        (
            "D1",
            "r1",
            "t1",
            "g1",
            "c1",
            "negotiation",
            "open",
            Decimal("1000.0000"),
            "USD",
            utc(2026, 2, 1, 10),
            utc(2026, 2, 5, 10),
            utc(2026, 2, 5, 10),
            None,
            None,
            utc(2026, 2, 5, 10),
            Decimal("1000.0000000000"),
            "USD",
            None,
        )
    ]
    # Highest stage reached is `won`: every open stage entered and advanced.
    assert result["stage_conversion"] == [
        (level, entity, stage, order, 1, 1, 1.0)
        for level, entity in levels()
        for stage, order in sorted(zip(ALL_STAGES, (1, 2, 3, 4), strict=True))
    ]
    # 1000 × 0.75 = 750.
    assert result["pipeline_current"] == [
        (level, entity, "negotiation", 1, Decimal("1000.0000"), Decimal("750.00000000"))
        for level, entity in levels()
    ]


def test_won_reopened_won_counts_the_later_win() -> None:
    result = views(
        [
            deal("d1", "2026-02-01T10:00:00Z", "proposal", "100"),
            deal("d2", "2026-02-03T10:00:00Z", "won", "100"),
            deal("d3", "2026-02-05T10:00:00Z", "proposal", "110"),
            deal("d4", "2026-02-08T10:00:00Z", "won", "120"),
        ]
    )
    # Won on 02-08 (the later winning event) with the current amount 120; cycle 02-08 − 02-01 = 7.
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", new_customers=1, deals_created=1)
        + kpi4("2026-02-08", "r1", "t1", "g1", deals_won=1, won_amount=Decimal("120.0000"), cycle_days_sum=7)
    )
    [row] = result["deals_current"]
    assert row[5:8] == ("won", "won", Decimal("120.0000"))
    assert row[9:15] == (
        utc(2026, 2, 1, 10),  # created_at
        utc(2026, 2, 8, 10),  # stage_entered_at
        utc(2026, 2, 8, 10),  # last_activity_at
        None,  # expected_close_date
        utc(2026, 2, 8, 10),  # closed_at
        utc(2026, 2, 8, 10),  # updated_at
    )
    assert result["pipeline_current"] == []


def test_amount_corrected_on_a_later_won_event() -> None:
    result = views(
        [
            deal("d1", "2026-02-01T10:00:00Z", "proposal", "100"),
            deal("d2", "2026-02-02T10:00:00Z", "won", "100"),
            deal("d3", "2026-02-04T10:00:00Z", "won", "150.50"),
        ]
    )
    # Still won on 02-02 (the first event of the final `won` run), with the corrected 150.50; cycle 1.
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", new_customers=1, deals_created=1)
        + kpi4("2026-02-02", "r1", "t1", "g1", deals_won=1, won_amount=Decimal("150.5000"), cycle_days_sum=1)
    )
    assert result["deals_current"] == [
        (
            "D1",
            "r1",
            "t1",
            "g1",
            "c1",
            "won",
            "won",
            Decimal("150.5000"),
            "USD",
            utc(2026, 2, 1, 10),
            utc(2026, 2, 2, 10),
            utc(2026, 2, 4, 10),
            None,
            utc(2026, 2, 2, 10),
            utc(2026, 2, 4, 10),
            Decimal("150.5000000000"),
            "USD",
            None,
        )
    ]


def test_tie_on_occurred_at_goes_to_the_later_delivered_event() -> None:
    first = deal("d1", "2026-02-01T10:00:00Z", "qualified", "50")
    # The same instant, written with two offsets.
    proposal = deal("d2", "2026-02-02T18:00:00+08:00", "proposal", "60")
    negotiation = deal("d3", "2026-02-02T10:00:00Z", "negotiation", "70")

    [row] = views([first, proposal, negotiation])["deals_current"]
    assert (row[5], row[7], row[10], row[14]) == (
        "negotiation",
        Decimal("70.0000"),
        utc(2026, 2, 2, 10),
        utc(2026, 2, 2, 10),
    )
    [row] = views([first, negotiation, proposal])["deals_current"]
    assert (row[5], row[7], row[10], row[14]) == (
        "proposal",
        Decimal("60.0000"),
        utc(2026, 2, 2, 10),
        utc(2026, 2, 2, 10),
    )

    # Closing on a tie: won then lost at the same instant, lost delivered later: lost, not won.
    won = deal("d2", "2026-02-03T10:00:00.250000Z", "won", "80")
    lost = deal("d3", "2026-02-03T05:00:00.25-05:00", "lost", "80", lost_reason="budget")
    result = views([first, won, lost])
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", new_customers=1, deals_created=1)
        + kpi4("2026-02-03", "r1", "t1", "g1", deals_lost=1)
    )
    [row] = result["deals_current"]
    assert (row[5], row[6], row[13], row[17]) == ("lost", "lost", utc(2026, 2, 3, 10, 0, 0, 250000), "budget")


def test_team_change_on_the_exact_effective_from_day_in_shanghai() -> None:
    org = [
        {"rep_id": "r1", "team_id": "t1", "region_id": "g1", "effective_from": "2026-01-01"},
        {"rep_id": "r1", "team_id": "t2", "region_id": "g2", "effective_from": "2026-02-10"},
    ]
    result = views(
        [
            # 2026-02-09 23:59:59.999999 in Shanghai: the day before the change, team t1.
            visit("v1", "2026-02-09T15:59:59.999999Z"),
            # 2026-02-10 00:00 in Shanghai (still 02-09 in UTC): the change day, team t2, region g2.
            visit("v2", "2026-02-09T16:00:00Z"),
        ],
        org=org,
        tz="Asia/Shanghai",
    )
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-09", "r1", "t1", "g1", visits=1, visits_completed=1, new_customers=1)
        + kpi4("2026-02-10", "r1", "t2", "g2", visits=1, visits_completed=1)
    )
    # A deal created before the change and updated on the change day sits in the new team.
    [row] = views(
        [deal("d1", "2026-02-08T10:00:00Z", "qualified"), deal("d2", "2026-02-09T16:00:00Z", "proposal")],
        org=org,
        tz="Asia/Shanghai",
    )["deals_current"]
    assert row[1:4] == ("r1", "t2", "g2")


def test_a_later_org_record_with_the_same_key_replaces_the_earlier_one() -> None:
    org = [
        {"rep_id": "r1", "team_id": "t1", "region_id": "g1", "effective_from": "2026-01-01"},
        {"rep_id": "r1", "team_id": "t2", "region_id": "g2", "effective_from": "2026-01-01"},  # replaces
        {"rep_id": "r1", "team_id": "t3", "region_id": "g3", "effective_from": "2026-03-01"},  # another key
    ]
    result = views([visit("v1", "2026-02-01T10:00:00Z"), visit("v2", "2026-03-01T10:00:00Z")], org=org)
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t2", "g2", visits=1, visits_completed=1, new_customers=1)
        + kpi4("2026-03-01", "r1", "t3", "g3", visits=1, visits_completed=1)
    )


def test_reps_without_a_record_on_the_day_are_unassigned() -> None:
    org = [*ORG, {"rep_id": "r3", "team_id": "t3", "region_id": "g2", "effective_from": "2026-02-10"}]
    result = views(
        [
            visit("v1", "2026-02-09T10:00:00Z", rep="r9", customer="c9"),  # no record at all
            visit("v2", "2026-02-09T11:00:00Z", rep="r3", customer="c3"),  # record starts later
            visit("v3", "2026-02-10T10:00:00Z", rep="r3", customer="c3"),  # record in force
        ],
        org=org,
    )
    one = {"visits": 1, "visits_completed": 1, "new_customers": 1}
    two = {"visits": 2, "visits_completed": 2, "new_customers": 2}
    assert result["kpi_daily"] == sorted(
        [
            kpi("2026-02-09", "rep", "r9", **one),
            kpi("2026-02-09", "rep", "r3", **one),
            kpi("2026-02-09", "team", "unassigned", **two),
            kpi("2026-02-09", "region", "unassigned", **two),
            kpi("2026-02-09", "company", "all", **two),
            *kpi4("2026-02-10", "r3", "t3", "g2", visits=1, visits_completed=1),
        ]
    )


def test_days_are_taken_in_the_reporting_time_zone() -> None:
    events = [
        call("c1", "2026-03-01T15:59:59Z", seconds=10),  # Shanghai 03-01 23:59:59
        call("c2", "2026-03-01T16:00:00Z", seconds=20, outcome="no_answer"),  # Shanghai 03-02 00:00
        call("c3", "2026-03-01T20:30:00-05:00", seconds=30),  # 03-02 01:30 UTC = Shanghai 03-02 09:30
        call("c4", "2026-03-02T07:59:59+08:00", seconds=40, outcome="busy"),  # UTC 03-01 23:59:59
        # Created Shanghai 03-02 00:30 (UTC 03-01), won Shanghai 03-03 23:00: cycle 1 day (UTC would say 2).
        deal("d1", "2026-03-01T16:30:00Z", "proposal", "500"),
        deal("d2", "2026-03-03T15:00:00Z", "won", "500"),
    ]
    result = views(events, tz="Asia/Shanghai")
    assert result["kpi_daily"] == sorted(
        kpi4("2026-03-01", "r1", "t1", "g1", calls=1, calls_connected=1, call_seconds=10, new_customers=1)
        + kpi4("2026-03-02", "r1", "t1", "g1", calls=3, calls_connected=1, call_seconds=90, deals_created=1)
        + kpi4("2026-03-03", "r1", "t1", "g1", deals_won=1, won_amount=Decimal("500.0000"), cycle_days_sum=1)
    )
    # In UTC the same events fall on other days.
    assert [row[:3] for row in views(events)["kpi_daily"] if row[1] == "rep"] == [
        (date(2026, 3, 1), "rep", "r1"),
        (date(2026, 3, 2), "rep", "r1"),
        (date(2026, 3, 3), "rep", "r1"),
    ]
    calls = 3 + KPI_COLUMNS.index("calls")
    assert [row[calls] for row in views(events)["kpi_daily"] if row[1] == "rep"] == [3, 1, 0]  # per UTC day


def test_amounts_convert_and_round_half_to_even() -> None:
    result = views(
        [
            # 1000.00375 × 1.08 = 1080.0040500 → 1080.0040 (half-up would give 1080.0041).
            deal("d1", "2026-02-01T01:00:00Z", "proposal", "1000.00375", deal_id="DE1", currency="EUR"),
            # 1000.00875 × 1.08 = 1080.0094500 → 1080.0094.
            deal("d2", "2026-02-01T02:00:00Z", "won", "1000.00875", deal_id="DE2", currency="EUR"),
            # 10.00005 → 10.0000 (the 4th decimal 0 is even).
            deal("d3", "2026-02-01T03:00:00Z", "prospecting", "10.00005", deal_id="DU1", currency="USD"),
            # 99.99995 → 100.0000 (9 is odd: up); no currency: the reporting currency.
            deal("d4", "2026-02-01T04:00:00Z", "won", "99.99995", deal_id="DU2"),
        ]
    )
    # won_amount = 1080.0094 + 100.0000; both created and won the same day: cycle 0.
    assert result["kpi_daily"] == sorted(
        kpi4(
            "2026-02-01",
            "r1",
            "t1",
            "g1",
            new_customers=1,
            deals_created=4,
            deals_won=2,
            won_amount=Decimal("1180.0094"),
        )
    )
    assert [(row[0], row[7], row[8], row[15], row[16]) for row in result["deals_current"]] == [
        ("DE1", Decimal("1080.0040"), "USD", Decimal("1000.0037500000"), "EUR"),
        ("DE2", Decimal("1080.0094"), "USD", Decimal("1000.0087500000"), "EUR"),
        ("DU1", Decimal("10.0000"), "USD", Decimal("10.0000500000"), "USD"),
        ("DU2", Decimal("100.0000"), "USD", Decimal("99.9999500000"), "USD"),
    ]
    # Weighted: 1080.0040 × 0.50 = 540.0020; 10.0000 × 0.10 = 1.0000.
    assert result["pipeline_current"] == sorted(
        [
            (level, entity, "proposal", 1, Decimal("1080.0040"), Decimal("540.00200000"))
            for level, entity in levels()
        ]
        + [
            (level, entity, "prospecting", 1, Decimal("10.0000"), Decimal("1.00000000"))
            for level, entity in levels()
        ]
    )


def test_new_customer_ties_go_to_the_smaller_event_id() -> None:
    result = views(
        [
            # Same instant; "a-call" < "b-visit", though delivered second: c7 is new under r2.
            visit("b-visit", "2026-02-01T10:00:00Z", rep="r1", customer="c7"),
            call("a-call", "2026-02-01T18:00:00+08:00", rep="r2", customer="c7"),
            # An earlier event delivered later is still the first: c8 is new on 02-03 under r2.
            visit("v-late", "2026-02-05T10:00:00Z", rep="r1", customer="c8"),
            call("c-early", "2026-02-03T10:00:00Z", rep="r2", customer="c8", seconds=0, outcome="voicemail"),
        ]
    )
    assert result["kpi_daily"] == sorted(
        [
            kpi("2026-02-01", "rep", "r1", visits=1, visits_completed=1),
            kpi("2026-02-01", "team", "t1", visits=1, visits_completed=1),
            kpi("2026-02-01", "rep", "r2", calls=1, calls_connected=1, call_seconds=60, new_customers=1),
            kpi("2026-02-01", "team", "t2", calls=1, calls_connected=1, call_seconds=60, new_customers=1),
            *[
                kpi(
                    "2026-02-01",
                    level,
                    entity,
                    visits=1,
                    visits_completed=1,
                    calls=1,
                    calls_connected=1,
                    call_seconds=60,
                    new_customers=1,
                )
                for level, entity in (("region", "g1"), ("company", "all"))
            ],
            *kpi4("2026-02-03", "r2", "t2", "g1", calls=1, new_customers=1),
            *kpi4("2026-02-05", "r1", "t1", "g1", visits=1, visits_completed=1),
        ]
    )


def test_duplicates_the_first_copy_wins_whatever_the_later_content() -> None:
    result = views(
        [
            visit("e1", "2026-02-01T10:00:00Z"),
            visit("e1", "2026-02-02T10:00:00Z", rep="r2", customer="c2", outcome="cancelled"),  # duplicate
            call("e1", "2026-02-01T11:00:00Z"),  # same id on another topic: duplicate
            deal("e2", "2026-02-01T12:00:00Z", "prospecting", "100"),
            deal("e2", "2026-02-03T12:00:00Z", "won", "900"),  # duplicate: D1 is not won
            deal("e3", "2026-02-02T12:00:00Z", "qualified", "100"),
            feedback("e4", "2026-02-02T13:00:00Z", "csat", 5),
            feedback("e4", "2026-02-02T13:00:00Z", "nps", 0, category="complaint"),  # duplicate
            visit("e1", "2026-02-01T10:00:00Z"),  # identical redelivery
        ]
    )
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", visits=1, visits_completed=1, new_customers=1, deals_created=1)
        + kpi4("2026-02-02", "r1", "t1", "g1", csat_count=1, csat_sum=5, csat_satisfied=1)
    )
    [row] = result["deals_current"]
    assert row[5:8] == ("qualified", "open", Decimal("100.0000"))
    assert row[9:12] == (utc(2026, 2, 1, 12), utc(2026, 2, 2, 12), utc(2026, 2, 2, 12))


def test_feedback_columns() -> None:
    events = [
        feedback("f1", "2026-02-01T01:00:00Z", "csat", 4),  # satisfied
        feedback("f2", "2026-02-01T02:00:00Z", "csat", 3, category="complaint"),
        feedback("f3", "2026-02-01T03:00:00Z", "nps", 6),  # detractor
        feedback("f4", "2026-02-01T04:00:00Z", "nps", 7),  # passive
        feedback("f5", "2026-02-01T05:00:00Z", "nps", 8, category="praise"),  # passive
        feedback("f6", "2026-02-01T06:00:00Z", "nps", 9, category="complaint"),  # promoter
    ]
    assert views(events)["kpi_daily"] == sorted(
        kpi4(
            "2026-02-01",
            "r1",
            "t1",
            "g1",
            new_customers=1,
            csat_count=2,
            csat_sum=7,
            csat_satisfied=1,
            nps_count=4,
            nps_promoters=1,
            nps_detractors=1,
            complaints=2,
        )
    )


def test_owner_change_and_a_won_run_that_changes_owner() -> None:
    result = views(
        [
            deal("d1", "2026-02-01T10:00:00Z", "proposal", "100", rep="r1"),
            deal("d2", "2026-02-03T10:00:00Z", "won", "100", rep="r1"),
            deal("d3", "2026-02-04T10:00:00Z", "won", "100", rep="r2"),  # handed over after the win
        ]
    )
    # Created under r1; won under r1 (the closing event is the first of the final `won` run).
    assert result["kpi_daily"] == sorted(
        kpi4("2026-02-01", "r1", "t1", "g1", new_customers=1, deals_created=1)
        + kpi4("2026-02-03", "r1", "t1", "g1", deals_won=1, won_amount=Decimal("100.0000"), cycle_days_sum=2)
    )
    [row] = result["deals_current"]
    assert row[1:4] == ("r2", "t2", "g1")
    # stage_conversion follows the current owner.
    assert {(level, entity) for level, entity, *_ in result["stage_conversion"]} == set(levels("r2", "t2"))


def test_stage_conversion_skips_regressions_and_losses() -> None:
    result = views(
        [
            deal("a1", "2026-02-01T10:00:00Z", "prospecting", deal_id="A"),
            deal("a2", "2026-02-02T10:00:00Z", "proposal", deal_id="A"),  # skips qualified: highest proposal
            deal("b1", "2026-02-01T11:00:00Z", "prospecting", deal_id="B"),
            deal("b2", "2026-02-02T11:00:00Z", "qualified", deal_id="B"),
            deal("b3", "2026-02-03T11:00:00Z", "lost", deal_id="B"),  # highest qualified
            deal("c1", "2026-02-01T12:00:00Z", "negotiation", deal_id="C"),
            deal("c2", "2026-02-02T12:00:00Z", "qualified", deal_id="C"),  # regresses: highest negotiation
        ]
    )
    # prospecting: entered A, B, C; advanced A, B, C.   qualified: entered 3, advanced A, C.
    # proposal: entered A, C; advanced C.                negotiation: entered C; advanced none.
    per_stage = [("negotiation", 4, 1, 0, 0.0), ("proposal", 3, 2, 1, 0.5), ("prospecting", 1, 3, 3, 1.0)]
    per_stage.append(("qualified", 2, 3, 2, 2 / 3))
    assert result["stage_conversion"] == sorted(
        (level, entity, *cells) for level, entity in levels() for cells in per_stage
    )
    # Open: A in proposal (50 weighted), C in qualified (25 weighted).
    assert result["pipeline_current"] == sorted(
        [
            (level, entity, "proposal", 1, Decimal("100.0000"), Decimal("50.00000000"))
            for level, entity in levels()
        ]
        + [
            (level, entity, "qualified", 1, Decimal("100.0000"), Decimal("25.00000000"))
            for level, entity in levels()
        ]
    )


def test_a_deal_that_only_ever_was_lost_enters_no_stage() -> None:
    # Reading of semantics.md: `lost` is not a stage reached, so such a deal has no stage_conversion row.
    result = views([deal("d1", "2026-02-01T10:00:00Z", "lost", lost_reason="spam")])
    assert result["stage_conversion"] == []
    [row] = result["deals_current"]
    assert row[5:7] == ("lost", "lost") and row[13] == utc(2026, 2, 1, 10) and row[17] == "spam"


def test_linked_activities_move_last_activity_at_and_deal_ids_without_deal_events_are_not_deals() -> None:
    result = views(
        [
            deal("d1", "2026-02-01T10:00:00Z", "proposal", expected_close_date="2026-03-31"),
            call("c1", "2026-02-05T10:00:00.123456Z", deal_id="D1"),
            feedback("f1", "2026-02-04T10:00:00Z", "csat", 5, deal_id="D1"),
            visit("v1", "2026-02-06T10:00:00Z", deal_id="GHOST"),
        ]
    )
    [row] = result["deals_current"]
    assert row[0] == "D1"
    assert row[11:13] == (utc(2026, 2, 5, 10, 0, 0, 123456), date(2026, 3, 31))
    assert row[14] == utc(2026, 2, 1, 10)  # updated_at: the deal event, not the activity
