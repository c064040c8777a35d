"""One client API for the embedded ClickHouse engine (chdb://) and a ClickHouse server (http(s)://)."""

from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from salespulse.config import Settings


def connect(settings: Settings) -> Client:
    """A client for the configured ClickHouse (the embedded engine under data_dir by default)."""
    url = settings.effective_clickhouse_url
    if url.startswith("chdb:"):
        Path(url.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(dsn=url)
    timeout = settings.clickhouse_timeout_seconds
    return clickhouse_connect.get_client(
        dsn=url, connect_timeout=min(10.0, timeout), send_receive_timeout=timeout
    )
