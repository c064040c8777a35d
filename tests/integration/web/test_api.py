"""The manager page's JSON API over real HTTP: exact values from the models, and clear 400s.

Every answer below is compared with the independent models (tests/integration/web/expectations.py);
the error cases check the status, that the message names what to fix, and that no SQL or
ClickHouse text leaks out.
"""

import base64
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from salespulse.runtime.ports import free_port
from tests.support.web import UiProcess

from .conftest import ScenarioWorker
from .expectations import Span, month_span, naive_utc, previous_span

MARCH = month_span(2026, 3)
RANGE = Span(date(2026, 2, 10), date(2026, 3, 5))
TOKEN = "a-long-enough-token-for-tests"


def _api_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


@pytest.mark.parametrize(
    ("level", "entity", "kind", "span"),
    [
        ("company", "all", "month", MARCH),
        ("region", "south", "range", RANGE),
        ("team", "team-guangzhou", "month", MARCH),
        ("rep", "rep-03", "range", RANGE),
    ],
)
def test_kpis_are_the_model_sums_and_ratios_of_the_period_and_the_previous_one(
    page: UiProcess, fed_worker: ScenarioWorker, level: str, entity: str, kind: str, span: Span
) -> None:
    period = "period=2026-03" if kind == "month" else span.query
    scope = "" if level == "company" else f"&level={level}&entity={entity}"
    status, _, body = page.get(f"api/v1/kpis?{period}{scope}")
    assert status == 200, body
    previous = previous_span(kind, span)
    assert body["period"]["from"] == span.first.isoformat() and body["period"]["to"] == span.last.isoformat()
    assert body["previous_period"]["from"] == previous.first.isoformat()
    assert body["previous_period"]["to"] == previous.last.isoformat()
    model = fed_worker.model
    for answer, window in ((body["current"], span), (body["previous"], previous)):
        want = model.card_values(level, entity, window)
        assert {name: Decimal(value) for name, value in answer["sums"].items()} == {
            name: want[name] for name in answer["sums"]
        }
        assert {name: _api_decimal(value) for name, value in answer["derived"].items()} == {
            name: want[name] for name in answer["derived"]
        }


def test_trend_breakdown_and_scope_follow_the_model(page: UiProcess, fed_worker: ScenarioWorker) -> None:
    model = fed_worker.model
    status, _, trend = page.get("api/v1/trend?period=2026-03&level=region&entity=north")
    assert status == 200 and trend["bucket"] == "day" and len(trend["points"]) == 31
    want = model.trend("region", "north", MARCH)
    for index, point in enumerate(trend["points"]):
        if (
            want["visits"][index] is not None
        ):  # the API zero-fills days after the latest; the page blanks them
            assert point["visits"] == want["visits"][index]
            assert float(point["won_amount"]) == want["won_amount"][index]
    status, _, year = page.get("api/v1/trend?period=2026")
    assert status == 200 and year["bucket"] == "week" and year["points"][0]["start"] == "2025-12-29"

    status, _, breakdown = page.get("api/v1/breakdown?period=2026-03&level=region&entity=north")
    assert status == 200 and breakdown["child_level"] == "team"
    assert [row["entity"] for row in breakdown["rows"]] == [
        row[0] for row in model.breakdown("region", "north", MARCH)
    ]

    status, _, scope = page.get("api/v1/scope?level=rep&entity=rep-01")
    assert status == 200
    assert scope["path"] == [
        {"level": "company", "entity": "all"},
        {"level": "region", "entity": "north"},
        {"level": "team", "entity": "team-beijing"},
        {"level": "rep", "entity": "rep-01"},
    ]
    assert scope["children"] == [] and scope["child_level"] is None


