"""The Grafana dashboards, their provisioning and the compose file work against the real pipeline.

- Every ClickHouse panel's SQL runs against the views of a real worker (embedded broker and
  chDB) that has ingested the scenario of tests/oracle/scenario.py, returns at least one row and
  exactly the columns listed in ``EXPECTED_COLUMNS`` below; it reads only the contract views
  of contract §5; a few panels are compared with the independent reference model.
- Every Prometheus panel's PromQL parses (``promtool check rules``) and names only metrics the
  worker exports (salespulse/streams/metrics.py).
- ``docker-compose config -q`` accepts docker-compose.yml, and its services, mounts and the
  Grafana datasource uids fit together.

Grafana macros in the SQL are replaced the way the ClickHouse plugin expands them, with the
scenario's reporting period as the dashboard time range:

- ``$__dateFilter(col)``  →  ``col >= toDate('2026-02-01') AND col <= toDate('2026-03-31')``
- ``$__timeFilter(col)``  →  ``col >= toDateTime(<start, Unix s>) AND col <= toDateTime(<end, Unix s>)``

Any other ``$`` macro or variable fails the test: add its replacement here first.

The worker runs with ``SALESPULSE_CLOCK=event`` so that "now" is the scenario's last event and
the stall panels have stalled deals to show (contract §6); KPI views do not depend on the clock.

Needs Debian's ``docker-compose`` and Prometheus' ``promtool`` on PATH
(``apt-get install -y docker-compose prometheus``); a missing tool fails rather than skips.
"""

import json
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.reference_model import KPI_DAILY_COLUMNS, STAGE_CONVERSION_COLUMNS
from tests.oracle.scenario import PERIOD_END, PERIOD_START, build_scenario
from tests.support.pipeline import expected_for, publish_events, publish_org, scenario_env, wait_consumed
from tests.support.processes import Publisher, spawn_worker

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
COMPOSE = ROOT / "docker-compose.yml"
METRICS_MODULE = ROOT / "salespulse" / "streams" / "metrics.py"

CLICKHOUSE_UID = "salespulse-clickhouse"
PROMETHEUS_UID = "salespulse-prometheus"
CONTRACT_VIEWS = {
    "kpi_daily",
    "deals_current",
    "stage_conversion",
    "pipeline_current",
    "stalled_deals",
    "stall_alerts",
    "target_attainment",
    "leaderboard",
    "followup_due",
}
TIME_SERIES, TABLE = 0, 1

SCENARIO = build_scenario()
FIRST_DAY: date = PERIOD_START.date()
LAST_DAY: date = (PERIOD_END - timedelta(days=1)).date()

