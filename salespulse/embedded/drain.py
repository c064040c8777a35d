"""A clean stop of `up` that loses nothing: wait until the worker has written what the broker holds.

The embedded broker keeps messages in memory (by default): whatever the worker has not written
to ClickHouse when the broker stops is gone. So a clean stop first stops the input it controls
(the simulator, a gateway), then waits until the worker's ingest group has committed, on every
input partition, the true end of that partition: committed means written to ClickHouse (the
worker commits only after a batch is written). The wait is bounded and reported as it goes.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from salespulse.config import Settings
from salespulse.kafka.lag import group_lag
from salespulse.kafka.topics import Topics

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    left: int  # messages not written when the wait ended (0 when drained)
    seconds: float


def ingest_group(settings: Settings) -> str:
    """The consumer group of the worker's ingest service (see streams.ingest)."""
    return f"{settings.app_id}-ingest"


async def unwritten(settings: Settings) -> int:
    """Messages on the input topics the worker has not written yet."""
    topics = [info.name for info in Topics.from_settings(settings).inputs]
    lag = await asyncio.wait_for(group_lag(settings.broker, ingest_group(settings), topics), 30)
    return sum(lag.values())


def wait_until_written(
    settings: Settings,
    worker_running: Callable[[], bool],
    report: Callable[[int, float], None],
    timeout: float | None = None,
) -> DrainResult:
    """Until the worker has written every message on the input topics, at most ``timeout`` seconds.

    ``report(messages_left, seconds_waited)`` is called after each look. A look that fails (the
    broker busy, the worker restarting) counts as not drained yet.
    """
    limit = settings.stop_drain_timeout_seconds if timeout is None else timeout
    started = time.monotonic()
    left = -1
    while True:
        waited = time.monotonic() - started
        try:
            left = asyncio.run(unwritten(settings))
        except Exception:
            left = max(left, -1)
        if left == 0:
            return DrainResult(True, 0, waited)
        report(left, waited)
        if waited >= limit or not worker_running():
            return DrainResult(False, left, waited)
        time.sleep(POLL_SECONDS)
