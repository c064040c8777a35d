"""Posting stall alert transitions to webhook targets (contract §6), with retries, at most once.

Each configured target (``config.WebhookTarget``) receives every transition that passes its
filters (``min_severity``, ``states``), formatted by ``formats``. DingTalk and WeCom answer HTTP
200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero errcode is a failure. Connection errors,
timeouts, HTTP 5xx and 429 and non-zero errcodes are retried with exponential back-off
(``backoff_seconds``, doubling, capped at 60 s) up to ``max_attempts``; other HTTP 4xx are
permanent. The outcome of every (transition, target) pair is written to a ``DeliveryLog``:
"delivered", or "dead" with the last error. A transition the log says was delivered to a target
is never sent to it again.

The log is a database: its calls block. The notifier makes them in batches (one lookup per
``notify``, one 'sending' insert before each chunk of a target's messages, one insert of their
outcomes after it) on a thread of its own, so an alert flood never holds the event loop that
ingest runs on.

Webhook URLs and secrets are credentials: they are kept out of ``repr`` and of log messages,
which name the target instead.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from salespulse.config import MAX_BACKOFF_SECONDS, WebhookTarget
from salespulse.schemas.alerts import StallAlert
from salespulse.sinks.webhooks.delivery_log import DeliveryLog, DeliveryRecord
from salespulse.sinks.webhooks.formats import format_message, signed_url

logger = logging.getLogger(__name__)

_ERROR_BODY_CHARS = 200
# Messages of one target marked 'sending' together: one insert each way per chunk, and after a
# crash at most a chunk per target is left 'sending' (never sent again, at most once).
SENDING_CHUNK = 50


@dataclass
class NotifyCounts:
    """What one or more ``notify`` calls did: messages delivered, retries made, messages given up."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def add(self, other: "NotifyCounts") -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead


class _Failure(Exception):
    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use the back-off


class WebhookNotifier:
    """Posts alert transitions to webhook targets, with retries, at most once per (transition, target)."""

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        log: DeliveryLog,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        names = [target.name for target in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook target names must be unique, got {names}")
        self.targets = list(targets)
        self.log = log
        self._session_factory = session_factory
        self._sleep = sleep
        self._clock_ms = clock_ms
        self.counts = NotifyCounts()  # totals over every notify call
        # One thread for the log: its calls are serialised (a database client is not shared
        # between threads at once) and never run on the event loop.
        self._log_thread = ThreadPoolExecutor(1, thread_name_prefix="delivery-log")

    def close(self) -> None:
        """Release the log's thread (after the last ``notify``)."""
        self._log_thread.shutdown(wait=True)

    async def _in_log_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._log_thread, call, *args)

    async def notify(self, alerts: Sequence[StallAlert]) -> NotifyCounts:
        """Notify every matching target of each alert not yet delivered to it; returns this call's counts.

        Targets run concurrently; each target gets its messages in the order of ``alerts``.
        Errors of the delivery log propagate (after every target has finished).
        """
        candidates: list[tuple[WebhookTarget, list[StallAlert]]] = []
        for target in self.targets:
            seen: set[str] = set()
            accepted = []
            for alert in alerts:
                if alert.transition_id in seen or not target.accepts(alert):
                    continue
                seen.add(alert.transition_id)
                accepted.append(alert)
            if accepted:
                candidates.append((target, accepted))
        pairs = [(alert.transition_id, target.name) for target, accepted in candidates for alert in accepted]
        handled: set[tuple[str, str]] = await self._in_log_thread(self.log.handled, pairs) if pairs else set()
        work = []
        for target, accepted in candidates:
            pending = [alert for alert in accepted if (alert.transition_id, target.name) not in handled]
            if pending:
                work.append((target, pending))
        counts = NotifyCounts()
        if not work:
            return counts
        async with self._session_factory() as session:
            results = await asyncio.gather(
                *(self._notify_target(session, target, pending, counts) for target, pending in work),
                return_exceptions=True,
            )
        self.counts.add(counts)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return counts

    async def _notify_target(
        self,
        session: aiohttp.ClientSession,
        target: WebhookTarget,
        alerts: list[StallAlert],
        counts: NotifyCounts,
    ) -> None:
        for start in range(0, len(alerts), SENDING_CHUNK):
            chunk = alerts[start : start + SENDING_CHUNK]
            # Written before the first attempt: a durable log that finds 'sending' after a crash
            # does not know whether the receiver got it, and must not send it again (at most once).
            sending = [
                DeliveryRecord(alert.transition_id, target.name, "sending", 0, None) for alert in chunk
            ]
            await self._in_log_thread(self.log.record_many, sending)
            outcomes = [await self._deliver(session, target, alert, counts) for alert in chunk]
            await self._in_log_thread(self.log.record_many, outcomes)

    async def _deliver(
        self, session: aiohttp.ClientSession, target: WebhookTarget, alert: StallAlert, counts: NotifyCounts
    ) -> DeliveryRecord:
        """Attempt until delivered or dead; returns the outcome to record (the caller records it)."""
        body = orjson.dumps(format_message(target.kind, alert))
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._post(session, target, body)
            except _Failure as failure:
                error = str(failure)
                if failure.permanent or attempts >= target.max_attempts:
                    counts.dead += 1
                    logger.warning(
                        "webhook %s (%s): gave up on %s after %d attempt(s): %s",
                        target.name,
                        target.kind,
                        alert.transition_id,
                        attempts,
                        error,
                    )
                    return DeliveryRecord(alert.transition_id, target.name, "dead", attempts, error)
                delay = target.backoff(attempts)
                if failure.retry_after is not None:
                    delay = min(max(delay, failure.retry_after), MAX_BACKOFF_SECONDS)
                logger.info(
                    "webhook %s: attempt %d for %s failed (%s); retrying in %.1fs",
                    target.name,
                    attempts,
                    alert.transition_id,
                    error,
                    delay,
                )
                counts.retried += 1
                await self._sleep(delay)
                continue
            counts.delivered += 1
            return DeliveryRecord(alert.transition_id, target.name, "delivered", attempts, None)

    async def _post(self, session: aiohttp.ClientSession, target: WebhookTarget, body: bytes) -> None:
        """One attempt; raises _Failure (permanent or not) unless the service accepted the message."""
        url = target.url
        if target.kind == "dingtalk" and target.secret:
            url = signed_url(url, target.secret, self._clock_ms())  # signed afresh for each attempt
        try:
            async with session.post(
                URL(url, encoded=True),
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=target.timeout_seconds),
            ) as response:
                status = response.status
                text = await response.text(errors="replace")
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise _Failure(f"timed out after {target.timeout_seconds:g}s") from None
        except aiohttp.ClientError as error:
            detail = str(error)
            raise _Failure(f"{type(error).__name__}: {detail}" if detail else type(error).__name__) from None
        snippet = text.strip()[:_ERROR_BODY_CHARS]
        http_error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
        if status == 429 or status >= 500:
            raise _Failure(http_error, retry_after=retry_after)
        if not 200 <= status < 300:
            raise _Failure(http_error, permanent=True)
        if target.kind in ("dingtalk", "wecom"):
            try:
                answer = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _Failure(f"HTTP {status} without a JSON errcode: {snippet}") from None
            errcode = answer.get("errcode") if isinstance(answer, dict) else None
            if errcode != 0:
                errmsg = answer.get("errmsg", "") if isinstance(answer, dict) else ""
                raise _Failure(f"errcode {errcode}: {errmsg}")
