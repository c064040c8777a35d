"""Webhook notifications of stall alerts (SPEC §6): generic JSON, Slack, DingTalk and WeCom.

Each configured :class:`WebhookTarget` receives every alert transition that passes its filters
(``min_severity``, ``states``), formatted the way the service documents:

* ``generic``: the alert as JSON (``StallAlert.model_dump(mode="json")``) plus a ``text`` line;
* ``slack`` (incoming webhook): ``{"text": ..., "blocks": [{"type": "section", "text":
  {"type": "mrkdwn", "text": ...}}]}``; Slack answers ``200 ok``;
* ``dingtalk`` (custom robot, 自定义机器人): ``{"msgtype": "markdown", "markdown": {"title", "text"}}``;
  with a ``secret`` (加签) the URL gets ``timestamp`` (ms) and ``sign`` =
  urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")));
* ``wecom`` (group robot, 群机器人): ``{"msgtype": "markdown", "markdown": {"content": ...}}``.

DingTalk and WeCom answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero errcode
is a failure. Connection errors, timeouts, HTTP 5xx and 429 and non-zero errcodes are retried
with exponential back-off (``backoff_seconds``, doubling, capped at 60 s) up to
``max_attempts``; other HTTP 4xx are permanent. The outcome of every (transition, target) pair is
written to a :class:`DeliveryLog`: "delivered", or "dead" with the last error (the dead-letter
record). A transition the log says was delivered to a target is never sent to it again.

Webhook URLs and secrets are credentials: they are kept out of ``repr`` and of log messages,
which name the target instead.
"""

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from yarl import URL

from salespulse.schemas.alerts import AlertState, Severity, StallAlert

logger = logging.getLogger(__name__)

WebhookKind = Literal["generic", "slack", "dingtalk", "wecom"]
Outcome = Literal["sending", "delivered", "dead"]

ALL_STATES: frozenset[AlertState] = frozenset({"opened", "escalated", "resolved"})
MAX_BACKOFF_SECONDS = 60.0
_SEVERITY_RANK: dict[str, int] = {"warning": 0, "critical": 1}
_ERROR_BODY_CHARS = 200


# --- Configuration ---------------------------------------------------------------------------------