def test_funnel_pipeline_targets_and_leaderboards_equal_the_model(
    page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    model = fed_worker.model
    status, _, funnel = page.get("api/v1/funnel?level=team&entity=team-beijing")
    assert status == 200
    # conversion is one Float64 division of the same two integers on both sides: equal exactly.
    assert [
        (s["stage"], s["entered"], s["advanced"], s["conversion"]) for s in funnel["stages"]
    ] == model.funnel("team", "team-beijing")
    status, _, pipeline = page.get("api/v1/pipeline")
    assert status == 200
    assert [
        (s["stage"], s["open_deals"], Decimal(s["open_amount"]), Decimal(s["weighted_amount"]))
        for s in pipeline["stages"]
    ] == model.pipeline("company", "all")

    status, _, targets = page.get("api/v1/targets?period=2026-03&level=rep&entity=rep-08")
    assert status == 200
    want = model.targets("rep", "rep-08", MARCH)
    assert len(want) == 7  # March's five and Q1's two
    got = targets["targets"]
    assert [(t["period"], t["period_start"], t["metric"], t["status"]) for t in got] == [
        (row[0], row[1].isoformat(), row[4], row[10]) for row in want
    ]
    for answer, row in zip(got, want, strict=True):
        assert Decimal(answer["target"]) == row[5] and Decimal(answer["actual"]) == row[6]
        for key, value in zip(("attainment", "expected_by_now", "projected"), row[7:10], strict=True):
            assert answer[key] == pytest.approx(value, rel=1e-12)

    status, _, board = page.get("api/v1/leaderboard?period=2026-03&level=team&metric=won_amount")
    assert status == 200 and board["source"] == "leaderboard"
    want_board = model.leaderboard("team", "won_amount", date(2026, 3, 1))
    assert [(r["rank"], r["entity_id"]) for r in board["rows"]] == [row[:2] for row in want_board]
    assert [r["value"] for r in board["rows"]] == pytest.approx([row[2] for row in want_board], rel=1e-12)


def test_stalled_deals_and_followups_are_exactly_the_model_rows(
    page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    model = fed_worker.model
    status, _, stalled = page.get("api/v1/stalled")
    assert status == 200
    want = model.stalled()
    assert stalled["total"] == len(want) > 10
    assert [
        (
            r["deal_id"],
            r["rep_id"],
            r["team_id"],
            r["region_id"],
            r["stage"],
            Decimal(r["amount"]),
            tuple(r["reasons"]),
            r["severity"],
            r["stalled_since"],
            r["idle_days"],
        )
        for r in stalled["rows"]
    ] == [
        (
            d.deal_id,
            d.rep_id,
            d.team_id,
            d.region_id,
            d.stage,
            d.amount,
            d.reasons,
            d.severity,
            naive_utc(d.stalled_since).isoformat() + "Z",
            d.idle_days,
        )
        for d in want
    ]
    status, _, limited = page.get("api/v1/stalled?level=team&entity=team-beijing&limit=2")
    assert status == 200 and limited["total"] == len(model.stalled("team", "team-beijing"))
    assert [r["deal_id"] for r in limited["rows"]] == [
        d.deal_id for d in model.stalled("team", "team-beijing")[:2]
    ]

    status, _, followups = page.get("api/v1/followups")
    assert status == 200
    assert [
        (
            r["customer_id"],
            r["tier"],
            r["rep_id"],
            r["team_id"],
            r["region_id"],
            r["overdue_days"],
            r["status"],
        )
        for r in followups["rows"]
    ] == [(row[0], row[1], row[2], row[3], row[4], row[7], row[8]) for row in model.followups()]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        # bad dates
        ("kpis?from=2026-02-30&to=2026-03-01", ["from='2026-02-30'", "calendar"]),
        ("kpis?from=20260201&to=2026-03-01", ["from='20260201'", "YYYY-MM-DD"]),
        ("kpis?from=2026-02-01&to=2026-13-01", ["to='2026-13-01'"]),
        ("kpis?period=2026-13", ["period='2026-13'", "month"]),
        ("kpis?period=2026-Q5", ["period='2026-Q5'"]),
        ("kpis?period=2026-W54", ["ISO week 54"]),
        ("kpis?period=March", ["period='March'", "2026-03"]),
        ("kpis?period=1899-01", ["year"]),
        ("kpis?from=2026-03-05&to=2026-03-01", ["from=2026-03-05 is after to=2026-03-01"]),
        ("kpis?from=2000-01-01&to=2026-03-01", ["at most 3660"]),
        # unknown level or entity
        ("kpis?period=2026-03&level=galaxy", ["level='galaxy'", "company, region, team, rep"]),
        ("kpis?period=2026-03&level=team&entity=team-nowhere", ["entity='team-nowhere'", "team-beijing"]),
        ("stalled?level=rep&entity=x'%20OR%201=1%20--", ["no rep of that id"]),
        ("kpis?period=2026-03&entity=north", ["company level has one entity"]),
        ("leaderboard?period=2026-03&level=company", ["level='company'"]),
        ("leaderboard?period=2026-03&metric=revenue", ["metric='revenue'"]),
        # missing or extra parameters
        ("kpis", ["a period is required"]),
        ("kpis?from=2026-03-01", ["to= is missing"]),
        ("trend?to=2026-03-01", ["from= is missing"]),
        ("kpis?period=2026-03&level=team", ["entity= is required with level=team"]),
        ("kpis?period=2026-03&from=2026-03-01&to=2026-03-02", ["either period= or from= and to="]),
        ("kpis?perod=2026-03", ["unknown parameter 'perod'"]),
        ("funnel?period=2026-03", ["unknown parameter 'period'"]),
        ("kpis?period=2026-03&period=2026-04", ["given twice"]),
        ("stalled?limit=0", ["limit=0 is out of range"]),
        ("followups?limit=lots", ["limit='lots' is not a whole number"]),
        ("entities?level=company", ["level='company'"]),
    ],
)
def test_bad_parameters_are_a_400_with_a_message(page: UiProcess, query: str, words: list[str]) -> None:
    status, headers, body = page.get(f"api/v1/{query}")
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"] in ("bad_request", "unknown_entity")
    for word in words:
        assert word in body["message"], body["message"]
    for leak in ("SELECT", "Code:", "DB::Exception", "Traceback"):
        assert leak not in body["message"]


