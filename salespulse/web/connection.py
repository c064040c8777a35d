"""Where the manager page reads from, and the ClickHouse client it reads with.

The page is its own process and always speaks ClickHouse's HTTP interface: to a ClickHouse
server in production (give it read-only credentials, ``SALESPULSE_UI_CLICKHOUSE_URL``), or in
embedded mode to the worker's read-only query endpoint, because chDB allows one engine per
process and the worker holds it.
"""

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from salespulse.config import Settings

log = logging.getLogger(__name__)
_CODE = re.compile(r"code: (\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


class StoreUnavailable(RuntimeError):
    """ClickHouse cannot be reached or refused the query; the message says where and why."""


def refusal(url: str, error: Exception) -> StoreUnavailable:
    """What to tell a client when ClickHouse answered with an error: its code and name, never its
    text, which can quote the SQL. The whole error goes to the log."""
    text = str(error)
    log.warning("ClickHouse at %s refused a query: %s", redacted(url), text[:2000])
    code, name = _CODE.search(text), _NAME.search(text)
    what = (
        ", ".join(part for part in (code and f"code {code[1]}", name and name[1]) if part)
        or type(error).__name__
    )
    return StoreUnavailable(
        f"ClickHouse refused the query ({what}); check SALESPULSE_CLICKHOUSE_DATABASE and that the "
        "workers created the views (salespulse migrate). The page retries on its own."
    )


def store_url(settings: Settings) -> str:
    """The page's ClickHouse: its own URL, else a configured server, else the endpoint of `up`."""
    if settings.ui_clickhouse_url:
        return settings.ui_clickhouse_url
    if settings.clickhouse_url and settings.clickhouse_url.startswith(("http://", "https://")):
        return settings.clickhouse_url
    return f"http://{settings.sql_host}:{settings.sql_port}"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Store:
    """A lazily connected, shared clickhouse-connect client.

    The page starts whether or not ClickHouse is up yet (``up`` starts it beside the worker);
    until the first connection succeeds every request gets a clear 503. No session id: requests
    run concurrently, and a ClickHouse session admits one query at a time.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = store_url(settings)
        self.database = settings.clickhouse_database
        self.timeout = settings.clickhouse_timeout_seconds
        self._client: Client | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                try:
                    self._client = clickhouse_connect.get_client(
                        dsn=self.url,
                        database=self.database,
                        autogenerate_session_id=False,
                        connect_timeout=min(10.0, self.timeout),
                        send_receive_timeout=self.timeout,
                    )
                except OperationalError as error:
                    raise StoreUnavailable(
                        f"cannot reach ClickHouse at {redacted(self.url)} ({type(error).__name__}); "
                        "is the worker (or `salespulse up`) running? The page retries on its own."
                    ) from None
                except Exception as error:
                    raise refusal(self.url, error) from None
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
