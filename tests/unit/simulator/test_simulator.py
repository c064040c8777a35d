"""The simulator: deterministic, valid against the schemas, and as varied as real CRM traffic."""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from salespulse.kafka.producer import message_key
from salespulse.schemas import ACTIVITY_MODELS, REFERENCE_MODELS
from salespulse.schemas.events import FUNNEL_STAGES, OPEN_STAGES
from salespulse.simulator import SimulatedData, SimulationOptions, generate_history
from salespulse.simulator.live import _relive

START = date(2026, 1, 5)
DAYS = 120


@pytest.fixture(scope="module")
def history() -> SimulatedData:
    return generate_history(START, DAYS, seed=7)


def deal_histories(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    deals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["event_type"] == "deal":
            deals[event["deal_id"]].append(event)
    return deals


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def test_same_seed_same_history_other_seed_other_history(history: SimulatedData) -> None:
    assert generate_history(START, DAYS, seed=7) == history
    other = generate_history(START, DAYS, seed=8)
    assert other.events != history.events
    assert [record["rep_name"] for record in other.org] != [record["rep_name"] for record in history.org]


def test_a_shorter_history_is_a_prefix_of_a_longer_one(history: SimulatedData) -> None:
    shorter = generate_history(START, 40, seed=7)
    assert shorter.events == history.events[: len(shorter.events)]
    assert all(at(event) < datetime(2026, 2, 14, tzinfo=at(event).tzinfo) for event in shorter.events)
    assert at(history.events[len(shorter.events)]).date() >= date(2026, 2, 14)


def test_every_event_and_record_is_valid(history: SimulatedData) -> None:
    for event in history.events:
        ACTIVITY_MODELS[event["event_type"]].model_validate_json(orjson.dumps(event))
    for record_type, record in history.records():
        if record_type in REFERENCE_MODELS:
            REFERENCE_MODELS[record_type].model_validate_json(orjson.dumps(record))


def test_events_are_chronological_with_unique_ids_inside_the_period(history: SimulatedData) -> None:
    times = [at(event) for event in history.events]
    assert times == sorted(times)
    assert times[0] >= datetime(2026, 1, 5, tzinfo=times[0].tzinfo)
    assert times[-1] < datetime(2026, 5, 5, tzinfo=times[0].tzinfo)
    assert all(event["occurred_at"].endswith("+08:00") for event in history.events)
    assert len({event["event_id"] for event in history.events}) == len(history.events)


def test_every_type_outcome_stage_and_direction_occurs(history: SimulatedData) -> None:
    events = history.events
    by_type = Counter(event["event_type"] for event in events)
    assert set(by_type) == {"visit", "call", "deal", "feedback"}
    assert {event["outcome"] for event in events if event["event_type"] == "visit"} == {
        "completed",
        "cancelled",
        "no_show",
    }
    calls = [event for event in events if event["event_type"] == "call"]
    assert {call["outcome"] for call in calls} == {"connected", "no_answer", "busy", "voicemail"}
    assert {call["direction"] for call in calls} == {"outbound", "inbound"}
    assert all(call["duration_seconds"] > 0 for call in calls if call["outcome"] == "connected")
    assert {event["stage"] for event in events if event["event_type"] == "deal"} == set(FUNNEL_STAGES)
    assert len({event["source"] for event in events}) == 2  # one CRM per region


def test_activities_link_to_deals_that_exist(history: SimulatedData) -> None:
    deals = deal_histories(history.events)
    linked = Counter(event["event_type"] for event in history.events if "deal_id" in event)
    assert linked["visit"] > 50 and linked["call"] > 50 and linked["feedback"] > 10
    assert {event["deal_id"] for event in history.events if "deal_id" in event} <= set(deals)


def test_deals_move_through_the_funnel(history: SimulatedData) -> None:
    order = {stage: index for index, stage in enumerate(FUNNEL_STAGES)}
    for deal_id, events in deal_histories(history.events).items():
        assert events[0]["stage"] == "prospecting", deal_id
        for before, after in pairwise(events):
            assert before["stage"] != "lost", f"{deal_id} changed after it was lost"
            if before["stage"] == "won":  # a reopened deal goes back to negotiation
                assert after["stage"] == "negotiation", deal_id
            else:
                assert order[after["stage"]] >= order[before["stage"]], deal_id
        for event in events:
            assert (event["stage"] == "lost") == ("lost_reason" in event), deal_id


def test_won_lost_reopened_and_handed_over_deals(history: SimulatedData) -> None:
    deals = deal_histories(history.events)
    final = Counter(events[-1]["stage"] for events in deals.values())
    assert final["won"] >= 10 and final["lost"] >= 10 and sum(final[stage] for stage in OPEN_STAGES) >= 10
    reopened = [
        deal_id
        for deal_id, events in deals.items()
        if any(a["stage"] == "won" and b["stage"] != "won" for a, b in pairwise(events))
    ]
    assert reopened
    assert (
        len({event["lost_reason"] for events in deals.values() for event in events if "lost_reason" in event})
        >= 4
    )
    assert any(len({event["rep_id"] for event in events}) > 1 for events in deals.values())


def test_some_open_deals_stall(history: SimulatedData) -> None:
    """Idle for weeks, stuck in their stage, and past their expected close date."""
    deals = deal_histories(history.events)
    end = datetime(2026, 5, 5, tzinfo=at(history.events[0]).tzinfo)
    last_activity: dict[str, datetime] = {}
    for event in history.events:
        if "deal_id" in event:
            last_activity[event["deal_id"]] = at(event)
    open_deals = {deal_id: events for deal_id, events in deals.items() if events[-1]["stage"] in OPEN_STAGES}
    idle = [deal_id for deal_id in open_deals if end - last_activity[deal_id] > timedelta(days=21)]
    overdue = [
        deal_id
        for deal_id, events in open_deals.items()
        if "expected_close_date" in events[-1]
        and date.fromisoformat(events[-1]["expected_close_date"]) < end.date()
    ]
    stuck = []
    for deal_id, events in open_deals.items():
        entered = next(event for event in events if event["stage"] == events[-1]["stage"])
        if end - at(entered) > timedelta(days=30):
            stuck.append(deal_id)
    assert len(idle) >= 3 and len(overdue) >= 3 and len(stuck) >= 3
    # Some deals are still being worked on while their close date has passed.
    assert set(overdue) - set(idle)


def test_customers_are_tiered_and_new_ones_keep_coming(history: SimulatedData) -> None:
    tiers = Counter(record["tier"] for record in history.customers)
    assert set(tiers) == {"A", "B", "C"} and tiers["C"] > tiers["A"]
    assert any("follow_up_days" in record for record in history.customers)
    first_seen: dict[str, datetime] = {}
    for event in history.events:
        first_seen.setdefault(event["customer_id"], at(event))
    assert set(first_seen) <= {record["customer_id"] for record in history.customers}
    assert sum(1 for seen in first_seen.values() if seen.date() >= date(2026, 2, 1)) >= 10


def test_feedback_has_both_scales_every_category_and_chinese_comments(history: SimulatedData) -> None:
    feedback = [event for event in history.events if event["event_type"] == "feedback"]
    scores: dict[str, set[int]] = defaultdict(set)
    for event in feedback:
        scores[event["score_type"]].add(event["score"])
    assert scores["csat"] == {1, 2, 3, 4, 5}
    assert (
        scores["nps"]
        and scores["nps"] <= set(range(11))
        and max(scores["nps"]) >= 9
        and min(scores["nps"]) <= 6
    )
    assert {event.get("category") for event in feedback} == {"praise", "complaint", "suggestion", None}
    comments = [event["comment"] for event in feedback if "comment" in event]
    assert any("\u4e00" <= char <= "\u9fff" for comment in comments for char in comment)
    assert any(comment.isascii() for comment in comments)


def test_a_rep_changes_team_part_way(history: SimulatedData) -> None:
    by_rep: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in history.org:
        by_rep[record["rep_id"]].append(record)
    assert len(by_rep) == 12
    movers = {rep_id: records for rep_id, records in by_rep.items() if len(records) > 1}
    assert len(movers) == 1
    ((rep_id, (before, after)),) = movers.items()
    assert before["effective_from"] == "2026-01-05" and after["effective_from"] == "2026-03-06"
    assert before["team_id"] != after["team_id"] and before["region_id"] != after["region_id"]
    days = [at(event).date() for event in history.events if event["rep_id"] == rep_id]
    assert min(days) < date(2026, 3, 6) <= max(days)
    # Reporting lines: reps report to their team lead, team leads to the regional manager.
    teams = {record["team_id"] for record in history.org}
    assert len(teams) == 4 and len({record["region_id"] for record in history.org}) == 2
    leads = {record["rep_id"] for record in history.org if record["manager_id"].startswith("mgr-")}
    assert len(leads) == 4
    assert all(record["manager_id"] in leads for record in history.org if record["rep_id"] not in leads)


def test_targets_cover_every_level_metric_and_period(history: SimulatedData) -> None:
    targets = history.targets
    assert {record["level"] for record in targets} == {"rep", "team", "region", "company"}
    assert {record["metric"] for record in targets} == {
        "won_amount",
        "deals_won",
        "visits",
        "calls",
        "new_customers",
    }
    assert {(record["period"], record["period_start"]) for record in targets} == {
        ("month", "2026-01-01"),
        ("month", "2026-02-01"),
        ("month", "2026-03-01"),
        ("month", "2026-04-01"),
        ("month", "2026-05-01"),
        ("quarter", "2026-01-01"),
        ("quarter", "2026-04-01"),
    }
    keys = [message_key("targets", record) for record in targets]
    assert len(set(keys)) == len(targets)
    assert all(record["target"] > 0 for record in targets)
    # A period's targets do not depend on the window they were generated for.
    march = generate_history(date(2026, 3, 10), 5, seed=7).targets
    assert [record for record in march if record["period"] == "month"] == [
        record for record in targets if record["period"] == "month" and record["period_start"] == "2026-03-01"
    ]


def test_reference_keys_are_the_compaction_keys(history: SimulatedData) -> None:
    for record_type, record in history.records():
        key = message_key(record_type, record)
        if record_type in REFERENCE_MODELS:
            assert key == REFERENCE_MODELS[record_type].model_validate_json(orjson.dumps(record)).record_key
        else:
            assert key == record.get("deal_id", record["customer_id"])


def test_only_the_reporting_currency_unless_currencies_are_given(history: SimulatedData) -> None:
    assert not any("currency" in event for event in history.events)
    mixed = generate_history(START, 60, seed=7, options=SimulationOptions(currencies=("EUR", "CNY")))
    currencies = Counter(event.get("currency") for event in mixed.events if event["event_type"] == "deal")
    assert set(currencies) == {None, "EUR", "CNY"} and currencies[None] > currencies["EUR"]
    for events in deal_histories(mixed.events).values():
        assert len({event.get("currency") for event in events}) == 1


def test_sizes_are_configurable_and_checked() -> None:
    small = generate_history(
        START, 30, seed=1, options=SimulationOptions(regions=1, teams=2, reps=3, customers=6)
    )
    assert len(small.org) == 4 and len(small.customers) == 6
    assert {record["region_id"] for record in small.org} == {"east"}
    with pytest.raises(ValueError, match="reps must outnumber teams"):
        SimulationOptions(teams=4, reps=4)
    with pytest.raises(ValueError, match="at least one per region"):
        SimulationOptions(regions=3, teams=2)
    with pytest.raises(ValueError, match="ISO 4217"):
        SimulationOptions(currencies=("euro",))
    with pytest.raises(ValueError, match="days must be at least 1"):
        generate_history(START, 0, seed=1)


def test_history_ids_depend_on_seed_and_start_not_on_length() -> None:
    first = generate_history(START, 10, seed=7).events[0]["event_id"]
    assert generate_history(START, 30, seed=7).events[0]["event_id"] == first
    assert generate_history(START, 10, seed=8).events[0]["event_id"] != first
    assert (
        generate_history(START + timedelta(days=1), 10, seed=7).events[0]["event_id"].split("-")[1]
        != (first.split("-")[1])
    )


def test_write_jsonl_writes_what_publish_reads(history: SimulatedData, tmp_path: Path) -> None:
    paths = history.write_jsonl(tmp_path)
    lines = paths["events"].read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == history.events
    assert len(paths["org"].read_bytes().splitlines()) == len(history.org)


def test_live_events_are_restamped_to_now() -> None:
    simulated = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    event = {"event_type": "deal", "occurred_at": simulated.isoformat(), "expected_close_date": "2026-02-04"}
    now = datetime(2026, 7, 1, 23, 30, 15, 123456, tzinfo=UTC)
    relived = _relive(event, simulated, now, SimulationOptions().tz)
    # 23:30 UTC is already July 2 in China; the close date stays 30 days after the event.
    assert relived["occurred_at"] == "2026-07-02T07:30:15.123+08:00"
    assert relived["expected_close_date"] == "2026-08-01"
    assert event["occurred_at"] == simulated.isoformat()  # the input is left alone
