"""Webhooks for stall alerts: reads the alerts topic and notifies the configured targets.

The stall monitor publishes every transition to the alerts topic exactly once; this service
reads that topic in the consumer group ``<app_id>-webhooks`` (so with several workers each
transition is handled by one of them), hands new transitions to the notifier
(``sinks.webhooks``) and commits the offsets after they were handled. The delivery log lives in
ClickHouse (``webhook_deliveries``): a transition already delivered — or whose delivery was
under way when a worker died — is never sent to the same target again.

Transitions older than ``notify_max_age_hours`` (event time) only go to the topic: a backfill
of last year's CRM history must not page anyone.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client
from mode import Service

from salespulse.config import Settings, WebhookTarget, parse_targets
from salespulse.kafka.consumers import group_consumer
from salespulse.kafka.topics import Topics
from salespulse.schemas.alerts import StallAlert
from salespulse.sinks.clickhouse.client import connect
from salespulse.sinks.webhooks.delivery_log import ClickHouseDeliveryLog
from salespulse.sinks.webhooks.notifier import WebhookNotifier

log = logging.getLogger(__name__)


class AlertNotifier(Service):
    """Notifies webhook targets of each new alert transition (does nothing without targets)."""

    def __init__(self, settings: Settings, ready: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.targets: list[WebhookTarget] = parse_targets(settings.webhook_entries())
        self._ready = ready  # set once the ingest service has migrated ClickHouse
        self._client: Client | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.notifier: WebhookNotifier | None = None

    async def on_start(self) -> None:
        if not self.targets:
            return
        await self._ready.wait()
        self._client = await asyncio.to_thread(connect, self.settings)
        # The notifier calls the log in batches on a thread of its own, never on the event loop.
        self.notifier = WebhookNotifier(
            self.targets, ClickHouseDeliveryLog(self._client, self.settings.clickhouse_database)
        )
        self._consumer = group_consumer(
            self.settings,
            "webhooks",
            Topics.from_settings(self.settings).alerts,
            max_poll_interval_ms=3_600_000,  # retries with back-off can take minutes
        )
        await self._consumer.start()
        log.info("webhooks: notifying %s", ", ".join(f"{t.name} ({t.kind})" for t in self.targets))

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self.notifier is not None:
            await asyncio.to_thread(self.notifier.close)
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    @Service.task
    async def _notify_continuously(self) -> None:
        while not self.should_stop:
            if self._consumer is None or self.notifier is None:
                await self.sleep(1.0)  # not started yet, or no targets
                continue
            try:
                batch = await self._consumer.getmany(timeout_ms=1000, max_records=500)
                alerts = [self._alert(message.value) for messages in batch.values() for message in messages]
                fresh = [alert for alert in alerts if alert is not None and self._recent(alert)]
                if fresh:
                    await self.notifier.notify(fresh)
                if batch:
                    await self._consumer.commit()
            except Exception as error:  # the broker or ClickHouse away: nothing committed, read again
                log.warning("webhooks: %s: %s; retrying", type(error).__name__, str(error)[:300])
                await self.sleep(5.0)
                await self._rewind()

    async def _rewind(self) -> None:
        """Back to the committed offsets, so that the failed batch is read again."""
        consumer = self._consumer
        assert consumer is not None
        try:
            for partition in consumer.assignment():
                committed = await consumer.committed(partition)
                if committed is None:
                    await consumer.seek_to_beginning(partition)
                else:
                    consumer.seek(partition, committed)
        except Exception as error:
            log.warning("webhooks: cannot rewind yet (%s)", error)

    def _recent(self, alert: StallAlert) -> bool:
        age = datetime.now(UTC) - alert.at.astimezone(UTC)
        return age <= timedelta(hours=self.settings.notify_max_age_hours)

    @staticmethod
    def _alert(raw: bytes | None) -> StallAlert | None:
        try:
            return StallAlert.model_validate_json(raw or b"")
        except ValueError:
            log.warning("webhooks: skipped a message on the alerts topic that is not an alert")
            return None
