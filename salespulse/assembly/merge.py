"""Merging an object's partial changes and the full contract events that follow (issue 14, SPEC §3-§4).

Each CRM object (a deal, a call, a meeting) has one record: every change seen for it, by
change_id. A change already in the record is a redelivery and changes nothing.

**Deals.** A contract deal event is the deal's full state as of its occurred_at, so the record
can say what the deal looked like at any instant ``t``: for each field, the value of the latest
change at or before ``t`` (ties between changes at the same instant: the larger change_id, so
the result never depends on arrival order). At every instant a change happened, the state there
is emitted as a deal event once it is complete (stage, rep_id and customer_id known; a missing
amount is 0). A change arriving late (an older change after newer ones) corrects the states at
and after its instant: each state whose content changed is emitted again, at the same
occurred_at. The contract resolves a tie by the later-delivered event, so the corrected state
wins; the superseded event stays on the topic (a Kafka topic is append-only) and is harmless.
Event ids are derived from (deal, occurred_at, digest of the state): an unchanged state is never
emitted twice, and a redelivered webhook emits nothing.

**Held changes.** A change of a deal whose state at that instant is not complete yet (an update
delivered before the deal's creation, or HubSpot's one-property-per-event creation half
arrived) is *held*: it stays in the record, nothing is emitted, and it is counted. It is
released — its state emitted — as soon as the missing fields arrive with an earlier or equal
instant. A change that stays incomplete (the CRM never sends the owner, say) stays held; the
worker's ``salespulse_crm_changes_held_total`` counter shows them.

**Activities** (calls, visits) are immutable in the contract: the first complete state (every
required field known) is emitted once, with an event id derived from (source, kind, object); a
later edit of the call in the CRM is not followed (it would be a redelivery of the same id).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from salespulse.assembly.changes import Change

DEAL_REQUIRED = ("stage", "rep_id", "customer_id")
ACTIVITY_REQUIRED = {
    "call": ("occurred_at_ms", "rep_id", "customer_id", "direction", "duration_seconds", "outcome"),
    "visit": ("occurred_at_ms", "rep_id", "customer_id", "duration_minutes", "outcome"),
}
DEAL_FIELDS = ("rep_id", "customer_id", "stage", "amount", "currency", "expected_close_date", "lost_reason")
ACTIVITY_FIELDS = {
    "call": ("rep_id", "customer_id", "deal_id", "direction", "duration_seconds", "outcome"),
    "visit": ("rep_id", "customer_id", "deal_id", "duration_minutes", "outcome"),
}
EVENT_TYPES = {"deal": "deal", "call": "call", "visit": "visit"}
MAX_EVENT_ID = 128


@dataclass
class Merged:
    """What merging one change gave: the record to store and the contract events to publish."""

    record: bytes
    events: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False
    held: bool = False


def iso_ms(epoch_ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, the way salespulse writes CRM instants."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def bounded_id(text: str) -> str:
    """``text`` as an event_id, or a digest of it when it is longer than the contract allows."""
    if len(text) <= MAX_EVENT_ID:
        return text
    return "crm-" + hashlib.sha256(text.encode()).hexdigest()


def _digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _changes(record: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(instant, change_id, fields) in merge order."""
    return sorted((entry[0], change_id, entry[1]) for change_id, entry in record["changes"].items())


def _fields_as_of(record: dict[str, Any], instant: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for at, _, fields in _changes(record):
        if instant is not None and at > instant:
            break
        values.update(fields)
    return {name: value for name, value in values.items() if value is not None}


def deal_state(record: dict[str, Any], instant: int) -> dict[str, Any] | None:
    """The deal's full contract state at ``instant`` (no event_id), or None while incomplete."""
    values = _fields_as_of(record, instant)
    if any(name not in values for name in DEAL_REQUIRED):
        return None
    state = {name: values[name] for name in DEAL_FIELDS if name in values}
    state.setdefault("amount", "0")
    if "currency" not in state and "default_currency" in values:
        state["currency"] = values["default_currency"]  # the source's currency (sources file)
    return {
        "event_type": "deal",
        "occurred_at": iso_ms(instant),
        "deal_id": record["object_id"],
        **state,
        "source": record["source"],
    }


def activity_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """The activity's contract event once every required field is known, else None."""
    kind = record["kind"]
    values = _fields_as_of(record, None)
    if (
        kind == "visit"
        and "duration_minutes" not in values
        and {"started_at_ms", "ended_at_ms"} <= set(values)
    ):
        values["duration_minutes"] = max(0, (values["ended_at_ms"] - values["started_at_ms"]) // 60_000)
    if kind == "visit" and "occurred_at_ms" not in values and "started_at_ms" in values:
        values["occurred_at_ms"] = values["started_at_ms"]
    if any(name not in values for name in ACTIVITY_REQUIRED[kind]):
        return None
    return {
        "event_id": bounded_id(f"{record['source']}:{kind}:{record['object_id']}"),
        "event_type": EVENT_TYPES[kind],
        "occurred_at": iso_ms(values["occurred_at_ms"]),
        **{name: values[name] for name in ACTIVITY_FIELDS[kind] if name in values},
        "source": record["source"],
    }


def _current_events(record: dict[str, Any], change: Change) -> list[dict[str, Any]]:
    """The events already emitted for ``change`` (its instant and after), as they stand now."""
    if change.kind != "deal":
        event = activity_event(record) if record["emitted"] else None
        return [] if event is None else [event]
    events = []
    for instant in sorted({entry[0] for entry in record["changes"].values()}):
        state = deal_state(record, instant) if instant >= change.occurred_at_ms else None
        if state is not None:
            event_id = bounded_id(f"{change.source}:deal:{change.object_id}:{instant}:{_digest(state)}")
            events.append({"event_id": event_id, **state})
    return events


def merge(stored: bytes | None, change: Change) -> Merged:
    """Merge ``change`` into the object's stored record (None: first change of the object)."""
    record: dict[str, Any] = (
        orjson.loads(stored)
        if stored
        else {
            "source": change.source,
            "kind": change.kind,
            "object_id": change.object_id,
            "changes": {},
            "emitted": {},
        }
    )
    if change.change_id in record["changes"]:
        # Sent again, not skipped: the record may have been saved (changelogged) while the events
        # of this change were lost in a crash before the broker acknowledged them. Same event_ids,
        # so downstream they are duplicates that change nothing.
        return Merged(stored or orjson.dumps(record), _current_events(record, change), duplicate=True)
    record["changes"][change.change_id] = [change.occurred_at_ms, change.fields]
    events: list[dict[str, Any]] = []
    held = False
    if change.kind == "deal":
        instants = sorted({entry[0] for entry in record["changes"].values()})
        for instant in instants:
            if instant < change.occurred_at_ms:
                continue  # a change never alters the states before it
            state = deal_state(record, instant)
            if state is None:
                held = held or instant == change.occurred_at_ms
                continue
            digest = _digest(state)
            if record["emitted"].get(str(instant)) == digest:
                continue
            record["emitted"][str(instant)] = digest
            event_id = bounded_id(f"{change.source}:deal:{change.object_id}:{instant}:{digest}")
            events.append({"event_id": event_id, **state})
    elif not record["emitted"]:
        event = activity_event(record)
        if event is None:
            held = True
        else:
            record["emitted"]["once"] = event["event_id"]
            events.append(event)
    return Merged(orjson.dumps(record), events, held=held)
