"""The worker's Faust tables on RocksDB (issue: production deployment), through a restart.

The pipeline scenario is published in two halves to a worker with SALESPULSE_TABLE_STORE=rocksdb,
stopped and started again between them. The views equal the independent model, and the
reference tables (``/reference``) hold every org record after the restart, reopened from disk.
"""

import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.scenario import build_scenario
from tests.support.pipeline import (
    actual_views,
    assert_views_equal,
    expected_for,
    publish_events,
    publish_org,
    scenario_env,
    wait_consumed,
)
from tests.support.processes import Publisher

pytestmark = pytest.mark.integration

SCENARIO = build_scenario()


def reference(worker: WorkerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/reference", timeout=5) as response:
        return dict(orjson.loads(response.read()))


def org_entries(records: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(r["rep_id"], r["effective_from"], r["team_id"], r["region_id"]) for r in records}


def test_rocksdb_tables_survive_a_restart_and_the_views_stay_exact(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher]
) -> None:
    # The embedded broker reports a partition's end as the first offset of its last batch + 1, so
    # Faust's start-up check would see RocksDB "ahead" of the changelog: off here, on with Kafka.
    worker = make_worker(
        **scenario_env(SCENARIO), SALESPULSE_TABLE_STORE="rocksdb", SALESPULSE_TABLE_CONSISTENCY_CHECK="false"
    )
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    half = len(SCENARIO.events) // 2
    first = publish_org(publisher, SCENARIO.org) + publish_events(publisher, SCENARIO.events[:half])
    wait_consumed(worker, first)

    latest = {(r["rep_id"], r["effective_from"]): r for r in SCENARIO.org}  # a later record replaces one
    expected_org = org_entries(list(latest.values()))
    wait_until(lambda: org_entries(reference(worker)["org"]) == expected_org, 60, "the org table filled")

    assert worker.stop() == 0
    assert any((worker.data_dir / "tables").rglob("*.sst")) or any(
        (worker.data_dir / "tables").rglob("CURRENT")
    )
    worker.start()
    worker.wait_ready()
    # No org record is published again: the table comes back from disk (once Faust reassigned it).
    wait_until(lambda: org_entries(reference(worker)["org"]) == expected_org, 60, "the org table reopened")

    second = publish_events(publisher, SCENARIO.events[half:])
    wait_consumed(worker, second)  # the restarted worker counts from zero
    assert_views_equal(actual_views(worker), expected_for(SCENARIO))