class WebhookTarget(BaseModel):
    """One webhook endpoint and which alert transitions it receives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="Unique name, used in logs and the delivery log."
    )
    kind: WebhookKind = Field(description="Message format: generic JSON, Slack, DingTalk or WeCom.")
    url: str = Field(
        repr=False, description="http(s) URL of the webhook (contains its token: keep it secret)."
    )
    secret: str | None = Field(
        default=None, repr=False, description="DingTalk 加签 secret (SEC...); only for kind 'dingtalk'."
    )
    min_severity: Severity = Field(default="warning", description="Least severity notified.")
    states: frozenset[AlertState] = Field(
        default=ALL_STATES, description="Transitions notified: any of opened, escalated, resolved."
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=300, description="Longest wait for one request.")
    max_attempts: int = Field(default=5, ge=1, le=100, description="Attempts before a message is dead.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, le=MAX_BACKOFF_SECONDS, description="First retry delay; doubles, capped at 60 s."
    )

    @field_validator("name")
    @classmethod
    def _name_is_trimmed(cls, name: str) -> str:
        if name != name.strip():
            raise ValueError("must not start or end with whitespace")
        return name

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if any(char.isspace() for char in url):
            raise ValueError("must not contain whitespace")
        return url

    @field_validator("states", mode="before")
    @classmethod
    def _states_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):  # "opened,resolved" as well as a list
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("states")
    @classmethod
    def _some_state(cls, states: frozenset[AlertState]) -> frozenset[AlertState]:
        if not states:
            raise ValueError("must name at least one of opened, escalated, resolved")
        return states

    @model_validator(mode="after")
    def _secret_for_dingtalk(self) -> "WebhookTarget":
        if self.secret is not None:
            if self.kind != "dingtalk":
                raise ValueError(f"secret is only used by kind 'dingtalk' (signed mode), not '{self.kind}'")
            if not self.secret.strip():
                raise ValueError("secret must not be empty; leave it out for an unsigned DingTalk robot")
        return self

    def accepts(self, alert: StallAlert) -> bool:
        """Whether this target is notified of ``alert`` (state and severity filters)."""
        return (
            alert.state in self.states and _SEVERITY_RANK[alert.severity] >= _SEVERITY_RANK[self.min_severity]
        )

    def backoff(self, failed_attempts: int) -> float:
        """Delay before the next attempt after ``failed_attempts`` failures: 1, 2, 4, ... capped at 60 s."""
        return float(min(self.backoff_seconds * 2 ** (failed_attempts - 1), MAX_BACKOFF_SECONDS))


def parse_targets(entries: Iterable[Any]) -> list[WebhookTarget]:
    """Validate raw webhook entries (``Settings.webhook_entries()``); names must be unique.

    Raises ValueError naming the entry (``webhooks[i]``, 0-based, with its name when known) and
    the field, e.g. ``webhooks[1] ('sales-slack').url: must be an http:// or https:// URL``.
    """
    targets: list[WebhookTarget] = []
    first_index: dict[str, int] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(
                f"webhooks[{index}]: must be an object/table with name, kind and url, got {type(entry).__name__}"
            )
            continue
        label = f"webhooks[{index}]"
        if isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        try:
            target = WebhookTarget.model_validate(entry)
        except ValidationError as error:
            for issue in error.errors():
                field = ".".join(str(part) for part in issue["loc"]) if issue["loc"] else ""
                message = issue["msg"].removeprefix("Value error, ")
                shown = "" if field in ("url", "secret", "") else f" (got {issue.get('input')!r})"
                problems.append(f"{label}{'.' + field if field else ''}: {message}{shown}")
            continue
        if target.name in first_index:
            problems.append(
                f"{label}.name: duplicate name {target.name!r} (also webhooks[{first_index[target.name]}]); "
                "names must be unique"
            )
            continue
        first_index[target.name] = index
        targets.append(target)
    if problems:
        raise ValueError("invalid webhook configuration:\n  " + "\n  ".join(problems))
    return targets


# --- Messages -----------------------------------------------------------------------------------------


def _days(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 86_400))


def _plural(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _situation(alert: StallAlert) -> str:
    """What is wrong, as of the transition: 'idle for 8 days in proposal'."""
    elapsed = _days(alert.at - alert.stalled_since)
    was = "was " if alert.state == "resolved" else ""
    if alert.reason == "idle":
        return f"{was}idle for {_plural(alert.threshold_days + elapsed)} in {alert.stage}"
    if alert.reason == "stuck":
        return f"{was}stuck in {alert.stage} for {_plural(alert.threshold_days + elapsed)}"
    if elapsed == 0:
        return f"{was}past its expected close date in {alert.stage}"
    return f"{was}overdue by {_plural(elapsed)} in {alert.stage}"


def _emoji(alert: StallAlert) -> str:
    if alert.state == "resolved":
        return "✅"
    return "🚨" if alert.severity == "critical" else "⚠️"


_RESOLUTIONS = {
    "activity": "resolved by new activity",
    "stage_change": "resolved by a stage change",
    "won": "resolved: deal won",
    "lost": "resolved: deal lost",
    "rule_cleared": "resolved: rule no longer holds",
}


def _state(alert: StallAlert) -> str:
    if alert.state == "resolved" and alert.resolved_by:
        return _RESOLUTIONS.get(alert.resolved_by, f"resolved ({alert.resolved_by})")
    return alert.state


def alert_text(alert: StallAlert) -> str:
    """One human line, e.g. '⚠️ Deal D-1 (rep r1, team t1) idle for 8 days in proposal — opened (warning)'."""
    return (
        f"{_emoji(alert)} Deal {alert.deal_id} (rep {alert.rep_id}, team {alert.team_id}) "
        f"{_situation(alert)} — {_state(alert)} ({alert.severity})"
    )


def alert_title(alert: StallAlert) -> str:
    """A short title (DingTalk markdown title, shown in the chat list)."""
    return f"{_emoji(alert)} Stalled deal {alert.deal_id}: {alert.reason} {alert.state}"


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _details(alert: StallAlert) -> list[tuple[str, str]]:
    return [
        ("Customer", alert.customer_id),
        ("Region", alert.region_id),
        ("Amount", f"{alert.amount:,} {alert.currency}"),
        ("Stalled since", _when(alert.stalled_since)),
        ("At", _when(alert.at)),
    ]


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn reserves &, < and > (https://api.slack.com/reference/surfaces/formatting#escaping).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_message(kind: WebhookKind, alert: StallAlert) -> dict[str, Any]:
    """The JSON body posted to a target of ``kind`` for ``alert``."""
    text = alert_text(alert)
    details = _details(alert)
    if kind == "generic":
        return {**alert.model_dump(mode="json"), "text": text}
    if kind == "slack":
        lines = [f"*{_slack_escape(text)}*"] + [f"*{key}:* {_slack_escape(value)}" for key, value in details]
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
        }
    if kind == "dingtalk":
        body = "\n".join([f"#### {text}", "", *(f"- **{key}:** {value}" for key, value in details)])
        return {"msgtype": "markdown", "markdown": {"title": alert_title(alert), "text": body}}
    if kind == "wecom":
        colour = "info" if alert.state == "resolved" else "warning"
        body = "\n".join(
            [f'<font color="{colour}">{text}</font>', *(f"> {key}: {value}" for key, value in details)]
        )
        return {"msgtype": "markdown", "markdown": {"content": body}}
    raise ValueError(f"unknown webhook kind {kind!r}")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), not yet URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters appended (percent-encoded)."""
    sign = urllib.parse.quote_plus(dingtalk_sign(secret, timestamp_ms))
    separator = "&" if urllib.parse.urlsplit(url).query else ("" if url.endswith("?") else "?")
    return f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"