# The columns each ClickHouse panel must return, in order, keyed by (dashboard file stem, panel title).
EXPECTED_COLUMNS: dict[tuple[str, str], list[str]] = {
    ("kpi-overview", "Win rate"): ["win_rate_pct", "deals_won", "deals_lost"],
    ("kpi-overview", "Revenue won"): ["won_amount", "avg_deal_size", "avg_cycle_days"],
    ("kpi-overview", "CSAT and NPS"): ["csat_pct", "nps", "complaints"],
    ("kpi-overview", "New customers"): ["new_customers", "deals_created"],
    ("kpi-overview", "Activity per day"): ["time", "visits", "visits_completed", "calls", "calls_connected"],
    ("kpi-overview", "Won amount and deals per day"): ["time", "won_amount", "deals_won", "deals_lost"],
    ("kpi-overview", "Sales funnel"): ["stage", "entered", "advanced", "conversion_pct"],
    ("kpi-overview", "Stage conversion by team"): ["team", "stage", "entered", "advanced", "conversion_pct"],
    ("kpi-overview", "Revenue by region"): [
        "region",
        "won_amount",
        "deals_won",
        "win_rate_pct",
        "avg_deal_size",
    ],
    ("kpi-overview", "Revenue by team"): ["team", "won_amount", "deals_won", "win_rate_pct", "avg_deal_size"],
    ("kpi-overview", "Revenue by rep"): ["rep", "won_amount", "deals_won", "win_rate_pct", "avg_deal_size"],
    ("kpi-overview", "CSAT and NPS per week"): ["time", "csat_pct", "nps"],
    ("kpi-overview", "CSAT and NPS by team"): [
        "team",
        "csat_answers",
        "csat_pct",
        "nps_answers",
        "nps",
        "complaints",
    ],
    ("kpi-overview", "New customers per day"): ["time", "new_customers"],
    ("kpi-overview", "New customers by team"): ["team", "new_customers"],
    ("kpi-overview", "Open pipeline by stage"): ["stage", "open_deals", "open_amount", "weighted_amount"],
    (
        "kpi-overview",
        "Largest open deals",
    ): [
        "deal_id",
        "rep_id",
        "team_id",
        "stage",
        "amount",
        "created_at",
        "stage_entered_at",
        "last_activity_at",
        "expected_close_date",
    ],
    ("stalled-deals", "Stalled deals now"): ["stalled_deals", "critical", "amount_at_risk"],
    ("stalled-deals", "Stalled deals by severity"): ["severity", "deals"],
    ("stalled-deals", "Stalled deals by reason"): ["reason", "deals"],
    ("stalled-deals", "Stalled deals by team"): ["team", "warning", "critical", "amount"],
    ("stalled-deals", "Stall transitions per day"): ["time", "opened", "escalated", "resolved"],
    (
        "stalled-deals",
        "Stalled deals",
    ): [
        "deal_id",
        "severity",
        "reason_list",
        "stage",
        "amount",
        "rep_id",
        "team_id",
        "region_id",
        "customer_id",
        "stalled_since",
        "idle_days",
    ],
    ("stalled-deals", "Stall alerts"): ["at", "alert_id", "deal_id", "reason", "severity", "state"],
}


