"""`salespulse bench --short`: the CI smoke run of the benchmark.

It must complete, and its pipeline run must leave the views exact (the bench itself fails
otherwise). The figures are printed, not asserted: performance is judged from the full run.
"""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.e2e


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
    assert figures["pipeline"]["events_per_second"] > 0
    assert figures["ratio_pipeline_to_ceiling"] == pytest.approx(
        figures["pipeline"]["events_per_second"] / figures["ceiling_events_per_second"]
    )
    assert figures["freshness"]["events"] == 1_000  # 200/s for 5 s, every one seen in kpi_daily
    assert [entry["open_deals"] for entry in figures["memory"]] == [1_000, 5_000]
    assert all(entry["rss_mb"] > 0 for entry in figures["memory"])