# --- Delivery log -----------------------------------------------------------------------------------


class DeliveryLog(Protocol):
    """Outcome of each (transition, target) pair: what makes a notification at-most-once."""

    def delivered(self, transition_id: str, target_name: str) -> bool:
        """Whether the transition was already delivered to the target."""
        ...

    def record(
        self, transition_id: str, target_name: str, outcome: Outcome, attempts: int, error: str | None
    ) -> None:
        """Store an outcome: 'delivered', or 'dead' (gave up) with the last error."""
        ...


@dataclass(frozen=True)
class DeliveryRecord:
    transition_id: str
    target_name: str
    outcome: Outcome
    attempts: int
    error: str | None


class InMemoryDeliveryLog:
    """A :class:`DeliveryLog` in memory (tests, or runs without ClickHouse); final outcomes in ``records``."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []
        self._delivered: set[tuple[str, str]] = set()

    def delivered(self, transition_id: str, target_name: str) -> bool:
        return (transition_id, target_name) in self._delivered

    def record(
        self, transition_id: str, target_name: str, outcome: Outcome, attempts: int, error: str | None
    ) -> None:
        if outcome == "sending":
            return  # in memory nothing survives a crash: only final outcomes are worth keeping
        self.records.append(DeliveryRecord(transition_id, target_name, outcome, attempts, error))
        if outcome == "delivered":
            self._delivered.add((transition_id, target_name))

    def dead(self) -> list[DeliveryRecord]:
        """The dead-letter records."""
        return [record for record in self.records if record.outcome == "dead"]


# --- Notifier -----------------------------------------------------------------------------------------


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

    async def notify(self, alerts: Sequence[StallAlert]) -> NotifyCounts:
        """Notify every matching target of each alert not yet delivered to it; returns this call's counts.

        Targets run concurrently; each target gets its messages in the order of ``alerts``.
        Errors of the delivery log propagate (after every target has finished).
        """
        work: list[tuple[WebhookTarget, list[StallAlert]]] = []
        for target in self.targets:
            seen: set[str] = set()
            pending = []
            for alert in alerts:
                if alert.transition_id in seen or not target.accepts(alert):
                    continue
                seen.add(alert.transition_id)
                if not self.log.delivered(alert.transition_id, target.name):
                    pending.append(alert)
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
        for alert in alerts:
            await self._deliver(session, target, alert, counts)

    async def _deliver(
        self, session: aiohttp.ClientSession, target: WebhookTarget, alert: StallAlert, counts: NotifyCounts
    ) -> None:
        body = orjson.dumps(format_message(target.kind, alert))
        # Written before the first attempt: a durable log that finds 'sending' after a crash does
        # not know whether the receiver got it, and must not send it again (at most once).
        self.log.record(alert.transition_id, target.name, "sending", 0, None)
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._post(session, target, body)
            except _Failure as failure:
                error = str(failure)
                if failure.permanent or attempts >= target.max_attempts:
                    self.log.record(alert.transition_id, target.name, "dead", attempts, error)
                    counts.dead += 1
                    logger.warning(
                        "webhook %s (%s): gave up on %s after %d attempt(s): %s",
                        target.name,
                        target.kind,
                        alert.transition_id,
                        attempts,
                        error,
                    )
                    return
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
            self.log.record(alert.transition_id, target.name, "delivered", attempts, None)
            counts.delivered += 1
            return

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