# --------------------------------------------------------------------------- reading the dashboards


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels_with_targets(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets_of(uid: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard, panel title, target) for every target on the datasource ``uid``."""
    found = []
    for name, dashboard in load_dashboards().items():
        for panel in panels_with_targets(dashboard):
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("uid") == uid:
                    found.append((name, panel["title"], target))
    return found


CLICKHOUSE_TARGETS = targets_of(CLICKHOUSE_UID)
PROMETHEUS_TARGETS = targets_of(PROMETHEUS_UID)


def substitute_macros(sql: str) -> str:
    """The SQL as Grafana's ClickHouse plugin sends it, for the scenario's period (module docstring)."""
    start = int(PERIOD_START.timestamp())
    end = int(PERIOD_END.timestamp()) - 1
    sql = re.sub(
        r"\$__dateFilter\(\s*([^)]+?)\s*\)",
        lambda m: f"{m[1]} >= toDate('{FIRST_DAY}') AND {m[1]} <= toDate('{LAST_DAY}')",
        sql,
    )
    sql = re.sub(
        r"\$__timeFilter\(\s*([^)]+?)\s*\)",
        lambda m: f"{m[1]} >= toDateTime({start}) AND {m[1]} <= toDateTime({end})",
        sql,
    )
    leftover = re.findall(r"\$\{?\w+", sql)
    assert not leftover, f"no test replacement for {leftover} (see this module's docstring)"
    return sql


def tables_read(sql: str) -> set[str]:
    """Names after FROM or JOIN that are tables or views (not subqueries or table functions)."""
    without_array_joins = re.sub(r"\bARRAY\s+JOIN\b", "", sql, flags=re.IGNORECASE)  # those join columns
    return set(
        re.findall(
            r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)\b(?!\s*\()", without_array_joins, flags=re.IGNORECASE
        )
    )


def exported_metrics() -> set[str]:
    """Series names the worker exports: counters and gauges as named, histograms by their suffixes."""
    source = METRICS_MODULE.read_text(encoding="utf-8")
    names: set[str] = set()
    for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"([A-Za-z_:][\w:]*)\"", source):
        if kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    assert len(names) > 10, f"could not read the metric names of {METRICS_MODULE}"
    return names


PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}


def metrics_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions, labels or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, legends)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables such as $__rate_interval
    identifiers = re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text)
    return {name for name in identifiers if name.lower() not in PROMQL_WORDS}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {package} (Debian); .ci/run does this")
    return path


# --------------------------------------------------------------------------- the scenario's worker


@pytest.fixture(scope="module")
def scenario_worker(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker that has ingested the whole scenario and run its stall monitor to a standstill."""
    worker = spawn_worker(
        broker=broker.bootstrap,
        data_dir=tmp_path_factory.mktemp("dashboards") / "worker",
        topic_prefix="dashboards.",
        app_id="test-dashboards",
        extra_env={
            **scenario_env(SCENARIO),
            "SALESPULSE_CLOCK": "event",
            "SALESPULSE_STALL_CHECK_INTERVAL_SECONDS": "0.5",
        },
    )
    publisher = Publisher(broker.bootstrap, worker.topic_prefix)
    try:
        worker.start()
        worker.wait_ready()
        total = publish_org(publisher, SCENARIO.org) + publish_events(publisher, SCENARIO.events)
        wait_consumed(worker, total)
        wait_until(
            lambda: worker.query("SELECT count() FROM stall_alerts")[0][0] > 0,
            120,
            f"the stall monitor's first alerts (log tail:\n{worker.log_tail(15)})",
        )
        _wait_for_stall_monitor(worker)
        yield worker
    finally:
        publisher.close()
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()


def _wait_for_stall_monitor(worker: WorkerProcess) -> None:
    """Until the alert log stops changing for several monitor rounds (every 0.5 s)."""
    last: tuple[Any, ...] = ()
    unchanged_since = time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = tuple(worker.query("SELECT count(), countIf(state = 'resolved'), max(at) FROM stall_alerts")[0])
        if now != last:
            last, unchanged_since = now, time.monotonic()
        elif time.monotonic() - unchanged_since >= 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"stall alerts still changing after 120 s: {last}")


