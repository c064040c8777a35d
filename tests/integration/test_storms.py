"""Storms: 50,000 events with 30% duplicates, random order within each deal and late arrivals."""

from collections.abc import Callable

import pytest

from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.reference_model import expected_views
from tests.oracle.storm import build_storm
from tests.support.pipeline import (
    actual_views,
    assert_views_equal,
    publish_events,
    publish_org,
    sorted_views,
    wait_consumed,
)
from tests.support.processes import Publisher


def test_a_storm_of_duplicates_and_disorder_gives_exact_views(
    make_worker: Callable[..., WorkerProcess],
    make_publisher: Callable[[str], Publisher],
    capsys: pytest.CaptureFixture[str],
) -> None:
    storm = build_storm(seed=3, reps=130, days=120)
    assert len(storm.unique_events) >= 50_000 and storm.duplicates >= 0.3 * len(storm.unique_events) - 1
    # Late events land on their own day, days after others of later days arrived.
    late_days = {event["occurred_at"][:10] for event in storm.delivery[-storm.late :]}
    assert len(late_days) > 30

    worker = make_worker()
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    total = publish_org(publisher, storm.org) + publish_events(publisher, storm.delivery)
    wait_consumed(worker, total, timeout=300)

    expected = expected_views(
        storm.org, storm.unique_events, timezone="UTC", reporting_currency="USD", currency_rates={}
    )
    assert_views_equal(actual_views(worker), sorted_views(expected))
    assert worker.counter("salespulse_events_duplicate_total") == storm.duplicates
    assert worker.counter("salespulse_events_accepted_total") == len(storm.unique_events) + len(storm.org)
    with capsys.disabled():
        print(
            f"\n  storm: {len(storm.delivery)} messages, {len(storm.unique_events)} events, "
            f"{storm.duplicates} duplicates, {storm.late} late; views exact"
        )
