"""The follow-ups gauge: customers due or overdue for their regular contact (定期回访), by team and tier.

The rule itself lives in the ``followup_due`` view (sinks/clickhouse/sql/views_management.sql); this
service only reads it on a timer so that Prometheus can alert on it. Every worker reads the
whole view (it is not split by partition), so aggregate with ``max`` across workers, not ``sum``.
"""

import asyncio
import logging
from typing import Any

from clickhouse_connect.driver.client import Client
from mode import Service

from salespulse.config import Settings
from salespulse.sinks.clickhouse.client import connect
from salespulse.streams.metrics import Metrics

log = logging.getLogger(__name__)


class FollowupGauge(Service):
    """Refreshes ``salespulse_followups_due`` every ``followup_check_interval_seconds``."""

    def __init__(self, settings: Settings, metrics: Metrics, ready: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self._ready = ready  # set once the ingest service has migrated ClickHouse
        self._client: Client | None = None

    async def on_start(self) -> None:
        await self._ready.wait()
        self._client = await asyncio.to_thread(connect, self.settings)

    async def on_stop(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    @Service.task
    async def _refresh_periodically(self) -> None:
        while not self.should_stop:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # ClickHouse away: keep the last values, try again later
                log.warning(
                    "follow-ups gauge: refresh failed (%s: %s)", type(error).__name__, str(error)[:300]
                )
            await self.sleep(self.settings.followup_check_interval_seconds)

    def refresh(self) -> None:
        assert self._client is not None
        rows = self._client.query(
            f"SELECT team_id, tier, status, count() FROM {self.settings.clickhouse_database}.followup_due "
            "GROUP BY team_id, tier, status"
        ).result_rows
        gauge = self.metrics.followups_due
        gauge.clear()  # teams and tiers with nothing due disappear rather than linger
        for team, tier, status, count in rows:
            gauge.labels(team=team, tier=tier, status=status).set(count)