def run_panel(worker: WorkerProcess, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    client = worker.client()
    try:
        result = client.query(substitute_macros(sql))
        return list(result.column_names), [tuple(row) for row in result.result_rows]
    finally:
        client.close()


def panel_sql(dashboard: str, title: str) -> str:
    matches = [
        t["rawSql"] for name, t_title, t in CLICKHOUSE_TARGETS if (name, t_title) == (dashboard, title)
    ]
    assert len(matches) == 1, (
        f"{dashboard}: expected one ClickHouse target titled {title!r}, found {len(matches)}"
    )
    return matches[0]


# --------------------------------------------------------------------------- dashboard structure


def test_three_dashboards_with_unique_uids_and_panel_ids() -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == {"kpi-overview", "pipeline-health", "stalled-deals"}
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in dashboards.items():
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36, name
        ids = [panel["id"] for panel in panels_with_targets(dashboard)]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        titles = [panel["title"] for panel in panels_with_targets(dashboard)]
        assert len(set(titles)) == len(titles), f"{name}: duplicate panel titles"
        for panel in panels_with_targets(dashboard):
            assert panel.get("targets"), f"{name}/{panel['title']}: no query"
            for target in panel["targets"]:
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                assert uid in {CLICKHOUSE_UID, PROMETHEUS_UID}, f"{name}/{panel['title']}: datasource {uid!r}"


def test_clickhouse_targets_are_raw_sql_on_the_contract_views_only() -> None:
    assert len(CLICKHOUSE_TARGETS) == len(EXPECTED_COLUMNS)
    for name, title, target in CLICKHOUSE_TARGETS:
        where = f"{name}/{title}"
        assert target["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": CLICKHOUSE_UID}, where
        assert target["queryType"] == "sql" and target["format"] in (TIME_SERIES, TABLE), where
        tables = tables_read(target["rawSql"])
        assert tables, f"{where}: reads no view"
        views = {table.removeprefix("salespulse.") for table in tables}
        assert views <= CONTRACT_VIEWS, f"{where}: reads {sorted(views - CONTRACT_VIEWS)}, not contract views"
        assert not re.search(r"\b(FINAL|argMax|INSERT|ALTER|DROP)\b", target["rawSql"], flags=re.I), (
            f"{where}: the contract views return final values; dashboards only read them"
        )


def test_every_clickhouse_panel_has_expected_columns_listed() -> None:
    panels = {(name, title) for name, title, _ in CLICKHOUSE_TARGETS}
    assert panels == set(EXPECTED_COLUMNS), (
        f"panels without expected columns: {sorted(panels - set(EXPECTED_COLUMNS))}; "
        f"listed but no such panel: {sorted(set(EXPECTED_COLUMNS) - panels)}"
    )
    for (name, title), columns in EXPECTED_COLUMNS.items():
        target = next(t for n, tt, t in CLICKHOUSE_TARGETS if (n, tt) == (name, title))
        # Grafana draws a time series from a first column named time.
        assert (columns[0] == "time") == (target["format"] == TIME_SERIES), f"{name}/{title}"


def test_stall_dashboard_reads_the_stall_views_and_kpi_dashboard_the_kpi_views() -> None:
    stall_views = {
        view.removeprefix("salespulse.")
        for name, _, target in CLICKHOUSE_TARGETS
        if name == "stalled-deals"
        for view in tables_read(target["rawSql"])
    }
    assert stall_views == {"stalled_deals", "stall_alerts"}
    kpi_views = {
        view.removeprefix("salespulse.")
        for name, _, target in CLICKHOUSE_TARGETS
        if name == "kpi-overview"
        for view in tables_read(target["rawSql"])
    }
    assert {"kpi_daily", "stage_conversion"} <= kpi_views
    assert all(name == "pipeline-health" for name, _, _ in PROMETHEUS_TARGETS)
    assert not [t for t in CLICKHOUSE_TARGETS if t[0] == "pipeline-health"]


# --------------------------------------------------------------------------- SQL on the scenario


@pytest.mark.parametrize(
    ("dashboard", "title"), sorted(EXPECTED_COLUMNS), ids=[f"{d}/{t}" for d, t in sorted(EXPECTED_COLUMNS)]
)
def test_clickhouse_panel_returns_rows_with_the_expected_columns(
    scenario_worker: WorkerProcess, dashboard: str, title: str
) -> None:
    columns, rows = run_panel(scenario_worker, panel_sql(dashboard, title))
    assert columns == EXPECTED_COLUMNS[(dashboard, title)]
    # The scenario in event-clock mode has stalled deals and alerts, so every panel has data.
    assert rows, f"{dashboard}/{title}: no rows on the scenario"


@pytest.fixture(scope="module")
def reference() -> dict[str, list[tuple[Any, ...]]]:
    return expected_for(SCENARIO)


def _company_kpis(reference: dict[str, list[tuple[Any, ...]]]) -> list[dict[str, Any]]:
    rows = [dict(zip(KPI_DAILY_COLUMNS, row, strict=True)) for row in reference["kpi_daily"]]
    return sorted(
        (r for r in rows if r["level"] == "company" and FIRST_DAY <= _as_date(r["day"]) <= LAST_DAY),
        key=lambda r: _as_date(r["day"]),
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def test_activity_per_day_equals_the_reference_model(
    scenario_worker: WorkerProcess, reference: dict[str, list[tuple[Any, ...]]]
) -> None:
    _, rows = run_panel(scenario_worker, panel_sql("kpi-overview", "Activity per day"))
    company = _company_kpis(reference)
    # Days with only deals or feedback have zero activity but still a kpi_daily row.
    expected = [(r["visits"], r["visits_completed"], r["calls"], r["calls_connected"]) for r in company]
    assert [tuple(int(v) for v in row[1:]) for row in rows] == expected
    assert len(rows) == len(company) > 40


def test_win_rate_and_revenue_by_region_equal_the_reference_model(
    scenario_worker: WorkerProcess, reference: dict[str, list[tuple[Any, ...]]]
) -> None:
    company = _company_kpis(reference)
    won, lost = sum(int(r["deals_won"]) for r in company), sum(int(r["deals_lost"]) for r in company)
    _, rows = run_panel(scenario_worker, panel_sql("kpi-overview", "Win rate"))
    assert rows == [(pytest.approx(round(100 * won / (won + lost), 1)), won, lost)]
    assert won > 10 and lost > 5

    by_region: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for row in reference["kpi_daily"]:
        r = dict(zip(KPI_DAILY_COLUMNS, row, strict=True))
        if r["level"] == "region" and FIRST_DAY <= _as_date(r["day"]) <= LAST_DAY:
            by_region[r["entity_id"]][0] += Decimal(r["won_amount"])
            by_region[r["entity_id"]][1] += int(r["deals_won"])
    _, rows = run_panel(scenario_worker, panel_sql("kpi-overview", "Revenue by region"))
    assert {row[0]: [Decimal(row[1]), int(row[2])] for row in rows} == dict(by_region)
    assert len(rows) >= 2


def test_sales_funnel_equals_the_reference_model(
    scenario_worker: WorkerProcess, reference: dict[str, list[tuple[Any, ...]]]
) -> None:
    funnel = sorted(
        (dict(zip(STAGE_CONVERSION_COLUMNS, row, strict=True)) for row in reference["stage_conversion"]),
        key=lambda r: r["stage_order"],
    )
    expected = [
        (r["stage"], int(r["entered"]), int(r["advanced"]))
        for r in funnel
        if r["level"] == "company" and r["entity_id"] == "all"
    ]
    _, rows = run_panel(scenario_worker, panel_sql("kpi-overview", "Sales funnel"))
    assert [(row[0], int(row[1]), int(row[2])) for row in rows] == expected
    assert [row[0] for row in rows] == ["prospecting", "qualified", "proposal", "negotiation"]


def test_stall_panels_agree_with_each_other(scenario_worker: WorkerProcess) -> None:
    _, now = run_panel(scenario_worker, panel_sql("stalled-deals", "Stalled deals now"))
    _, listed = run_panel(scenario_worker, panel_sql("stalled-deals", "Stalled deals"))
    _, by_severity = run_panel(scenario_worker, panel_sql("stalled-deals", "Stalled deals by severity"))
    _, by_team = run_panel(scenario_worker, panel_sql("stalled-deals", "Stalled deals by team"))
    stalled, critical, _ = now[0]
    assert stalled == len(listed) == sum(row[1] for row in by_severity) > 0
    assert critical == sum(row[2] for row in by_team) == sum(1 for row in listed if row[1] == "critical")
    assert stalled == sum(row[1] + row[2] for row in by_team)


# --------------------------------------------------------------------------- PromQL


def test_prometheus_targets_name_only_metrics_the_worker_exports() -> None:
    known = exported_metrics()
    # Every panel of the pipeline-health dashboard, and how many queries each draws.
    assert Counter(title for _, title, _ in PROMETHEUS_TARGETS) == {
        "Workers reporting": 1,
        "ClickHouse writes healthy": 1,
        "Seconds since last flush": 1,
        "Freshness p95 (now)": 1,
        "Throughput: consumed and accepted": 3,
        "Consumer lag": 1,
        "Rejects by reason": 1,
        "Reject share": 1,
        "Freshness (publish → queryable)": 3,
        "Sink write latency": 3,
        "Sink errors": 1,
        "Batch processing": 2,
        "Stalled deals (gauge)": 1,
        "Stall alert transitions": 1,
    }
    used: set[str] = set()
    for name, title, target in PROMETHEUS_TARGETS:
        names = metrics_in(target["expr"])
        assert names, f"{name}/{title}: no metric in {target['expr']!r}"
        assert names <= known, f"{name}/{title}: {sorted(names - known)} are not exported by the worker"
        used |= names
    # The panels contract §7 asks for: throughput, lag, rejects, freshness, sink latency and errors.
    for metric in (
        "salespulse_events_consumed_total",
        "salespulse_events_accepted_total",
        "salespulse_consumer_lag_messages",
        "salespulse_events_rejected_total",
        "salespulse_event_delay_seconds_bucket",
        "salespulse_sink_write_seconds_bucket",
        "salespulse_sink_errors_total",
    ):
        assert metric in used, f"no panel shows {metric}"
    assert any(
        "histogram_quantile(0.95" in t["expr"] and "event_delay" in t["expr"]
        for _, _, t in PROMETHEUS_TARGETS
    )


def test_metric_name_parser() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, type) (rate(a_bucket{job="x", le!="+Inf"}[$__rate_interval])))'
    )
    assert metrics_in(expr) == {"a_bucket"}
    assert metrics_in("time() - max(b_seconds) / on (x) group_left (y) c_total offset 5m") == {
        "b_seconds",
        "c_total",
    }


