"""The manager page in a real headless Chromium, against a real worker on the event clock.

What the page displays — card values and previous values, drill-down rows, chart data, target
pacing, leaderboards, the stalled-deal and follow-up tables — is compared with the independent
models (expectations.py), never with what ClickHouse returns. One browser serves the module;
each test checks that the browser console stayed clean.
"""

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from salespulse.runtime.waiting import wait_until
from tests.support.web import UiProcess, chromium, console_problems, screenshot

from . import reading
from .conftest import ScenarioWorker
from .expectations import PageModel, Span, amount, count, month_span, percent, previous_span, shanghai_minutes

STATIC = Path(__file__).resolve().parents[3] / "salespulse" / "web" / "static"
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
MARCH = month_span(2026, 3)
RANGE = Span(date(2026, 2, 10), date(2026, 3, 5))
SCOPES = [("company", "all"), ("region", "south"), ("team", "team-guangzhou"), ("rep", "rep-03")]
TOKEN = "the-page-token-for-browser-tests"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def clean_console(browser: WebDriver) -> Iterator[WebDriver]:
    """The browser, with the console emptied before and checked after the test."""
    console_problems(browser)
    yield browser
    assert console_problems(browser) == []


def view_of(period: str, level: str, entity: str) -> str:
    return period + ("" if level == "company" else f"&level={level}&entity={entity}")


def assert_cards(
    driver: WebDriver, model: PageModel, level: str, entity: str, span: Span, previous: Span
) -> None:
    shown = reading.cards(driver)
    want, before = model.card_texts(level, entity, span), model.card_texts(level, entity, previous)
    assert {key: card["value"] for key, card in shown.items()} == want
    assert {key: card["previous"] for key, card in shown.items()} == before
    assert {key: card["label"] for key, card in shown.items()} == {key: EN[f"kpi.{key}"] for key in want}


@pytest.mark.parametrize(("level", "entity"), SCOPES)
@pytest.mark.parametrize("kind", ["month", "range"])
def test_the_numbers_for_a_scope_and_period_equal_the_model(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker, level: str, entity: str, kind: str
) -> None:
    driver, model = clean_console, fed_worker.model
    span = MARCH if kind == "month" else RANGE
    period = "period=2026-03" if kind == "month" else span.query
    view = view_of(period, level, entity)
    reading.open_view(driver, f"{page.url}?{view}&lang=en", view)

    assert_cards(driver, model, level, entity, span, previous_span(kind, span))
    assert reading.text(driver, "#previous-note") == "compared with " + (
        "2026-02" if kind == "month" else "2026-01-17 – 2026-02-09"
    )
    # The drill-down: the members below the scope with their own numbers (none below a rep).
    if level == "rep":
        assert not driver.find_element(By.ID, "breakdown").is_displayed()
    else:
        assert reading.table_rows(driver, "#breakdown table") == [
            list(row) for row in model.breakdown(level, entity, span)
        ]
    # The trend chart's data, day by day; blank after the latest day with data.
    trend = reading.chart(driver, "chart-trend")
    days = (span.last - span.first).days + 1
    assert len(trend["xAxis"][0]) == days
    want = model.trend(level, entity, span)
    assert {series["id"]: series["data"] for series in trend["series"]} == want


