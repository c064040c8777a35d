"""Webhook notifier (contract §6): each service's format, retries with back-off, at most one notification.

A real HTTP receiver (aiohttp.web on 127.0.0.1, a free port) stands in for the four services.
"""

import asyncio
import base64
import hashlib
import hmac
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web

from salespulse.config import WebhookTarget, parse_targets
from salespulse.schemas.alerts import StallAlert
from salespulse.sinks.webhooks.delivery_log import InMemoryDeliveryLog
from salespulse.sinks.webhooks.formats import alert_text
from salespulse.sinks.webhooks.notifier import NotifyCounts, WebhookNotifier

SINCE = datetime(2024, 5, 10, 9, 0, tzinfo=UTC)
SECRET = "SECa1b2+c3/d4=e5"  # characters that base64 and URL encoding must both handle


def make_alert(state: str = "opened", severity: str = "warning", **changes: Any) -> StallAlert:
    at = {"opened": SINCE + timedelta(days=1), "escalated": SINCE + timedelta(days=7)}.get(
        state, SINCE + timedelta(days=2)
    )
    fields: dict[str, Any] = {
        "alert_id": "a-D-1-idle",
        "transition_id": f"a-D-1-idle:{state}",
        "deal_id": "D-1",
        "reason": "idle",
        "state": state,
        "severity": severity,
        "at": at,
        "stalled_since": SINCE,
        "threshold_days": 7,
        "resolved_by": "activity" if state == "resolved" else None,
        "rep_id": "r1",
        "team_id": "t1",
        "region_id": "emea",
        "customer_id": "c-42",
        "stage": "proposal",
        "amount": Decimal("12500.00"),
        "currency": "USD",
        "detected_at": at + timedelta(seconds=3),
    }
    fields.update(changes)
    return StallAlert(**fields)


OPENED = make_alert("opened")
RESOLVED = make_alert("resolved")


@dataclass
class Received:
    path: str
    query: dict[str, str]
    raw_query: str
    body: Any
    content_type: str


@dataclass
class Receiver:
    """Answers like the services do; ``behaviour`` decides the fate of attempt n of each message."""

    behaviour: str = "flaky"  # flaky | ok | always500 | bad_request | errcode | slow
    attempts: Counter[tuple[str, bytes]] = field(default_factory=Counter)
    requests: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        key = (request.path, raw)  # the same message, whichever attempt
        self.attempts[key] += 1
        attempt = self.attempts[key]
        received = Received(
            request.path,
            dict(request.query),
            request.raw_path.partition("?")[2],
            orjson.loads(raw),
            request.content_type,
        )
        self.requests.append(received)
        kind = request.path.strip("/")
        if self.behaviour == "flaky" and attempt == 1:
            return web.Response(status=500, text="internal error")
        if self.behaviour == "flaky" and attempt == 2:
            assert request.transport is not None
            request.transport.close()  # the client sees the connection dropped
            return web.Response(status=503)
        if self.behaviour == "always500":
            return web.Response(status=500, text="boom")
        if self.behaviour == "bad_request":
            return web.Response(status=400, text="invalid_payload")
        if self.behaviour == "slow":
            await asyncio.sleep(1)
        if self.behaviour == "errcode" and attempt == 1:
            return web.json_response({"errcode": 130101, "errmsg": "send too fast"})
        self.accepted.append(received)
        if kind in ("dingtalk", "wecom"):
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        if kind == "slack":
            return web.Response(text="ok")
        return web.Response(status=204)


