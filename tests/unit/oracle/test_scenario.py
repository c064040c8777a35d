"""The acceptance scenario: valid events, the special cases it promises, and its malformed messages."""

import json
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import ValidationError

from salespulse.schemas import ACTIVITY_MODELS, OrgRecord
from tests.oracle.reference_model import DEALS_CURRENT_COLUMNS, KPI_COLUMNS, expected_views
from tests.oracle.scenario import MAX_EVENT_BYTES, Malformed, Scenario, build_malformed, build_scenario

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario()


@pytest.fixture(scope="module")
def views(scenario: Scenario) -> dict[str, list[tuple[Any, ...]]]:
    return expected_views(
        scenario.org,
        scenario.events,
        timezone=scenario.timezone,
        reporting_currency=scenario.reporting_currency,
        currency_rates=scenario.currency_rates,
    )


@pytest.fixture(scope="module")
def deals(views: dict[str, list[tuple[Any, ...]]]) -> dict[str, dict[str, Any]]:
    return {row[0]: dict(zip(DEALS_CURRENT_COLUMNS, row, strict=True)) for row in views["deals_current"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def naive_utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A Shanghai wall-clock moment of 2026 as a naive UTC datetime."""
    moment = datetime(2026, month, day, hour, minute, second, micro, tzinfo=SHANGHAI)
    return moment.astimezone(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- shape


def test_every_event_validates_with_its_model(scenario: Scenario) -> None:
    for event in scenario.events:
        model = ACTIVITY_MODELS[event["event_type"]]
        parsed = model.model_validate_json(orjson.dumps(event))
        assert parsed.event_id == event["event_id"]


def test_every_org_record_validates(scenario: Scenario) -> None:
    for record in scenario.org:
        OrgRecord.model_validate_json(orjson.dumps(record))


def test_the_scenario_is_deterministic_and_the_seed_matters() -> None:
    assert build_scenario(7) == build_scenario(7)
    assert build_scenario(8).events != build_scenario(7).events
    assert build_malformed(7) == build_malformed(7)


def test_size_and_mix(scenario: Scenario) -> None:
    counts = scenario.counts()
    assert 1_900 <= len(scenario.events) <= 2_300, counts
    assert set(counts) == {"visit", "call", "deal", "feedback"}
    assert len({event["event_id"] for event in scenario.events}) == len(scenario.events)
    moments = [at(event["occurred_at"]) for event in scenario.events]
    assert (max(moments) - min(moments)).days >= 55


def test_the_org(scenario: Scenario) -> None:
    org = scenario.org
    assert len({record["region_id"] for record in org}) == 2
    assert len({record["team_id"] for record in org}) == 3
    reps_with_records = {record["rep_id"] for record in org}
    assert len(reps_with_records) == 6
    event_reps = {event["rep_id"] for event in scenario.events}
    assert event_reps - reps_with_records == {scenario.special["unassigned_rep"]}
    # The team change: two keys, different team and region.
    mover = [r for r in org if r["rep_id"] == scenario.special["team_change_rep"]]
    assert len({r["effective_from"] for r in mover}) == 2
    assert len({r["team_id"] for r in mover}) == 2 and len({r["region_id"] for r in mover}) == 2
    # The replaced record: the same key twice, a different team, the later one last.
    keys = Counter((r["rep_id"], r["effective_from"]) for r in org)
    [(replaced_key, _)] = [(key, n) for key, n in keys.items() if n == 2]
    assert replaced_key[0] == scenario.special["replaced_org_record_rep"]
    first, second = [r for r in org if (r["rep_id"], r["effective_from"]) == replaced_key]
    assert first["team_id"] != second["team_id"]


def test_day_boundaries_matter(scenario: Scenario) -> None:
    """Enough events where the Shanghai date differs from the UTC date and from the date as written."""
    moments = [at(event["occurred_at"]) for event in scenario.events]
    differs_from_utc = [m for m in moments if m.astimezone(SHANGHAI).date() != m.astimezone(UTC).date()]
    differs_from_text = [m for m in moments if m.astimezone(SHANGHAI).date() != m.date()]
    near_midnight = [m for m in moments if abs(m.astimezone(SHANGHAI).hour * 60 + m.minute - 720) >= 680]
    assert len(differs_from_utc) >= 200
    assert len(differs_from_text) >= 50
    assert len(near_midnight) >= 100


# --------------------------------------------------------------------------- coverage


def test_every_outcome_direction_and_score(scenario: Scenario) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in scenario.events:
        by_type.setdefault(event["event_type"], []).append(event)
    assert {e["outcome"] for e in by_type["visit"]} == {"completed", "cancelled", "no_show"}
    call_kinds = {(e["direction"], e["outcome"]) for e in by_type["call"]}
    assert call_kinds == {
        (d, o) for d in ("outbound", "inbound") for o in ("connected", "no_answer", "busy", "voicemail")
    }
    feedback = by_type["feedback"]
    assert {e["score"] for e in feedback if e["score_type"] == "csat"} == {1, 2, 3, 4, 5}
    assert {e["score"] for e in feedback if e["score_type"] == "nps"} == set(range(11))
    assert {e["score_type"] for e in feedback if e.get("category") == "complaint"} == {"csat", "nps"}
    assert {e.get("currency") for e in by_type["deal"]} == {"USD", "EUR", None}
    assert any(isinstance(e["amount"], int) for e in by_type["deal"])
    linked = [e for e in scenario.events if e["event_type"] != "deal" and "deal_id" in e]
    assert {e["event_type"] for e in linked} == {"visit", "call", "feedback"}


def test_every_kpi_column_is_exercised(views: dict[str, list[tuple[Any, ...]]]) -> None:
    company = [row for row in views["kpi_daily"] if row[1] == "company"]
    for index, column in enumerate(KPI_COLUMNS):
        assert any(row[3 + index] for row in company), column
    entities = {(row[1], row[2]) for row in views["kpi_daily"]}
    assert {("team", "unassigned"), ("region", "unassigned"), ("rep", "rep-07")} <= entities
    assert {entity for level, entity in entities if level == "team"} == {
        "team-beijing",
        "team-tianjin",
        "team-guangzhou",
        "unassigned",
    }


def test_deal_statuses_and_stages(
    deals: dict[str, dict[str, Any]], views: dict[str, list[tuple[Any, ...]]]
) -> None:
    statuses = Counter(deal["status"] for deal in deals.values())
    assert statuses["won"] >= 15 and statuses["lost"] >= 10 and statuses["open"] >= 20
    open_stages = {deal["stage"] for deal in deals.values() if deal["status"] == "open"}
    assert open_stages == {"prospecting", "qualified", "proposal", "negotiation"}
    assert {row[2] for row in views["pipeline_current"]} == open_stages
    assert {row[2] for row in views["stage_conversion"]} == open_stages
    assert len({deal["rep_id"] for deal in deals.values()}) == 7


def test_ties_and_late_arrivals_are_in_delivery_order(scenario: Scenario) -> None:
    seen: dict[str, datetime] = {}
    same_instant = late = 0
    for event in scenario.deal_events:
        moment = at(event["occurred_at"])
        newest = seen.get(event["deal_id"])
        if newest is not None and moment == newest:
            same_instant += 1
        if newest is not None and moment < newest:
            late += 1
        seen[event["deal_id"]] = max(moment, newest or moment)
    assert same_instant >= 2 and late >= 2


# --------------------------------------------------------------------------- special cases


def test_special_deals(scenario: Scenario, deals: dict[str, dict[str, Any]]) -> None:
    s = scenario.special
    simple = deals[s["won_simple"]]
    assert (simple["status"], simple["closed_at"]) == ("won", naive_utc(2, 18, 11))
    assert simple["last_activity_at"] == naive_utc(3, 1, 14)  # a linked visit after the win
    assert simple["expected_close_date"] == date(2026, 3, 1)
    assert (deals[s["lost"]]["status"], deals[s["lost"]]["lost_reason"]) == ("lost", "competitor")
    for stage in ("prospecting", "qualified", "proposal", "negotiation"):
        assert (deals[s[f"open_{stage}"]]["stage"], deals[s[f"open_{stage}"]]["status"]) == (stage, "open")
    assert deals[s["skips_stages"]]["status"] == "won"

    regress = deals[s["regresses"]]
    assert (regress["stage"], regress["stage_entered_at"]) == ("qualified", naive_utc(2, 22, 10))
    assert regress["amount"] == Decimal("13500.0000")

    reopened = deals[s["won_then_reopened"]]
    assert (reopened["status"], reopened["closed_at"], reopened["stage_entered_at"]) == (
        "open",
        None,
        naive_utc(2, 24, 10),
    )
    rewon = deals[s["won_reopened_won"]]
    assert (rewon["status"], rewon["closed_at"], rewon["amount"]) == (
        "won",
        naive_utc(3, 5, 10),
        Decimal("23500.0000"),
    )
    corrected = deals[s["amount_corrected"]]
    assert (corrected["closed_at"], corrected["updated_at"], corrected["amount"]) == (
        naive_utc(2, 17, 10),
        naive_utc(2, 23, 10),
        Decimal("21500.5000"),
    )

    assert deals[s["owner_changes"]]["rep_id"] == "rep-02"
    transferred = deals[s["won_then_transferred"]]
    assert (transferred["rep_id"], transferred["team_id"], transferred["region_id"]) == (
        "rep-05",
        "team-guangzhou",
        "south",
    )
    assert transferred["closed_at"] == naive_utc(2, 20, 23, 50)

    money = {
        "eur_half_even_open": (Decimal("1080.0040"), Decimal("1000.0037500000"), "EUR"),
        "eur_half_even_won": (Decimal("1080.0094"), Decimal("1000.0087500000"), "EUR"),
        "eur_many_decimals": (Decimal("2700.1333"), Decimal("2500.1234567890"), "EUR"),
        "usd_half_even_down": (Decimal("10.0000"), Decimal("10.0000500000"), "USD"),
        "usd_half_even_up": (Decimal("100.0000"), Decimal("99.9999500000"), "USD"),
        "currency_omitted": (Decimal("7777.7777"), Decimal("7777.7777000000"), "USD"),
        "integer_amount": (Decimal("15000.0000"), Decimal("15000.0000000000"), "USD"),
        "currency_changes": (Decimal("1333.3333"), Decimal("1234.5678900000"), "EUR"),
    }
    for name, (amount, original, currency) in money.items():
        deal = deals[s[name]]
        assert (deal["amount"], deal["currency"], deal["original_amount"], deal["original_currency"]) == (
            amount,
            "USD",
            original,
            currency,
        ), name

    tie = deals[s["tie_same_instant"]]
    assert (tie["stage"], tie["amount"], tie["stage_entered_at"]) == (
        "negotiation",
        Decimal("32000.0000"),
        naive_utc(2, 16, 15),
    )
    tie_close = deals[s["tie_on_close"]]
    assert (tie_close["status"], tie_close["lost_reason"], tie_close["closed_at"]) == (
        "lost",
        "budget cut",
        naive_utc(2, 24, 17, 30, 0, 250000),
    )

    late = deals[s["late_first_event"]]
    assert (late["created_at"], late["stage"], late["rep_id"]) == (
        naive_utc(2, 8, 10),
        "negotiation",
        "rep-02",
    )
    late_won = deals[s["late_older_event_after_win"]]
    assert (late_won["status"], late_won["updated_at"]) == ("won", naive_utc(2, 20, 10))

    moved = deals[s["team_change_win"]]
    assert (moved["team_id"], moved["region_id"], moved["closed_at"]) == (
        "team-guangzhou",
        "south",
        naive_utc(3, 2, 0, 10),
    )
    assert (deals[s["unassigned_rep_deal"]]["team_id"], deals[s["unassigned_rep_deal"]]["region_id"]) == (
        "unassigned",
        "unassigned",
    )
    linked = deals[s["linked_activities"]]
    assert linked["last_activity_at"] == naive_utc(3, 10, 16, 45, 12, 345678)
    assert linked["last_activity_at"] > linked["updated_at"]
    assert s["not_a_deal"] not in deals


def test_special_kpis(scenario: Scenario, views: dict[str, list[tuple[Any, ...]]]) -> None:
    rows = {
        (row[0], row[1], row[2]): dict(zip(KPI_COLUMNS, row[3:], strict=True)) for row in views["kpi_daily"]
    }
    # The deal rep-03 won 10 minutes into its first day in team-guangzhou/south (UTC: the day before).
    assert rows[(date(2026, 3, 2), "team", "team-guangzhou")]["deals_won"] >= 1
    assert rows[(date(2026, 3, 2), "region", "south")]["deals_won"] >= 1
    # rep-06 has no record before 02-05: its deal created on 02-03 is unassigned.
    assert rows[(date(2026, 2, 3), "team", "unassigned")]["deals_created"] >= 1
    # The late-arriving first event of deal-late created the deal under rep-01 on 02-08.
    assert rows[(date(2026, 2, 8), "rep", "rep-01")]["deals_created"] >= 1


def test_new_customer_special_cases(scenario: Scenario) -> None:
    s = scenario.special
    by_customer: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, event in enumerate(scenario.events):
        by_customer.setdefault(event["customer_id"], []).append((index, event))

    def first(customer: str) -> dict[str, Any]:
        events = [event for _, event in by_customer[customer]]
        return min(events, key=lambda event: (at(event["occurred_at"]), event["event_id"]))

    for kind in ("visit", "call", "deal", "feedback"):
        assert first(s[f"first_event_{kind}"])["event_type"] == kind
    (i_b, b), (i_a, a) = by_customer[s["first_event_tie"]]
    assert at(a["occurred_at"]) == at(b["occurred_at"]) and a["event_id"] < b["event_id"] and i_a > i_b
    assert first(s["first_event_tie"]) is a
    late = by_customer[s["first_event_late"]]
    assert first(s["first_event_late"]) is late[-1][1]  # the first event is delivered last


# --------------------------------------------------------------------------- malformed messages


def _classify(message: Malformed, rates: dict[str, str]) -> str:
    """The reason the schema models and the JSON grammar give for a message (independently of the decoder)."""
    value = message.value
    if not value:
        return "empty_message"
    if len(value) > MAX_EVENT_BYTES:
        return "payload_too_large"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    try:
        parsed = json.loads(text)  # like pydantic's parser, accepts NaN and Infinity
    except ValueError:
        return "invalid_json"
    if not isinstance(parsed, dict):
        return "not_an_object"
    try:
        event = ACTIVITY_MODELS[message.topic_type].model_validate_json(value)
    except ValidationError as error:
        kinds = {detail["type"] for detail in error.errors()}
        if kinds == {"event_type_mismatch"}:
            return "wrong_event_type"
        if kinds == {"missing"}:
            return "missing_field"
        return "invalid_value"
    currency = getattr(event, "currency", None)
    if currency not in (None, "USD", *rates):
        return "unknown_currency"
    return "accepted"


def test_malformed_messages(scenario: Scenario) -> None:
    messages = build_malformed()
    assert len(messages) >= 100
    assert len({m.kind for m in messages}) >= 12
    assert len({m.label for m in messages}) == len(messages)
    assert {m.expected_reason for m in messages} == {
        "invalid_json",
        "not_utf8",
        "not_an_object",
        "missing_field",
        "invalid_value",
        "wrong_event_type",
        "unknown_currency",
        "payload_too_large",
        "empty_message",
    }
    for message in messages:
        assert _classify(message, scenario.currency_rates) == message.expected_reason, message.label


def test_malformed_messages_cannot_touch_the_scenario(scenario: Scenario) -> None:
    valid_ids = {event["event_id"] for event in scenario.events}
    valid_values = {event["customer_id"] for event in scenario.events}
    valid_values |= {event["deal_id"] for event in scenario.events if "deal_id" in event}
    for message in build_malformed():
        assert message.label not in valid_ids
        if message.value and len(message.value) <= MAX_EVENT_BYTES:
            try:
                body = json.loads(message.value)
            except ValueError:
                continue
            if isinstance(body, dict):
                assert body.get("event_id") not in valid_ids
                assert body.get("customer_id") not in valid_values
                assert body.get("deal_id") not in valid_values