def test_funnel_pipeline_targets_and_leaderboards_show_the_model(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    driver, model = clean_console, fed_worker.model
    for level, entity in (("company", "all"), ("rep", "rep-08")):
        view = view_of("period=2026-03", level, entity)
        reading.open_view(driver, f"{page.url}?{view}", view)
        funnel = reading.chart(driver, "chart-funnel")["series"][0]["data"]
        assert [
            (item["stage"], item["value"], item["advanced"], item["conversion"]) for item in funnel
        ] == list(model.funnel(level, entity))
        pipeline = {
            series["id"]: series["data"] for series in reading.chart(driver, "chart-pipeline")["series"]
        }
        want_pipeline = model.pipeline(level, entity)
        assert pipeline["open_amount"] == [float(row[2]) for row in want_pipeline]
        assert pipeline["weighted_amount"] == [float(row[3]) for row in want_pipeline]

        targets = reading.chart(driver, "chart-targets")
        want_targets = model.targets(level, entity, MARCH)
        assert want_targets, "the scenario sets targets for this scope"
        labels = [
            ("2026-03" if row[0] == "month" else "2026-Q1") + " · " + EN[f"metric.{row[4]}"]
            for row in want_targets
        ]
        assert targets["yAxis"][0] == labels[::-1]  # drawn bottom-up
        attainment = next(s for s in targets["series"] if s["id"] == "attainment")["data"]
        assert [item["value"] for item in attainment] == [row[7] for row in want_targets][::-1]
        assert targets["yAxis"][1] == [f"{row[10]}|{percent(row[7])}" for row in want_targets][::-1]

    # Best reps and best teams of March (月度最佳销售 / 最佳团队), by revenue then by win rate.
    for metric in ("won_amount", "win_rate"):
        Select(driver.find_element(By.ID, "leaderboard-metric")).select_by_value(metric)
        shown = amount if metric == "won_amount" else percent
        for board, level in (("board-reps", "rep"), ("board-teams", "team")):
            want = [
                (str(rank), entity, shown(value))
                for rank, entity, value in model.leaderboard(level, metric, MARCH.first)
            ]
            wait_until(
                lambda board=board, want=want: reading.leaderboard(driver, board) == want,
                15,
                f"{board} by {metric}: {want}",
            )
    assert reading.text(driver, "#board-reps h3") == EN["leaderboard.reps.month"]


def stalled_texts(rows: list[Any], timezone: str) -> list[dict[str, str]]:
    return [
        {
            "deal_id": row.deal_id,
            "severity": EN[f"severity.{row.severity}"],
            "reasons": ", ".join(EN[f"reason.{reason}"] for reason in row.reasons),
            "stage": EN[f"stage.{row.stage}"],
            "idle_days": count(row.idle_days),
            "rep_id": row.rep_id,
            "team_id": row.team_id,
            "amount": amount(row.amount),
            "stalled_since": shanghai_minutes(row.stalled_since, timezone),
        }
        for row in rows
    ]


def followup_texts(rows: list[tuple[Any, ...]], timezone: str) -> list[dict[str, str]]:
    return [
        {
            "customer_id": row[0],
            "tier": row[1],
            "status": EN[f"followup.{row[8]}"],
            "overdue_days": count(row[7]),
            "rep_id": row[2],
            "team_id": row[3],
            "last_contact_at": EN["followup.never"] if row[5] is None else shanghai_minutes(row[5], timezone),
            "due_at": shanghai_minutes(row[6], timezone),
        }
        for row in rows
    ]


def test_the_stalled_deal_and_followup_tables_list_exactly_the_model_rows(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    driver, model, zone = clean_console, fed_worker.model, fed_worker.model.timezone
    reading.open_view(driver, f"{page.url}?period=2026-03", "period=2026-03")
    stalled = model.stalled()
    assert len(stalled) > 10 and {row.severity for row in stalled} == {"warning", "critical"}
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(stalled, zone)
    assert reading.text(driver, "#stalled .count") == f"{len(stalled)} of {len(stalled)}"
    assert reading.table_keyed(driver, "#followups") == followup_texts(model.followups(), zone)

    # Sorting: idle days up, then down; rows that tie keep the most-urgent-first order.
    heading = driver.find_element(By.CSS_SELECTOR, "#stalled th[data-key=idle_days]")
    heading.click()
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(
        sorted(stalled, key=lambda r: r.idle_days), zone
    )
    driver.find_element(By.CSS_SELECTOR, "#stalled th[data-key=idle_days]").click()
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(
        sorted(stalled, key=lambda r: -r.idle_days), zone
    )
    assert (
        driver.find_element(By.CSS_SELECTOR, "#stalled th[data-key=idle_days]").get_attribute("aria-sort")
        == "descending"
    )

    # Filtering: the text box, then the severity as well; the count says how many of how many.
    search = driver.find_element(By.CSS_SELECTOR, "#stalled input[type=search]")
    search.send_keys("rep-03")
    mine = sorted((row for row in stalled if row.rep_id == "rep-03"), key=lambda r: -r.idle_days)
    assert mine and reading.table_keyed(driver, "#stalled") == stalled_texts(mine, zone)
    Select(driver.find_element(By.CSS_SELECTOR, "#stalled select")).select_by_value("warning")
    warned = [row for row in mine if row.severity == "warning"]
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(warned, zone)
    assert reading.text(driver, "#stalled .count") == f"{len(warned)} of {len(stalled)}"
    # The live refresh keeps sorting and filtering.
    refreshes = driver.execute_script("return Number(document.body.dataset.refreshes)")
    wait_until(
        lambda: driver.execute_script("return Number(document.body.dataset.refreshes)") > refreshes,
        15,
        "a live refresh",
    )
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(warned, zone)

    Select(driver.find_element(By.CSS_SELECTOR, "#followups select")).select_by_value("due")
    due = [row for row in model.followups() if row[8] == "due"]
    assert due and reading.table_keyed(driver, "#followups") == followup_texts(due, zone)

    # A team's view lists the team's rows only.
    view = view_of("period=2026-03", "team", "team-tianjin")
    reading.open_view(driver, f"{page.url}?{view}", view)
    assert reading.table_keyed(driver, "#stalled") == stalled_texts(
        model.stalled("team", "team-tianjin"), zone
    )
    assert reading.table_keyed(driver, "#followups") == followup_texts(
        model.followups("team", "team-tianjin"), zone
    )


def test_choosing_rows_drills_down_and_a_shared_url_reopens_the_same_view(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    driver, model = clean_console, fed_worker.model
    reading.open_view(driver, f"{page.url}?period=2026-03", "period=2026-03")
    for level, entity in (("region", "north"), ("team", "team-beijing"), ("rep", "rep-01")):
        driver.find_element(By.CSS_SELECTOR, f"#breakdown tr[data-entity='{entity}']").click()
        reading.wait_drawn(driver, view_of("period=2026-03", level, entity))
        assert_cards(driver, model, level, entity, MARCH, month_span(2026, 2))
    assert reading.crumbs(driver) == [
        ("company", "Company"),
        ("region", "north"),
        ("team", "team-beijing"),
        ("rep", "rep-01"),
    ]
    driver.back()  # the browser's history follows the drill-down
    reading.wait_drawn(driver, view_of("period=2026-03", "team", "team-beijing"))
    driver.find_element(By.CSS_SELECTOR, "#crumbs a[data-level=company]").click()
    reading.wait_drawn(driver, "period=2026-03")
    driver.find_element(By.CSS_SELECTOR, "#board-teams li[data-entity='team-tianjin']").click()
    reading.wait_drawn(driver, view_of("period=2026-03", "team", "team-tianjin"))

    # The period controls, then the language: each lands in the URL.
    Select(driver.find_element(By.ID, "period-kind")).select_by_value("quarter")
    reading.wait_drawn(driver, view_of("period=2026-Q1", "team", "team-tianjin"))
    driver.find_element(By.ID, "lang-toggle").click()
    wait_until(lambda: "lang=zh" in driver.current_url, 10, "lang=zh in the URL")
    shared = driver.current_url
    assert shared == f"{page.url}?period=2026-Q1&level=team&entity=team-tianjin&lang=zh"
    shown = reading.cards(driver)

    with chromium() as other:  # someone else opens the link
        reading.open_view(other, shared, view_of("period=2026-Q1", "team", "team-tianjin"))
        assert reading.cards(other) == shown
        assert {key: card["label"] for key, card in shown.items()} == {key: ZH[f"kpi.{key}"] for key in shown}
        assert (
            Select(other.find_element(By.ID, "period-kind")).first_selected_option.get_attribute("value")
            == "quarter"
        )
        assert (
            Select(other.find_element(By.ID, "period-quarter-input")).first_selected_option.text == "2026-Q1"
        )
        assert reading.crumbs(other) == [
            ("company", ZH["level.company"]),
            ("region", "north"),
            ("team", "team-tianjin"),
        ]
        assert console_problems(other) == []
    quarter = Span(date(2026, 1, 1), date(2026, 3, 31))
    assert {key: card["value"] for key, card in shown.items()} == model.card_texts(
        "team", "team-tianjin", quarter, "zh"
    )


def test_lang_zh_shows_chinese_labels_and_the_browser_language_is_the_default(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    driver, model = clean_console, fed_worker.model
    view = view_of("period=2026-03", "region", "north")
    reading.open_view(driver, f"{page.url}?{view}&lang=zh", view)
    shown = reading.cards(driver)
    assert {key: card["label"] for key, card in shown.items()} == {key: ZH[f"kpi.{key}"] for key in shown}
    assert {key: card["value"] for key, card in shown.items()} == model.card_texts(
        "region", "north", MARCH, "zh"
    )
    assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
    assert reading.text(driver, "#stalled h2 span") == ZH["stalled.title"] == "停滞商机"
    assert reading.text(driver, "#breakdown h2") == ZH["breakdown.title.team"]
    assert reading.text(driver, "#board-reps h3") == "月度最佳销售"
    assert reading.text(driver, "#board-teams h3") == "月度最佳团队"
    severity = driver.find_elements(By.CSS_SELECTOR, "#stalled td[data-key=severity]")
    assert severity and {cell.text for cell in severity} <= {"严重", "警告"}
    trend = reading.chart(driver, "chart-trend")
    assert [series["name"] for series in trend["series"]] == ["成交金额", "赢单数", "拜访", "通话"]

    with chromium(language="zh-CN") as chinese:  # no lang= in the URL: the browser's language decides
        reading.open_view(chinese, f"{page.url}?{view}", view)
        assert reading.cards(chinese)["won_amount"]["label"] == "成交金额"
        reading.open_view(chinese, f"{page.url}?{view}&lang=en", view)  # lang= wins over it
        assert reading.cards(chinese)["won_amount"]["label"] == "Revenue won"
        assert console_problems(chinese) == []


def test_a_wrong_url_shows_what_is_wrong(browser: WebDriver, page: UiProcess) -> None:
    console_problems(browser)
    for query, words in (
        ("period=2026-13", "there is no month 13"),
        ("period=2026-03&level=team&entity=team-nowhere", "no team of that id"),
        ("from=2026-03-09&to=2026-03-01", "is after to=2026-03-01"),
        ("from=2026-02-30&to=2026-03-01", "not a date of the calendar"),
    ):
        browser.get(f"{page.url}?{query}")
        wait_until(
            lambda: browser.find_element(By.ID, "banner").is_displayed(), 20, f"the banner for {query}"
        )
        assert words in browser.find_element(By.ID, "banner-message").text
    problems = console_problems(browser)
    # The only console lines are Chromium's own notes of the 400 answers.
    assert problems and all("400" in entry["message"] for entry in problems), problems


def test_behind_a_path_prefix_and_with_a_token(
    browser: WebDriver, make_ui: Callable[..., UiProcess], fed_worker: ScenarioWorker
) -> None:
    model = fed_worker.model
    prefixed = make_ui(SALESPULSE_UI_BASE_PATH="/salespulse")
    console_problems(browser)
    view = view_of("period=2026-03", "team", "team-tianjin")
    reading.open_view(browser, f"http://127.0.0.1:{prefixed.port}/salespulse/?{view}", view)
    assert_cards(browser, model, "team", "team-tianjin", MARCH, month_span(2026, 2))
    assert console_problems(browser) == []
    # Leave the page before its server goes, or its live refresh logs the refused connections.
    browser.get("about:blank")
    prefixed.stop()
    console_problems(browser)

    guarded = make_ui(SALESPULSE_UI_TOKEN=TOKEN)
    browser.get(f"{guarded.url}?{view}")
    wait_until(lambda: browser.find_element(By.ID, "login-dialog").is_displayed(), 20, "the token prompt")
    field = browser.find_element(By.ID, "login-token")
    field.send_keys("not-the-token-at-all")
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_until(
        lambda: browser.find_element(By.ID, "login-error").is_displayed(), 20, "the wrong-token message"
    )
    field.clear()
    field.send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    reading.wait_drawn(browser, view)
    assert_cards(browser, model, "team", "team-tianjin", MARCH, month_span(2026, 2))
    assert "token" not in browser.current_url  # never in a URL people share
    problems = console_problems(browser)
    assert all("401" in entry["message"] for entry in problems), problems
    guarded.stop()


def _layout_problems(driver: WebDriver) -> list[str]:
    """Things a person would see as broken: sideways scrolling, cut-off numbers, empty charts."""
    return list(
        driver.execute_script(
            """const problems = [];
            if (document.documentElement.scrollWidth > window.innerWidth)
                problems.push('page wider than the window: ' + document.documentElement.scrollWidth);
            for (const el of document.querySelectorAll('.kpi .value, .kpi .label, .board .name, .crumbs .current'))
                if (el.offsetParent && el.scrollWidth > el.clientWidth + 1) problems.push('cut: ' + el.textContent);
            for (const id of ['chart-trend', 'chart-funnel', 'chart-pipeline', 'chart-targets']) {
                const el = document.getElementById(id);
                if (el.offsetParent === null) continue;
                const canvas = el.querySelector('canvas');
                if (!canvas || canvas.width < 100 || canvas.height < 100) problems.push('no chart in ' + id);
            }
            const header = document.querySelector('.topbar').getBoundingClientRect();
            if (header.height > 100) problems.push('header too tall: ' + header.height);
            return problems;"""
        )
    )


def test_screenshots_of_the_main_views(clean_console: WebDriver, page: UiProcess) -> None:
    """1366×768 screenshots in test-artifacts/web/ (looked at by a person), and automatic layout checks."""
    driver = clean_console
    shots = []
    for name, view, lang, scroll_to in (
        ("company-month-top", "period=2026-03", "en", None),
        ("company-month-charts", "period=2026-03", "en", "chart-pipeline"),
        ("company-month-tables", "period=2026-03", "en", "breakdown"),
        ("company-month-stalled", "period=2026-03", "en", "stalled"),
        ("team-month-zh-top", view_of("period=2026-03", "team", "team-beijing"), "zh", None),
        ("team-month-zh-charts", view_of("period=2026-03", "team", "team-beijing"), "zh", "chart-pipeline"),
        ("rep-range-top", view_of(RANGE.query, "rep", "rep-03"), "en", None),
        ("rep-range-lower", view_of(RANGE.query, "rep", "rep-03"), "en", "leaderboards"),
        ("region-quarter-zh-tables", view_of("period=2026-Q1", "region", "south"), "zh", "stalled"),
    ):
        reading.open_view(driver, f"{page.url}?{view}&lang={lang}", view)
        if scroll_to:
            driver.execute_script(
                f"window.scrollTo(0, document.getElementById('{scroll_to}').closest('.panel').getBoundingClientRect().top"
                " + window.scrollY - document.querySelector('.topbar').offsetHeight - 8)"
            )
        reading.settle()
        assert _layout_problems(driver) == [], name
        shots.append(screenshot(driver, name))
    assert all(shot.stat().st_size > 20_000 for shot in shots)  # drawn, not blank


def test_the_page_refreshes_itself_without_reloading(
    clean_console: WebDriver, page: UiProcess, fed_worker: ScenarioWorker
) -> None:
    """Last in the module: it adds an event (a visit before "now", so stalls and follow-ups keep)."""
    driver = clean_console
    reading.open_view(driver, f"{page.url}?period=2026-03&lang=en", "period=2026-03")
    driver.execute_script("window.__stillTheSamePage = true")
    first = driver.find_element(By.ID, "last-updated").get_attribute("data-at")
    visit = {
        "event_type": "visit",
        "event_id": "web-live-1",
        "occurred_at": "2026-03-16T11:00:00+08:00",
        "rep_id": "rep-08",
        "customer_id": "cust-live-1",
        "duration_minutes": 20,
        "outcome": "completed",
    }
    fed_worker.publish([visit])
    want = fed_worker.model.card_texts("company", "all", MARCH)
    assert want["visits"] != reading.cards(driver)["visits"]["value"]
    wait_until(
        lambda: {k: c["value"] for k, c in reading.cards(driver).items()} == want,
        30,
        f"the cards to show {want['visits']} visits",
    )
    assert driver.execute_script("return window.__stillTheSamePage") is True  # no reload
    assert driver.find_element(By.ID, "last-updated").get_attribute("data-at") != first
    assert reading.text(driver, "#last-updated").startswith("Last updated ")
    assert "data through 2026-03-16" in reading.text(driver, "#last-updated")
