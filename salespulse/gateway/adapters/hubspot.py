"""HubSpot webhooks v3 → changes (issue 14).

HubSpot POSTs a JSON array of events (up to 100), one property per event, in no guaranteed
order, with duplicates and retries: ``objectId``, ``propertyName``, ``propertyValue``,
``eventId``, ``subscriptionId``, ``portalId``, ``occurredAt`` (ms), ``subscriptionType``
(``deal.propertyChange``, ``deal.associationChange``, or ``object.propertyChange`` with an
``objectTypeId`` for calls ``0-48`` and meetings ``0-47`` in generic webhooks). Sources of
each fact: tests/fixtures/hubspot/README.md.

What becomes of what:
- deal properties ``dealstage`` (stages map), ``amount``, ``closedate``, ``hubspot_owner_id``
  (owners map), ``deal_currency_code``, ``closed_lost_reason``;
- call properties ``hs_timestamp``, ``hs_call_direction``, ``hs_call_duration`` (ms → s),
  ``hs_call_disposition`` (call_outcomes map), ``hubspot_owner_id``;
- meeting properties ``hs_timestamp``, ``hs_meeting_start_time``/``hs_meeting_end_time`` (the
  duration), ``hs_meeting_outcome`` (meeting_outcomes map), ``hubspot_owner_id``;
- association changes ``<X>_TO_COMPANY`` → customer_id, ``<X>_TO_DEAL`` → deal_id of a call
  or meeting (``associationRemoved`` clears it).
Creation events carry no properties (the properties follow as property changes) and are
ignored, like deletions and properties salespulse does not use.

The change id is (portalId, subscriptionId, eventId, objectId, propertyName, occurredAt), so a
redelivered event is the same change.
"""

import base64
import hashlib
import hmac
import urllib.parse
from typing import Any

import orjson

from salespulse.assembly.changes import Change
from salespulse.gateway.adapters.common import (
    Ignored,
    ItemRejected,
    Rejected,
    Translation,
    amount,
    calendar_date,
    epoch_ms,
    text_id,
    whole,
)
from salespulse.gateway.batches import BatchRefused, split_json_array
from salespulse.gateway.sources import Source, Unmapped

