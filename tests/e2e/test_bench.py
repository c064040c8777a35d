"""`salespulse bench --short`: the CI smoke run of the benchmark.

It must complete, and its pipeline run must leave the views exact (the bench itself fails
otherwise). How fast is not asserted — performance is judged from the full run, beside its
baselines — but every figure must be the one its measurement defines: rates are events over
seconds, ratios are of the figures beside them, quantiles are ordered, memory is per run.
"""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest


def test_short_bench_completes_with_exact_views_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "salespulse", "bench", "--short", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=540,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    figures = orjson.loads(output.read_bytes())
    assert figures["events"] == 30_000
    pipeline = figures["pipeline"]
    assert pipeline["seconds"] > 0
    assert pipeline["events_per_second"] == pytest.approx(figures["events"] / pipeline["seconds"])
    assert figures["ratio_pipeline_to_ceiling"] == pytest.approx(
        pipeline["events_per_second"] / figures["ceiling_events_per_second"]
    )
    assert figures["ratio_pipeline_to_faust"] == pytest.approx(
        pipeline["events_per_second"] / figures["faust_bare_events_per_second"]
    )
    freshness = figures["freshness"]
    assert freshness["events"] == 1_000  # 200/s for 5 s, every one seen in kpi_daily
    assert 0 < freshness["p50_ms"] <= freshness["p95_ms"] <= freshness["p99_ms"]
    memory = figures["memory"]
    assert [entry["open_deals"] for entry in memory] == [1_000, 5_000]
    for entry in memory:
        assert entry["events"] == 3 * entry["open_deals"]  # three events per deal
        # The second pass reads as many events again for the same deals.
        assert entry["events_after_second_pass"] == 2 * entry["events"]
        # A worker with chDB holds a few hundred MB; more than a few GB for 5,000 deals is a leak.
        assert 100 < entry["rss_mb"] < 4_000 and 100 < entry["rss_mb_after_second_pass"] < 4_000
