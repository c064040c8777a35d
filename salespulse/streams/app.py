"""The Faust app of a salespulse worker, and the function that runs one.

The worker is a Faust worker: Faust provides the process lifecycle (signals, graceful
shutdown, logging), the web server (``/metrics``, ``/health``, ``/ready``) and timers. The
ingest service (``streams.ingest``) runs inside it and does the high-volume work in batches.
"""

import logging
from collections.abc import Sequence
from typing import Any

import faust
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST

from salespulse.config import Settings
from salespulse.streams.alert_notifier import AlertNotifier
from salespulse.streams.deal_assembly import add_deal_assembly
from salespulse.streams.followups import FollowupGauge
from salespulse.streams.health import Health
from salespulse.streams.ingest import IngestService
from salespulse.streams.metrics import Metrics
from salespulse.streams.reference_tables import add_reference_tables, table_summary
from salespulse.streams.stall_monitor import StallMonitor

log = logging.getLogger(__name__)


def create_app(settings: Settings, metrics: Metrics, health: Health) -> faust.App:
    """A Faust app configured from ``settings``, with the worker's web pages."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.broker.split(",")],
        store=f"{settings.table_store}://",
        datadir=str(settings.data_dir / "tables"),
        recovery_consistency_check=settings.table_consistency_check,
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=settings.broker_session_timeout_seconds,
        broker_heartbeat_interval=max(0.1, settings.broker_session_timeout_seconds / 5),
        broker_rebalance_timeout=settings.broker_rebalance_timeout_seconds,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        producer_acks=-1,
    )

    tables = add_reference_tables(app, settings)
    add_deal_assembly(app, settings, metrics)

    @app.page("/reference")
    async def reference_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(table_summary(tables))

    @app.page("/metrics")
    async def metrics_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # The content type carries a charset, which aiohttp only accepts as a header.
        return web.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/health")
    async def health_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        healthy, details = health.report()
        return web.json(details, status=200 if healthy else 503)

    @app.page("/ready")
    async def ready_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        healthy, details = health.report()
        ready = healthy and health.assigned_partitions > 0
        return web.json({**details, "ready": ready}, status=200 if ready else 503)

    return app


def worker_services(settings: Settings, metrics: Metrics, health: Health) -> list[Service]:
    """The services a worker runs beside the Faust app."""
    ingest = IngestService(settings, metrics, health)
    monitor = StallMonitor(
        settings, metrics, ingest.sink_ready, ingest.owned_deal_partitions, lambda: ingest.catching_up
    )
    ingest.flush_listeners.append(monitor.wake)
    return [
        ingest,
        monitor,
        FollowupGauge(settings, metrics, ingest.sink_ready),
        AlertNotifier(settings, ingest.sink_ready),
    ]


def run_worker(settings: Settings, extra_services: Sequence[Service] = (), **worker_options: Any) -> None:
    """Run one worker until SIGINT/SIGTERM; everything accepted is flushed before exit.

    ``extra_services`` run in the worker's process too: in embedded mode the read-only query
    endpoint, which must share the process because chDB allows one engine per process.
    """
    metrics = Metrics()
    health = Health()
    metrics.worker_info.labels(
        app_id=settings.app_id, clickhouse=_redacted(settings.effective_clickhouse_url)
    ).set(1)
    app = create_app(settings, metrics, health)
    worker = faust.Worker(
        app,
        *worker_services(settings, metrics, health),
        *extra_services,
        loglevel=settings.log_level,
        redirect_stdouts=False,
        logging_config=logging_config(settings),
        **worker_options,
    )
    worker.execute_from_commandline()


def logging_config(settings: Settings) -> dict[str, Any] | None:
    """With ``log_format=json``, one JSON object per log line (for log shippers); else Faust's default."""
    if settings.log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["default"]},
    }


def _redacted(url: str) -> str:
    """The URL without its password, for logs and metrics."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