MAX_SIGNATURE_AGE_MS = 5 * 60 * 1000
OBJECT_TYPE_IDS = {"0-3": "deal", "0-48": "call", "0-47": "visit"}
ASSOCIATION_KINDS = {"DEAL": "deal", "CALL": "call", "MEETING": "visit", "MEETING_EVENT": "visit"}
DIRECTIONS = {"INBOUND": "inbound", "OUTBOUND": "outbound"}


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), HubSpot's v3 signature."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(
    secret: str, method: str, url: str, body: bytes, signature: str | None, timestamp: str | None, now_ms: int
) -> str | None:
    """None when the request is HubSpot's, else why not (stale, missing or wrong signature)."""
    if not signature or not timestamp:
        return "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp"
    if not timestamp.strip().isdigit():
        return "X-HubSpot-Request-Timestamp is not epoch milliseconds"
    age = now_ms - int(timestamp)
    if abs(age) > MAX_SIGNATURE_AGE_MS:
        return f"the request timestamp is {age / 1000:.0f}s away from now (more than 5 minutes): refused as a replay"
    # HubSpot signs the URI with some characters decoded (its docs list them); decoding all is a
    # superset that leaves an undecoded URI equal.
    expected = signature_v3(secret, method, urllib.parse.unquote(url), body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "the X-HubSpot-Signature-v3 signature does not match (check the source's client_secret)"
    return None


def translate(body: bytes, source: Source, max_items: int) -> Translation:
    """Every event of the array → a change, a rejection or an ignored item."""
    items = split_json_array(body)
    if len(items) > max_items:
        raise BatchRefused(413, "too_many_events", f"{len(items)} events, above the limit of {max_items}")
    result = Translation()
    for index, raw in enumerate(items):
        try:
            event = orjson.loads(raw)
            if not isinstance(event, dict):
                raise ItemRejected("invalid_json", "each item of a HubSpot webhook body is a JSON object")
            change = _change(event, source)
        except (ItemRejected, Unmapped) as problem:
            result.rejected.append(Rejected(index, raw, problem.reason, problem.message))
            continue
        if isinstance(change, str):
            result.ignored.append(Ignored(index, change))
        else:
            result.changes.append(change)
    result.changes = coalesce(result.changes)
    return result


def coalesce(changes: list[Change]) -> list[Change]:
    """One change per object and instant of a request: HubSpot sends a creation as one event per
    property, usually in one request; merged, the object's state at that instant is whole at once
    (an activity is emitted with all of it, a deal state is not emitted half-made first). The id of
    a merged change is a digest of its events' ids, so a retried request is still recognised."""
    groups: dict[tuple[str, str, int], list[Change]] = {}
    for change in changes:
        groups.setdefault((change.kind, change.object_id, change.occurred_at_ms), []).append(change)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        fields: dict[str, Any] = {}
        for member in sorted(members, key=lambda m: m.change_id):
            fields.update(member.fields)
        ids = "|".join(sorted(member.change_id for member in members))
        change_id = "hubspot:" + hashlib.sha256(ids.encode()).hexdigest()[:32]
        first = members[0]
        merged.append(
            Change(first.source, first.kind, first.object_id, change_id, first.occurred_at_ms, fields)
        )
    return merged


def _kind(event: dict[str, Any]) -> str | None:
    subscription = str(event.get("subscriptionType", ""))
    prefix = subscription.split(".", 1)[0]
    if prefix == "object":
        return OBJECT_TYPE_IDS.get(str(event.get("objectTypeId", "")))
    return {"deal": "deal", "call": "call", "meeting": "visit"}.get(prefix)


def _change(event: dict[str, Any], source: Source) -> Change | str:
    subscription = str(event.get("subscriptionType", ""))
    action = subscription.split(".", 1)[-1]
    occurred = epoch_ms(event.get("occurredAt"), "occurredAt")
    if action == "associationChange" or "associationType" in event:
        return _association(event, source, occurred)
    kind = _kind(event)
    if kind is None:
        return f"not a deal, call or meeting event ({subscription or 'no subscriptionType'})"
    if action != "propertyChange":
        return f"{subscription}: only property and association changes carry deal data"
    object_id = source.ids(text_id(event.get("objectId"), "objectId"))
    name = str(event.get("propertyName", ""))
    fields = _fields(kind, name, event.get("propertyValue"), source)
    if fields is None:
        return f"property '{name}' of a {kind} is not used by salespulse"
    return Change(source.name, kind, object_id, _change_id(event, name), occurred, fields)  # type: ignore[arg-type]


def _change_id(event: dict[str, Any], name: str) -> str:
    parts = (event.get("portalId"), event.get("subscriptionId"), event.get("eventId"), event.get("objectId"))
    return ":".join(["hubspot", *(str(part) for part in parts), name, str(event.get("occurredAt"))])


def _owner(value: Any, source: Source) -> str | None:
    return None if value in (None, "") else source.rep(str(value))


def _fields(kind: str, name: str, value: Any, source: Source) -> dict[str, Any] | None:
    empty = value is None or value == ""
    if name == "hubspot_owner_id":
        return {"rep_id": _owner(value, source)}
    if kind == "deal":
        if name == "dealstage":
            return {"stage": None if empty else source.stage(str(value))}
        if name == "amount":
            return {"amount": amount(value, "amount")}
        if name == "closedate":
            return {"expected_close_date": calendar_date(value, "closedate")}
        if name == "deal_currency_code":
            return {"currency": None if empty else str(value).upper()}
        if name == "closed_lost_reason":
            return {"lost_reason": None if empty else str(value)[:200]}
        return None
    if name == "hs_timestamp":
        return {"occurred_at_ms": None if empty else epoch_ms(value, "hs_timestamp")}
    if kind == "call":
        if name == "hs_call_direction":
            if empty:
                return {"direction": None}
            if str(value).upper() not in DIRECTIONS:
                raise Unmapped(
                    "unmapped_direction",
                    f"source '{source.name}': call direction '{value}' is neither INBOUND nor OUTBOUND",
                )
            return {"direction": DIRECTIONS[str(value).upper()]}
        if name == "hs_call_duration":
            return {"duration_seconds": None if empty else whole(value, "hs_call_duration") // 1000}
        if name == "hs_call_disposition":
            return {"outcome": None if empty else source.outcome("call", str(value))}
        return None
    if name == "hs_meeting_start_time":
        return {"started_at_ms": None if empty else epoch_ms(value, name)}
    if name == "hs_meeting_end_time":
        return {"ended_at_ms": None if empty else epoch_ms(value, name)}
    if name == "hs_meeting_outcome":
        return {"outcome": None if empty else source.outcome("visit", str(value))}
    return None


def _association(event: dict[str, Any], source: Source, occurred: int) -> Change | str:
    association = str(event.get("associationType", ""))
    from_type, _, to_type = association.partition("_TO_")
    kind = ASSOCIATION_KINDS.get(from_type)
    if kind is None or to_type not in ("COMPANY", "DEAL") or (kind == "deal" and to_type == "DEAL"):
        return f"association {association or '(none)'} is not used by salespulse"
    removed = bool(event.get("associationRemoved"))
    target = source.ids(text_id(event.get("toObjectId"), "toObjectId"))
    field = "customer_id" if to_type == "COMPANY" else "deal_id"
    object_id = source.ids(text_id(event.get("fromObjectId"), "fromObjectId"))
    change_id = _change_id({**event, "objectId": event.get("fromObjectId")}, f"{association}:{target}")
    return Change(source.name, kind, object_id, change_id, occurred, {field: None if removed else target})  # type: ignore[arg-type]
