"""The manager page as its users meet it: a real `salespulse ui` process and a real headless Chromium.

Chromium and its driver are Debian's (``apt-get install chromium chromium-driver fonts-noto-cjk``);
a missing browser fails the tests rather than skipping them.
"""

import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import orjson
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from salespulse.runtime.children import ChildProcess, environment_without_settings
from salespulse.runtime.ports import free_port
from salespulse.runtime.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
VIEWPORT = (1366, 768)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"


class UiProcess(ChildProcess):
    """One `salespulse ui` reading the views through ``clickhouse_url``."""

    def __init__(self, clickhouse_url: str, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        super().__init__("ui", ["ui"], {}, log_path, own_session=False)
        self.clickhouse_url = clickhouse_url
        self.extra_env = dict(extra_env or {})
        self.port = free_port()

    @property
    def base_path(self) -> str:
        return self.extra_env.get("SALESPULSE_UI_BASE_PATH", "").rstrip("/")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}/"

    def start(self) -> Self:
        self.env = {
            **environment_without_settings(),
            "SALESPULSE_UI_PORT": str(self.port),
            "SALESPULSE_UI_CLICKHOUSE_URL": self.clickhouse_url,
            "SALESPULSE_UI_REFRESH_SECONDS": "2",
            **self.extra_env,
        }
        super().start()
        wait_until(self._serving, 60, f"the page on port {self.port} (log: {self.log_path})")
        return self

    def _serving(self) -> bool:
        self.require_running()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.base_path}/health", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # listening (ClickHouse may still be starting)

    def stop(self, timeout: float = 20.0) -> int | None:
        return super().stop(timeout)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """GET a path below the page (``api/v1/kpis?...``): (status, headers, JSON body or text)."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, reply_headers, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, reply_headers, body = error.code, dict(error.headers), error.read()
        if reply_headers.get("Content-Type", "").startswith("application/json"):
            return status, reply_headers, orjson.loads(body)
        return status, reply_headers, body.decode("utf-8", "replace")


def chromium_available() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            raise AssertionError(
                f"{path} is missing: apt-get install -y chromium chromium-driver fonts-noto-cjk"
            )


@contextmanager
def chromium(language: str = "en-US") -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, a 1366×768 viewport and the console log kept."""
    chromium_available()
    profile = tempfile.mkdtemp(prefix="salespulse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
        f"--lang={language}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        # The viewport itself, not the window, is 1366×768: screenshots show what a laptop shows.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_problems(driver: WebDriver) -> list[dict[str, Any]]:
    """Warnings and errors the page logged since the last call (reading the log empties it)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
