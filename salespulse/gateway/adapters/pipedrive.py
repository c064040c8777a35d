"""Pipedrive webhooks v2 → changes (issue 14).

A notification is one JSON object: ``meta`` (``action`` create/change/delete, ``entity``,
``entity_id``, ``id``, ``timestamp``, ``attempt``, ...), ``data`` (the object's current state, its
important fields) and ``previous`` (the old values of what changed). Because ``data`` is the
whole state, every deal notification is a complete change by itself. Sources:
tests/fixtures/pipedrive/README.md.

- deal: ``stage_id`` (stages map, keys are the stage ids as text), ``status`` (``won`` and
  ``lost`` are Pipedrive's closed states and win over the stage), ``value``, ``currency``,
  ``owner_id`` (owners map), ``org_id`` (customer), ``expected_close_date``, ``lost_reason``;
  the instant is ``data.update_time`` (else ``meta.timestamp``).
- activity: ``type`` (activity_types map: which types are calls and visits; others are
  ignored), ``owner_id``, ``org_id``, ``deal_id``, ``due_date`` + ``due_time`` (UTC, when it
  happens), ``duration`` (HH:MM), ``done``: an activity not done has not happened and waits;
  once done, ``done`` is looked up in call_outcomes or meeting_outcomes. Calls take the
  source's ``call_direction`` (Pipedrive has none).
- delete: no contract form, ignored.
The change id is ``meta.id``.
"""

import re
from typing import Any

from salespulse.assembly.changes import Change
from salespulse.gateway.adapters.common import (
    Ignored,
    ItemRejected,
    Rejected,
    Translation,
    amount,
    calendar_date,
    epoch_ms,
    parse_object,
    text_id,
)
from salespulse.gateway.sources import Source, Unmapped


def translate(body: bytes, source: Source, max_items: int) -> Translation:
    notification = parse_object(body)
    result = Translation()
    try:
        change = _change(notification, source)
    except (ItemRejected, Unmapped) as problem:
        result.rejected.append(Rejected(0, body, problem.reason, problem.message))
        return result
    if isinstance(change, str):
        result.ignored.append(Ignored(0, change))
    else:
        result.changes.append(change)
    return result


def _change(notification: dict[str, Any], source: Source) -> Change | str:
    meta = notification.get("meta")
    data = notification.get("data")
    if not isinstance(meta, dict):
        raise ItemRejected("missing_field", "a Pipedrive webhook v2 notification needs a meta object")
    action, entity = str(meta.get("action", "")), str(meta.get("entity", ""))
    if action == "delete":
        return f"delete of {entity}: deletions have no contract form"
    if entity not in ("deal", "activity"):
        return f"{entity} notifications are not used by salespulse"
    if action not in ("create", "change"):
        raise ItemRejected("invalid_value", f"meta.action '{action}' is not create, change or delete")
    if not isinstance(data, dict):
        raise ItemRejected("missing_field", "a create or change notification needs a data object")
    change_id = "pipedrive:" + text_id(meta.get("id"), "meta.id")
    object_id = source.ids(text_id(meta.get("entity_id", data.get("id")), "meta.entity_id"))
    when = data.get("update_time") or meta.get("timestamp")
    instant = _seconds_or_ms(epoch_ms(when, "data.update_time"))
    owner = data.get("owner_id", data.get("user_id"))
    common: dict[str, Any] = {
        "rep_id": None if owner in (None, "") else source.rep(str(owner)),
        "customer_id": None if data.get("org_id") in (None, "") else source.ids(data["org_id"]),
    }
    if entity == "deal":
        return Change(source.name, "deal", object_id, change_id, instant, {**common, **_deal(data, source)})
    kind = source.activity_types.get(str(data.get("type", "")))
    if kind is None:
        return f"activity type '{data.get('type')}' is not in activity_types"
    return Change(
        source.name, kind, object_id, change_id, instant, {**common, **_activity(kind, data, source)}
    )


def _seconds_or_ms(value: int) -> int:
    # meta.timestamp may be epoch seconds; an instant before 2001 in ms is certainly seconds.
    return value * 1000 if value < 10**12 else value


def _deal(data: dict[str, Any], source: Source) -> dict[str, Any]:
    status = str(data.get("status", "open"))
    if status in ("won", "lost"):
        stage = status
    elif data.get("stage_id") in (None, ""):
        stage = None
    else:
        stage = source.stage(str(data["stage_id"]))
    return {
        "stage": stage,
        "amount": amount(data.get("value"), "value"),
        "currency": data.get("currency") or source.currency,
        "expected_close_date": calendar_date(data.get("expected_close_date"), "expected_close_date"),
        "lost_reason": (
            str(data["lost_reason"])[:200] if data.get("lost_reason") and stage == "lost" else None
        ),
    }


def _duration_seconds(value: Any) -> int | None:
    if value in (None, ""):
        return None
    match = re.fullmatch(r"(\d+):(\d{2})(?::(\d{2}))?", str(value).strip())
    if match is None:
        raise ItemRejected("invalid_value", f"duration must be HH:MM, not {value!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)


def _activity(kind: str, data: dict[str, Any], source: Source) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "deal_id": None if data.get("deal_id") in (None, "") else source.ids(data["deal_id"]),
    }
    due_date, due_time = data.get("due_date"), data.get("due_time")
    if due_date:
        fields["occurred_at_ms"] = epoch_ms(f"{due_date}T{due_time or '00:00'}:00+00:00", "due_date/due_time")
    seconds = _duration_seconds(data.get("duration"))
    done = bool(data.get("done"))
    outcome = source.outcome("call" if kind == "call" else "visit", "done") if done else None
    fields["outcome"] = outcome
    if kind == "call":
        if source.call_direction is None:
            raise Unmapped(
                "unmapped_direction",
                f"source '{source.name}': Pipedrive calls have no direction; set call_direction "
                f"(outbound or inbound) under [sources.{source.name}]",
            )
        fields["direction"] = source.call_direction
        fields["duration_seconds"] = seconds
    else:
        fields["duration_minutes"] = None if seconds is None else seconds // 60
    return fields
