"""How a stall alert transition reads in each webhook format (contract §6).

* ``generic``: the alert as JSON (``StallAlert.model_dump(mode="json")``) plus a ``text`` line;
* ``slack`` (incoming webhook): ``{"text": ..., "blocks": [{"type": "section", "text":
  {"type": "mrkdwn", "text": ...}}]}``;
* ``dingtalk`` (custom robot, 自定义机器人): ``{"msgtype": "markdown", "markdown": {"title", "text"}}``;
  with a ``secret`` (加签) the URL gets ``timestamp`` (ms) and ``sign`` =
  urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")));
* ``wecom`` (group robot, 群机器人): ``{"msgtype": "markdown", "markdown": {"content": ...}}``.

Every format says which transition it is: ``opened``, ``escalated``, ``deescalated`` (late data
showed it is not critical: "deescalated: late data, no longer critical") or ``resolved`` and how
(``late_data``: "resolved: late data shows the rule did not hold").
"""

import base64
import hashlib
import hmac
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from salespulse.config import WebhookKind
from salespulse.schemas.alerts import StallAlert


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
    if alert.state == "deescalated":
        return "🔽"
    return "🚨" if alert.severity == "critical" else "⚠️"


_RESOLUTIONS = {
    "activity": "resolved by new activity",
    "stage_change": "resolved by a stage change",
    "won": "resolved: deal won",
    "lost": "resolved: deal lost",
    "rule_cleared": "resolved: rule no longer holds",
    "late_data": "resolved: late data shows the rule did not hold",
}


def _state(alert: StallAlert) -> str:
    if alert.state == "resolved" and alert.resolved_by:
        return _RESOLUTIONS.get(alert.resolved_by, f"resolved ({alert.resolved_by})")
    if alert.state == "deescalated":
        return "deescalated: late data, no longer critical"
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
        colour = "info" if alert.state in ("resolved", "deescalated") else "warning"
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
