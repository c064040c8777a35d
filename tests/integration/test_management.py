"""Targets and attainment, leaderboards and follow-ups (contract §5), through the real broker and chDB.

One worker in ``--clock event`` mode reads the managers' scenario (tests/oracle/management_scenario.py);
the Q1 targets arrive through ``salespulse targets import`` from a CSV with two bad rows. Every
row of target_attainment, leaderboard and followup_due is compared with the independent model.
"""

import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.management_scenario import (
    REP_08,
    REP_08_MARCH,
    TARGET_REPS,
    build_management_scenario,
    expected_attainment,
    expected_followups,
    expected_leaderboard,
)
from tests.oracle.reference_model import DEALS_CURRENT_COLUMNS, expected_views
from tests.support.pipeline import publish_events, publish_org, scenario_env, wait_consumed
from tests.support.processes import Publisher

SCENARIO = build_management_scenario()
ATTAINMENT_COLUMNS = (
    "period",
    "period_start",
    "level",
    "entity_id",
    "metric",
    "target",
    "actual",
    "attainment",
    "expected_by_now",
    "projected",
    "status",
    "forecast",
)
FLOAT_COLUMNS = {"attainment", "expected_by_now", "projected", "forecast", "value"}


@pytest.fixture(scope="module")
def expected_kpis() -> dict[str, list[tuple[Any, ...]]]:
    base = SCENARIO.base
    return expected_views(
        SCENARIO.org,
        SCENARIO.events,
        timezone=base.timezone,
        reporting_currency=base.reporting_currency,
        currency_rates=base.currency_rates,
    )


def cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = worker.environment() | {"SALESPULSE_CLICKHOUSE_URL": f"http://127.0.0.1:{worker.sql_port}"}
    return subprocess.run(
        [sys.executable, "-m", "salespulse", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def worker(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], tmp_path: Path
) -> Iterator[WorkerProcess]:
    worker = make_worker(
        **scenario_env(SCENARIO.base),
        SALESPULSE_CLOCK="event",
        SALESPULSE_FOLLOWUP_CHECK_INTERVAL_SECONDS="0.5",
    )
    worker.start()
    worker.wait_ready()
    publisher = make_publisher(worker.topic_prefix)
    total = publish_org(publisher, SCENARIO.org)
    total += publisher.send_all(("customers", c, message_key("customers", c)) for c in SCENARIO.customers)
    total += publisher.send_all(("targets", t, message_key("targets", t)) for t in SCENARIO.targets)

    csv_file = tmp_path / "q1-targets.csv"
    csv_file.write_text(SCENARIO.quarter_csv)
    imported = cli(worker, "targets", "import", str(csv_file))
    worker.import_output = imported  # type: ignore[attr-defined]
    total += len(SCENARIO.quarter_targets)

    total += publish_events(publisher, SCENARIO.events)
    wait_consumed(worker, total)
    yield worker


def _as_expected(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Timestamps as the views return them: naive UTC."""
    return tuple(v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)


def assert_rows_equal(
    actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], columns: tuple[str, ...]
) -> None:
    """Same rows in the same order; Float64 columns to 1e-9 relative (they are ratios of exact sums)."""
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}"
    for got, want in zip(actual, expected, strict=True):
        for name, g, w in zip(columns, got, want, strict=True):
            if name in FLOAT_COLUMNS and g is not None and w is not None:
                assert g == pytest.approx(w, rel=1e-9), (name, got, want)
            else:
                assert g == w, (name, got, want)


def test_targets_attainment_leaderboards_and_followups_equal_the_model(
    worker: WorkerProcess, expected_kpis: dict[str, list[tuple[Any, ...]]]
) -> None:
    # The CSV import: bad rows named with their line number and reason, good rows applied.
    imported = worker.import_output  # type: ignore[attr-defined]
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert f"published {len(SCENARIO.quarter_targets)} target(s)" in imported.stdout
    for line, word in SCENARIO.bad_csv_lines.items():
        assert any(
            f"q1-targets.csv:{line}:" in out and word in out for out in imported.stdout.splitlines()
        ), imported.stdout

    # target_attainment: every row, including the status boundaries of rep-08's March.
    want = expected_attainment(
        SCENARIO, expected_kpis["kpi_daily"], expected_kpis["deals_current"], DEALS_CURRENT_COLUMNS
    )
    got = worker.query(
        f"SELECT {', '.join(ATTAINMENT_COLUMNS)} FROM target_attainment "
        "ORDER BY period, period_start, level, entity_id, metric"
    )
    assert_rows_equal(got, want, ATTAINMENT_COLUMNS)
    statuses = {row[4]: row[10] for row in want if row[3] == REP_08 and row[1].month == 3}
    assert statuses == {metric: status for metric, (_, status) in REP_08_MARCH.items()}
    assert set(Counter(row[10] for row in want)) == {"achieved", "on_track", "at_risk", "off_track"}
    # Team targets are not invented for reps without their own; the replaced record is gone.
    assert {row[3] for row in got if row[2] == "rep"} == set(TARGET_REPS)
    assert all(row[5] != 999 for row in got)

    # leaderboard: exact ranks, ties shared, minimum volumes applied.
    leaderboard_columns = ("period", "period_start", "level", "metric", "rank", "entity_id", "value")
    want_board = expected_leaderboard(expected_kpis["kpi_daily"])
    got_board = worker.query(
        f"SELECT {', '.join(leaderboard_columns)} FROM leaderboard "
        "ORDER BY period, period_start, level, metric, rank, entity_id"
    )
    want_board.sort(key=lambda row: (row[0], row[1], row[2], row[3], row[4], row[5]))
    assert_rows_equal(got_board, want_board, leaderboard_columns)
    ranks = Counter((row[0], row[1], row[2], row[3], row[4]) for row in want_board)
    assert any(count > 1 for count in ranks.values()), "the scenario should contain a tie"
    ranked_for = {
        key: {row[5] for row in want_board if row[:4] == key} for key in {row[:4] for row in want_board}
    }
    assert any(
        ranked_for.get((*key[:3], "win_rate"), set()) < ranked_for[key]
        for key in ranked_for
        if key[3] == "won_amount"
    ), "some entity should miss the 5-closed-deals minimum"

    # followup_due: the due and overdue customers, their rep, team and timings.
    followup_columns = (
        "customer_id",
        "tier",
        "rep_id",
        "team_id",
        "region_id",
        "last_contact_at",
        "due_at",
        "overdue_days",
        "status",
    )
    want_due = [_as_expected(row) for row in expected_followups(SCENARIO)]
    got_due = worker.query(f"SELECT {', '.join(followup_columns)} FROM followup_due ORDER BY customer_id")
    assert_rows_equal(got_due, want_due, followup_columns)
    names = SCENARIO.followup_names
    assert {row[0] for row in got_due} >= {
        names["due_now"],
        names["never_contacted"],
        names["tier_change"],
        names["override"],
    }

    # The gauge, by team, tier and status.
    def gauge() -> dict[tuple[str, str, str], float]:
        return {
            (dict(labels)["team"], dict(labels)["tier"], dict(labels)["status"]): value
            for (name, labels), value in worker.metric_samples().items()
            if name == "salespulse_followups_due"
        }

    want_gauge = Counter((row[3], row[1], row[8]) for row in want_due)
    wait_until(
        lambda: gauge() == {key: float(count) for key, count in want_gauge.items()},
        30,
        f"the follow-ups gauge to show {dict(want_gauge)} (now {gauge()})",
    )

    # The CLI: follow-ups most overdue first, and the month's best per level and metric.
    listed = cli(worker, "followups", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    by_overdue = sorted(expected_followups(SCENARIO), key=lambda row: (-row[7], row[1], row[0]))
    assert [entry["customer_id"] for entry in orjson.loads(listed.stdout)] == [row[0] for row in by_overdue]

    board = cli(worker, "leaderboard", "--top", "1", "--format", "json")
    assert board.returncode == 0, board.stderr
    march = [
        row
        for row in expected_leaderboard(expected_kpis["kpi_daily"])
        if row[0] == "month" and row[1].month == 3 and row[4] == 1
    ]
    got = {(entry["level"], entry["metric"], entry["entity_id"]) for entry in orjson.loads(board.stdout)}
    assert got == {(row[2], row[3], row[5]) for row in march}