def test_unknown_endpoints_and_writes_are_refused(page: UiProcess) -> None:
    status, _, body = page.get("api/v1/deals")
    assert status == 404 and body["error"] == "not_found"
    request = urllib.request.Request(page.url + "api/v1/kpis?period=2026-03", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a POST was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 405


def test_the_page_and_its_files_are_served_with_a_strict_policy(page: UiProcess) -> None:
    status, headers, html = page.get("")
    assert status == 200 and "static/js/app.js" in html
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, script = page.get("static/vendor/echarts/echarts.min.js")
    assert status == 200 and len(script) > 500_000 and "javascript" in headers["Content-Type"]
    for name in ("LICENSE", "NOTICE"):
        status, _, text = page.get(f"static/vendor/echarts/{name}")
        assert status == 200 and "Apache" in text
    status, _, meta = page.get("api/v1/meta")
    assert status == 200 and meta["default_period"] == "2026-03" and meta["timezone"] == "Asia/Shanghai"
    assert meta["currency"] == "USD" and meta["latest_day"] == "2026-03-16"


def test_clickhouse_unreachable_is_a_503_that_says_where(make_ui: Callable[..., UiProcess]) -> None:
    nowhere = f"http://reader:secret-password@127.0.0.1:{free_port()}"
    ui = make_ui(clickhouse_url=nowhere)
    status, headers, body = ui.get("api/v1/kpis?period=2026-03")
    assert status == 503 and headers["Retry-After"] == "5" and body["error"] == "store_unavailable"
    assert "cannot reach ClickHouse at http://reader:***@127.0.0.1" in body["message"]
    assert "secret-password" not in body["message"]
    status, _, health = ui.get("health")
    assert status == 503 and health["ok"] is False
    ui.stop()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_bearer_token_guards_the_api_but_not_the_page_files(make_ui: Callable[..., UiProcess]) -> None:
    ui = make_ui(SALESPULSE_UI_TOKEN=TOKEN)
    status, headers, body = ui.get("api/v1/meta")
    assert (
        status == 401 and body["error"] == "unauthorized" and headers["WWW-Authenticate"].startswith("Bearer")
    )
    assert ui.get("api/v1/meta", {"Authorization": f"Bearer {TOKEN}x"})[0] == 401
    assert ui.get("api/v1/meta", {"Authorization": f"Bearer {TOKEN[:-1]}"})[0] == 401
    assert ui.get("api/v1/meta", _basic("any", TOKEN))[0] == 401
    assert ui.get("api/v1/meta", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert ui.get("")[0] == 200 and ui.get("static/js/app.js")[0] == 200  # no data in them
    assert ui.get("health")[0] == 200
    ui.stop()


def test_basic_auth_guards_everything_but_health(make_ui: Callable[..., UiProcess]) -> None:
    ui = make_ui(SALESPULSE_UI_BASIC_AUTH="manager:北京-password")
    status, headers, _ = ui.get("")
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="salespulse"')
    assert ui.get("static/js/app.js")[0] == 401
    assert ui.get("api/v1/meta", _basic("manager", "wrong"))[0] == 401
    assert ui.get("api/v1/meta", _basic("Manager", "北京-password"))[0] == 401
    assert ui.get("", _basic("manager", "北京-password"))[0] == 200
    assert ui.get("api/v1/meta", _basic("manager", "北京-password"))[0] == 200
    assert ui.get("health")[0] == 200
    ui.stop()


def test_under_a_path_prefix_every_route_moves_with_it(
    make_ui: Callable[..., UiProcess], page: UiProcess
) -> None:
    ui = make_ui(SALESPULSE_UI_BASE_PATH="/salespulse/")
    assert ui.url.endswith("/salespulse/")
    status, _, prefixed = ui.get("api/v1/kpis?period=2026-03&level=team&entity=team-tianjin")
    assert status == 200
    assert prefixed == page.get("api/v1/kpis?period=2026-03&level=team&entity=team-tianjin")[2]
    status, _, html = ui.get("")
    assert status == 200 and 'src="static/js/app.js"' in html  # relative: it works under any prefix
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ui.port}/api/v1/meta", timeout=10)
        raise AssertionError("the API answered outside its prefix")
    except urllib.error.HTTPError as error:
        assert error.code == 404
    request = urllib.request.Request(f"http://127.0.0.1:{ui.port}/salespulse", method="GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.url.endswith("/salespulse/")  # redirected to the page
    ui.stop()


def test_a_query_clickhouse_refuses_is_a_503_without_sql(make_ui: Callable[..., UiProcess]) -> None:
    ui = make_ui(SALESPULSE_CLICKHOUSE_DATABASE="no_such_database")
    status, headers, body = ui.get("api/v1/kpis?period=2026-03")
    assert status == 503 and headers["Retry-After"] == "5", body
    assert body["message"].startswith("ClickHouse refused the query (code 81, UNKNOWN_DATABASE)"), body
    for leak in ("SELECT", "kpi_daily", "Traceback", "DB::Exception"):
        assert leak not in body["message"]
    ui.stop()