async def serve(receiver: Receiver, test: Callable[[str], Awaitable[None]]) -> None:
    app = web.Application()
    app.router.add_post("/{kind}", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await test(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def target(kind: str, base: str, **changes: Any) -> WebhookTarget:
    url = f"{base}/{kind}" + ("?access_token=tok123" if kind in ("dingtalk", "wecom") else "")
    entry: dict[str, Any] = {"name": f"{kind}-hook", "kind": kind, "url": url}
    if kind == "dingtalk":
        entry["secret"] = SECRET
    entry.update(changes)
    return WebhookTarget.model_validate(entry)


def expected_sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- Formats, retries and no duplicates --------------------------------------------------------------


def test_alert_text_reads_like_a_sentence() -> None:
    assert alert_text(OPENED) == "⚠️ Deal D-1 (rep r1, team t1) idle for 8 days in proposal — opened (warning)"
    assert alert_text(RESOLVED) == (
        "✅ Deal D-1 (rep r1, team t1) was idle for 9 days in proposal — resolved by new activity (warning)"
    )
    escalated = make_alert("escalated", "critical")
    assert alert_text(escalated).startswith("🚨 Deal D-1")
    assert alert_text(escalated).endswith("idle for 14 days in proposal — escalated (critical)")
    overdue = make_alert("opened", reason="overdue", threshold_days=0, at=SINCE + timedelta(days=3))
    assert "overdue by 3 days in proposal" in alert_text(overdue)
    stuck = make_alert("opened", reason="stuck", threshold_days=14, at=SINCE)
    assert "stuck in proposal for 14 days" in alert_text(stuck)


def test_late_data_transitions_say_what_happened() -> None:
    deescalated = make_alert("deescalated", "warning", previous_severity="critical", sequence=3)
    assert alert_text(deescalated) == (
        "🔽 Deal D-1 (rep r1, team t1) idle for 9 days in proposal — deescalated: late data, no longer critical "
        "(warning)"
    )
    withdrawn = make_alert("resolved", resolved_by="late_data", previous_severity="warning", sequence=2)
    assert alert_text(withdrawn) == (
        "✅ Deal D-1 (rep r1, team t1) was idle for 9 days in proposal — resolved: late data shows the rule "
        "did not hold (warning)"
    )


def check_format(kind: str, got: Received, alert: StallAlert) -> None:
    text = alert_text(alert)
    body = got.body
    assert got.content_type == "application/json"
    if kind == "generic":
        assert body == {**alert.model_dump(mode="json"), "text": text}
        assert body["transition_id"] == alert.transition_id
        assert body["amount"] == "12500.00"
    elif kind == "slack":
        # Incoming webhook: "text" (notification fallback) plus Block Kit blocks.
        assert set(body) == {"text", "blocks"}
        assert body["text"] == text
        [block] = body["blocks"]
        assert block["type"] == "section"
        assert block["text"]["type"] == "mrkdwn"
        assert text in block["text"]["text"]
        assert "c-42" in block["text"]["text"]
    elif kind == "dingtalk":
        assert set(body) == {"msgtype", "markdown"}
        assert body["msgtype"] == "markdown"
        assert set(body["markdown"]) == {"title", "text"}
        assert "D-1" in body["markdown"]["title"]
        assert text in body["markdown"]["text"]
        # 加签: timestamp in ms and sign = base64(HMAC-SHA256(secret, f"{timestamp}\n{secret}")), URL-encoded.
        assert got.query["access_token"] == "tok123"
        timestamp = got.query["timestamp"]
        assert abs(int(timestamp) - time.time() * 1000) < 60_000
        sign = expected_sign(timestamp, SECRET)
        assert got.query["sign"] == sign
        assert f"sign={urllib.parse.quote_plus(sign)}" in got.raw_query
    elif kind == "wecom":
        assert set(body) == {"msgtype", "markdown"}
        assert body["msgtype"] == "markdown"
        assert set(body["markdown"]) == {"content"}
        assert text in body["markdown"]["content"]
        assert got.query["access_token"] == "tok123"


@pytest.mark.parametrize("kind", ["generic", "slack", "dingtalk", "wecom"])
def test_each_format_is_delivered_once_after_retries(kind: str) -> None:
    receiver = Receiver("flaky")
    sleep = RecordingSleep()
    log = InMemoryDeliveryLog()

    async def scenario(base: str) -> None:
        notifier = WebhookNotifier([target(kind, base)], log, sleep=sleep)
        counts = await notifier.notify([OPENED, RESOLVED])
        assert counts == NotifyCounts(delivered=2, retried=4, dead=0)
        assert len(receiver.requests) == 6  # 3 attempts each: 500, dropped connection, accepted
        assert sorted(receiver.attempts.values()) == [3, 3]
        assert [got.body for got in receiver.requests[:3]] == [receiver.requests[0].body] * 3  # in order
        assert len(receiver.accepted) == 2
        for got, alert in zip(receiver.accepted, [OPENED, RESOLVED], strict=True):
            check_format(kind, got, alert)
        assert sleep.delays == [1.0, 2.0, 1.0, 2.0]
        assert [(r.transition_id, r.outcome, r.attempts, r.error) for r in log.records] == [
            (OPENED.transition_id, "delivered", 3, None),
            (RESOLVED.transition_id, "delivered", 3, None),
        ]
        # The same transitions again (a restart, a replay): the log says delivered, nothing is sent.
        again = await notifier.notify([OPENED, RESOLVED])
        assert again == NotifyCounts()
        assert len(receiver.requests) == 6
        # A fresh notifier on the same log behaves the same.
        fresh = WebhookNotifier([target(kind, base)], log, sleep=sleep)
        assert await fresh.notify([RESOLVED, OPENED, OPENED]) == NotifyCounts()
        assert len(receiver.requests) == 6
        assert notifier.counts == NotifyCounts(delivered=2, retried=4, dead=0)

    asyncio.run(serve(receiver, scenario))


def test_all_targets_at_once_and_a_failing_target_does_not_block_others() -> None:
    receiver = Receiver("ok")
    broken = Receiver("always500")
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        async def inner(broken_base: str) -> None:
            targets = [target(kind, base) for kind in ("generic", "slack", "dingtalk", "wecom")]
            targets.append(target("generic", broken_base, name="broken", max_attempts=3))
            notifier = WebhookNotifier(targets, log, sleep=sleep)
            counts = await notifier.notify([OPENED, RESOLVED])
            assert counts == NotifyCounts(delivered=8, retried=4, dead=2)
            assert Counter(got.path for got in receiver.accepted) == {
                "/generic": 2,
                "/slack": 2,
                "/dingtalk": 2,
                "/wecom": 2,
            }
            for kind in ("generic", "slack", "dingtalk", "wecom"):
                got = [g for g in receiver.accepted if g.path == f"/{kind}"]
                for received, alert in zip(got, [OPENED, RESOLVED], strict=True):  # in order per target
                    check_format(kind, received, alert)
            assert len(broken.requests) == 6

        await serve(broken, inner)

    asyncio.run(serve(receiver, scenario))


# --- Failures -------------------------------------------------------------------------------------------


def test_permanent_4xx_is_dead_after_one_attempt() -> None:
    receiver = Receiver("bad_request")
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        notifier = WebhookNotifier([target("slack", base)], log, sleep=sleep)
        counts = await notifier.notify([OPENED])
        assert counts == NotifyCounts(delivered=0, retried=0, dead=1)

    asyncio.run(serve(receiver, scenario))
    assert len(receiver.requests) == 1
    assert sleep.delays == []
    [record] = log.dead()
    assert (record.transition_id, record.target_name, record.attempts) == (
        OPENED.transition_id,
        "slack-hook",
        1,
    )
    assert record.error == "HTTP 400: invalid_payload"


def test_always_500_is_dead_after_max_attempts_with_the_error(caplog: pytest.LogCaptureFixture) -> None:
    receiver = Receiver("always500")
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        notifier = WebhookNotifier([target("generic", base, max_attempts=3)], log, sleep=sleep)
        with caplog.at_level("WARNING", logger="salespulse.sinks.webhooks"):
            counts = await notifier.notify([OPENED])
        assert counts == NotifyCounts(delivered=0, retried=2, dead=1)

    asyncio.run(serve(receiver, scenario))
    assert len(receiver.requests) == 3
    assert sleep.delays == [1.0, 2.0]
    [record] = log.records
    assert (record.outcome, record.attempts, record.error) == ("dead", 3, "HTTP 500: boom")
    assert not log.delivered(OPENED.transition_id, "generic-hook")
    assert "gave up" in caplog.text and "generic-hook" in caplog.text
    assert "127.0.0.1" not in caplog.text  # the URL (a credential) is not logged


def test_nonzero_errcode_is_a_failure_and_retried() -> None:
    receiver = Receiver("errcode")
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        notifier = WebhookNotifier([target("dingtalk", base), target("wecom", base)], log, sleep=sleep)
        counts = await notifier.notify([OPENED])
        assert counts == NotifyCounts(delivered=2, retried=2, dead=0)

    asyncio.run(serve(receiver, scenario))
    assert len(receiver.requests) == 4
    assert sleep.delays == [1.0, 1.0]
    assert {(r.target_name, r.outcome, r.attempts) for r in log.records} == {
        ("dingtalk-hook", "delivered", 2),
        ("wecom-hook", "delivered", 2),
    }


def test_errcode_failure_is_recorded_when_attempts_run_out() -> None:
    receiver = Receiver("errcode")
    log = InMemoryDeliveryLog()

    async def scenario(base: str) -> None:
        notifier = WebhookNotifier([target("wecom", base, max_attempts=1)], log, sleep=RecordingSleep())
        await notifier.notify([OPENED])

    asyncio.run(serve(receiver, scenario))
    [record] = log.dead()
    assert record.error == "errcode 130101: send too fast"


def test_timeouts_are_retried() -> None:
    receiver = Receiver("slow")
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        hook = target("generic", base, timeout_seconds=0.1, max_attempts=2, backoff_seconds=0.5)
        notifier = WebhookNotifier([hook], log, sleep=sleep)
        assert await notifier.notify([OPENED]) == NotifyCounts(delivered=0, retried=1, dead=1)

    asyncio.run(serve(receiver, scenario))
    assert sleep.delays == [0.5]
    [record] = log.dead()
    assert record.error == "timed out after 0.1s"


def test_connection_refused_is_retried_and_backoff_is_capped() -> None:
    log = InMemoryDeliveryLog()
    sleep = RecordingSleep()

    async def scenario(base: str) -> None:
        hook = target("generic", "http://127.0.0.1:9", max_attempts=4, backoff_seconds=40)
        notifier = WebhookNotifier([hook], log, sleep=sleep)
        assert await notifier.notify([OPENED]) == NotifyCounts(delivered=0, retried=3, dead=1)

    asyncio.run(serve(Receiver(), scenario))
    assert sleep.delays == [40.0, 60.0, 60.0]
    [record] = log.dead()
    assert record.attempts == 4 and record.error and "Connect" in record.error


# --- Filters --------------------------------------------------------------------------------------------


def test_severity_and_state_filters() -> None:
    receiver = Receiver("ok")
    log = InMemoryDeliveryLog()
    escalated = make_alert("escalated", "critical")
    resolved_critical = make_alert("resolved", "critical")
    # Late data: a critical alert back to warning, then resolved; a critical-only target hears of
    # the deescalation (it was critical before) but not of the resolution of a warning.
    deescalated = make_alert("deescalated", "warning", previous_severity="critical", alert_id="a-D-2")
    resolved_after = make_alert("resolved", "warning", previous_severity="warning", alert_id="a-D-2")
    deescalated = deescalated.model_copy(update={"transition_id": "a-D-2:deescalated"})
    resolved_after = resolved_after.model_copy(update={"transition_id": "a-D-2:resolved"})

    async def scenario(base: str) -> None:
        targets = [
            target("generic", base, name="critical-only", min_severity="critical"),
            target("slack", base, name="opened-only", states=["opened"]),
            target("wecom", base, name="no-resolved", states="opened,escalated"),
        ]
        notifier = WebhookNotifier(targets, log, sleep=RecordingSleep())
        await notifier.notify([OPENED, escalated, RESOLVED, resolved_critical, deescalated, resolved_after])

    asyncio.run(serve(receiver, scenario))
    sent = {(r.target_name, r.transition_id) for r in log.records}
    assert sent == {
        ("critical-only", escalated.transition_id),
        ("critical-only", resolved_critical.transition_id),
        ("critical-only", "a-D-2:deescalated"),
        ("opened-only", OPENED.transition_id),
        ("no-resolved", OPENED.transition_id),
        ("no-resolved", escalated.transition_id),
    }
    assert len(receiver.requests) == 6


def test_nothing_to_send_opens_no_session() -> None:
    def no_session() -> Any:
        raise AssertionError("no session expected")

    hook = WebhookTarget(name="h", kind="generic", url="http://127.0.0.1:9/x", min_severity="critical")
    notifier = WebhookNotifier([hook], InMemoryDeliveryLog(), session_factory=no_session)
    assert asyncio.run(notifier.notify([OPENED])) == NotifyCounts()


# --- Configuration --------------------------------------------------------------------------------------


def test_parse_targets_defaults() -> None:
    [hook] = parse_targets(
        [{"name": "ops", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}]
    )
    assert hook.min_severity == "warning"
    assert hook.states == frozenset({"opened", "escalated", "deescalated", "resolved"})
    assert (hook.timeout_seconds, hook.max_attempts, hook.backoff_seconds) == (5, 5, 1.0)
    assert hook.secret is None
    assert "hooks.slack.com" not in repr(hook)  # the URL carries the token
    with pytest.raises(Exception):  # noqa: B017 - frozen
        hook.name = "other"
    assert parse_targets([]) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a", "kind": "teams", "url": "https://x.test/"}], "webhooks[0] ('a').kind"),
        (
            [{"name": "a", "kind": "generic", "url": "ftp://x.test/"}],
            "webhooks[0] ('a').url: must be an http",
        ),
        ([{"name": "a", "kind": "generic"}], "webhooks[0] ('a').url: Field required"),
        ([{"kind": "generic", "url": "https://x.test/"}], "webhooks[0].name: Field required"),
        (
            [{"name": "a", "kind": "generic", "url": "https://x.test/", "min_severity": "info"}],
            "webhooks[0] ('a').min_severity",
        ),
        (
            [{"name": "a", "kind": "generic", "url": "https://x.test/", "states": ["closed"]}],
            "webhooks[0] ('a').states",
        ),
        ([{"name": "a", "kind": "generic", "url": "https://x.test/", "states": []}], "at least one"),
        (
            [{"name": "a", "kind": "slack", "url": "https://x.test/", "secret": "SEC1"}],
            "secret is only used by kind 'dingtalk'",
        ),
        (
            [{"name": "a", "kind": "generic", "url": "https://x.test/", "max_attempts": 0}],
            "webhooks[0] ('a').max_attempts",
        ),
        (
            [{"name": "a", "kind": "generic", "url": "https://x.test/", "timeout_seconds": -1}],
            "webhooks[0] ('a').timeout_seconds",
        ),
        (
            [{"name": "a", "kind": "generic", "url": "https://x.test/", "colour": "red"}],
            "webhooks[0] ('a').colour",
        ),
        (
            [
                {"name": "a", "kind": "generic", "url": "https://x.test/"},
                {"name": "a", "kind": "slack", "url": "https://y.test/"},
            ],
            "webhooks[1] ('a').name: duplicate name 'a' (also webhooks[0])",
        ),
        (["https://x.test/"], "webhooks[0]: must be an object"),
    ],
)
def test_parse_targets_errors_name_the_entry_and_field(entries: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match="invalid webhook configuration") as raised:
        parse_targets(entries)
    assert message in str(raised.value)


def test_parse_targets_does_not_echo_secrets() -> None:
    with pytest.raises(ValueError) as raised:
        parse_targets([{"name": "a", "kind": "wecom", "url": "gopher://secret-token", "secret": "SECxyz"}])
    assert "secret-token" not in str(raised.value) and "SECxyz" not in str(raised.value)