def test_promql_of_every_panel_parses(tmp_path: Path) -> None:
    promtool = _tool("promtool", "prometheus")
    rules = [
        {"record": f"dashboard:target_{index}", "expr": target["expr"].replace("$__rate_interval", "1m")}
        for index, (_, _, target) in enumerate(PROMETHEUS_TARGETS)
    ]
    path = tmp_path / "dashboard_queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- provisioning and compose


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_provisioned_datasources_have_the_uids_the_dashboards_use() -> None:
    clickhouse = _yaml(PROVISIONING / "datasources" / "clickhouse.yml")["datasources"]
    prometheus = _yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert [(d["uid"], d["type"]) for d in clickhouse] == [(CLICKHOUSE_UID, "grafana-clickhouse-datasource")]
    assert [(d["uid"], d["type"]) for d in prometheus] == [(PROMETHEUS_UID, "prometheus")]
    settings = clickhouse[0]["jsonData"]
    assert (settings["host"], settings["port"], settings["protocol"], settings["defaultDatabase"]) == (
        "clickhouse",
        8123,
        "http",
        "salespulse",
    )
    providers = _yaml(PROVISIONING / "dashboards" / "salespulse.yml")["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", "/var/lib/grafana/dashboards")]


def test_compose_services_mounts_and_order() -> None:
    compose = _yaml(COMPOSE)
    services = compose["services"]
    assert set(services) >= {
        "kafka",
        "clickhouse",
        "init",
        "worker-1",
        "worker-2",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully", name
        env = worker["environment"]
        assert env["SALESPULSE_BROKER"] == "kafka:9092" and env["SALESPULSE_WEB_HOST"] == "0.0.0.0", name
        assert env["SALESPULSE_CLICKHOUSE_URL"].endswith("@clickhouse:8123"), name
    assert "topics create" in str(services["init"]["command"]) and "migrate" in str(
        services["init"]["command"]
    )
    prometheus_config = _yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    targets = [
        t for job in prometheus_config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert {"worker-1:6066", "worker-2:6066"} <= set(targets)
    # Every bind mount points at a file or folder of this repository.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]


def test_dockerfile_runs_the_worker_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert text.count("FROM python:3.11-slim") + text.count("FROM ${PYTHON_IMAGE}") >= 2  # build + runtime
    assert 'ENTRYPOINT ["salespulse"]' in text and 'CMD ["worker"]' in text and "EXPOSE 6066" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    healthcheck = text[text.index("HEALTHCHECK") :]
    assert "urllib.request" in healthcheck and "/health" in healthcheck and "curl" not in healthcheck


def test_docker_compose_config_is_valid() -> None:
    docker_compose = _tool("docker-compose", "docker-compose")
    result = subprocess.run(
        [docker_compose, "-f", str(COMPOSE.name), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
