"""Reading the manager page the way a person sees it: texts of cards, rows and charts in Chromium."""

import json
import time
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from salespulse.runtime.waiting import wait_until


def open_view(driver: WebDriver, url: str, view: str, timeout: float = 30) -> None:
    """Load ``url`` and wait until the page has drawn ``view`` (its period and scope query)."""
    driver.get(url)
    wait_drawn(driver, view, timeout)


def wait_drawn(driver: WebDriver, view: str, timeout: float = 30) -> None:
    def drawn() -> bool:
        return bool(driver.execute_script("return document.body.dataset.view") == view)

    try:
        wait_until(drawn, timeout, f"the page to draw {view!r}", interval=0.1)
    except TimeoutError:
        shown = driver.execute_script(
            "return [document.body.dataset.view, location.search, document.getElementById('banner').innerText]"
        )
        raise AssertionError(f"the page did not draw {view!r}; it shows {shown}") from None


def _json(driver: WebDriver, script: str) -> Any:
    return json.loads(driver.execute_script(f"return JSON.stringify((() => {{ {script} }})())"))


def cards(driver: WebDriver) -> dict[str, dict[str, str]]:
    """Each KPI card's label, value and previous value, as displayed."""
    return {
        key: card
        for key, card in _json(
            driver,
            """return [...document.querySelectorAll('#kpis .kpi')].map(card => [card.dataset.kpi, {
                label: card.querySelector('.label').textContent,
                value: card.querySelector('.value').textContent,
                previous: card.querySelector('.previous-value').textContent}]);""",
        )
    }


def table_rows(driver: WebDriver, selector: str) -> list[list[str]]:
    """The displayed cells of each body row of a table."""
    return list(
        _json(
            driver,
            f"""return [...document.querySelectorAll('{selector} tbody tr')]
                .filter(row => !row.querySelector('td.empty'))
                .map(row => [...row.cells].map(cell => cell.textContent));""",
        )
    )


def table_keyed(driver: WebDriver, selector: str) -> list[dict[str, str]]:
    """Rows of a sortable table, each cell under its column key."""
    return list(
        _json(
            driver,
            f"""return [...document.querySelectorAll('{selector} tbody tr')]
                .filter(row => !row.querySelector('td.empty'))
                .map(row => Object.fromEntries([...row.cells].map(cell => [cell.dataset.key, cell.textContent])));""",
        )
    )


def chart(driver: WebDriver, element_id: str) -> dict[str, Any]:
    """The option ECharts is drawing in the element (series data, axes)."""
    return dict(
        _json(
            driver,
            f"""const instance = echarts.getInstanceByDom(document.getElementById('{element_id}'));
                if (!instance) return null;
                const option = instance.getOption();
                return {{series: option.series.map(s => ({{id: s.id, name: s.name, data: s.data}})),
                        xAxis: (option.xAxis || []).map(a => a.data || null), yAxis: (option.yAxis || []).map(a => a.data || null)}};""",
        )
    )


def leaderboard(driver: WebDriver, board: str) -> list[tuple[str, str, str]]:
    return [
        (row[0], row[1], row[2])
        for row in _json(
            driver,
            f"""return [...document.querySelectorAll('#{board} li.drill')].map(li =>
                [li.querySelector('.rank').textContent, li.querySelector('.name').textContent,
                 li.querySelector('.value').textContent]);""",
        )
    ]


def crumbs(driver: WebDriver) -> list[tuple[str, str]]:
    return [
        (item[0], item[1])
        for item in _json(
            driver,
            "return [...document.querySelectorAll('#crumbs [data-level]')].map(e => [e.dataset.level, e.textContent]);",
        )
    ]


def text(driver: WebDriver, selector: str) -> str:
    return str(driver.execute_script(f"return document.querySelector('{selector}').textContent"))


def settle(seconds: float = 0.3) -> None:
    """A moment for the browser to paint before a screenshot."""
    time.sleep(seconds)
