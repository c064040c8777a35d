"""Salesforce Change Data Capture (JSON, as CometD or an event relay delivers it) → changes (issue 14).

A body is one change event message or a JSON array of them; each message is the payload itself
(``{"ChangeEventHeader": {...}, "StageName": ...}``) or wrapped as CometD delivers it
(``{"data": {"payload": {...}, "event": {...}}}``, or ``{"payload": {...}}``). The header has
``entityName``, ``recordIds``, ``changeType``, ``commitTimestamp`` (ms), ``transactionKey``,
``sequenceNumber`` and, for an UPDATE, ``changedFields`` (only those fields are in the payload;
``nulledFields`` were cleared). Sources: tests/fixtures/salesforce/README.md.

- Opportunity: ``StageName`` (stages map; the closed stages carry won and lost, which is what
  ``IsWon``/``IsClosed`` say too), ``Amount``, ``CloseDate``, ``OwnerId`` (owners map),
  ``AccountId``, ``CurrencyIsoCode``.
- Task (a call): ``CallType`` (Inbound/Outbound), ``CallDurationInSeconds``, ``CallDisposition``
  (call_outcomes map), ``OwnerId``, ``AccountId``, ``WhatId`` (an Opportunity, ``006`` prefix:
  the deal); the call happened when the Task was created (the CREATE's commitTimestamp).
- Event (a meeting): ``ActivityDateTime``, ``DurationInMinutes``, ``OwnerId``, ``AccountId``,
  ``WhatId``, and the outcome from the field the source names (``meeting_outcome_field``).
DELETE and UNDELETE have no contract form and are ignored; GAP_* events say Salesforce could not
send the fields, so they are rejected (the record must be read from the API and resent).
The change id is (recordId, transactionKey, sequenceNumber).
"""

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

OPPORTUNITY_PREFIX = "006"  # Salesforce's key prefix of Opportunity ids
DIRECTIONS = {"Inbound": "inbound", "Outbound": "outbound"}


def translate(body: bytes, source: Source, max_items: int) -> Translation:
    stripped = body.lstrip()
    items = split_json_array(body) if stripped.startswith(b"[") else [body.strip()]
    if len(items) > max_items:
        raise BatchRefused(413, "too_many_events", f"{len(items)} messages, above the limit of {max_items}")
    result = Translation()
    for index, raw in enumerate(items):
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            if len(items) == 1:
                raise BatchRefused(
                    400, "invalid_json", f"the body is not valid JSON ({error}); nothing was published"
                ) from None
            result.rejected.append(Rejected(index, raw, "invalid_json", str(error)))
            continue
        try:
            changes = _changes(_payload(message), source)
        except (ItemRejected, Unmapped) as problem:
            result.rejected.append(Rejected(index, raw, problem.reason, problem.message))
            continue
        if isinstance(changes, str):
            result.ignored.append(Ignored(index, changes))
        else:
            result.changes.extend(changes)
    return result


def _payload(message: Any) -> dict[str, Any]:
    if isinstance(message, dict) and "ChangeEventHeader" not in message:
        inner = message.get("data", message)
        message = inner.get("payload", inner) if isinstance(inner, dict) else inner
    if not isinstance(message, dict) or not isinstance(message.get("ChangeEventHeader"), dict):
        raise ItemRejected("missing_field", "a change event message needs a ChangeEventHeader object")
    return message


def _changes(payload: dict[str, Any], source: Source) -> list[Change] | str:
    header = payload["ChangeEventHeader"]
    entity = str(header.get("entityName", ""))
    change_type = str(header.get("changeType", ""))
    record_ids = header.get("recordIds")
    if change_type.startswith("GAP_"):
        raise ItemRejected(
            "gap_event",
            f"Salesforce sent {change_type} for {entity} {record_ids}: the change's fields were not "
            "delivered; read the records from the Salesforce API and resend them as CREATE messages",
        )
    if change_type in ("DELETE", "UNDELETE"):
        return f"{change_type} of {entity}: deletions have no contract form"
    if change_type not in ("CREATE", "UPDATE"):
        raise ItemRejected("invalid_value", f"changeType '{change_type}' is not a Change Data Capture type")
    kind = {"Opportunity": "deal", "Task": "call", "Event": "visit"}.get(entity)
    if kind is None:
        return f"{entity} changes are not used by salespulse"
    if not isinstance(record_ids, list) or not record_ids:
        raise ItemRejected("missing_field", "ChangeEventHeader.recordIds is missing or empty")
    occurred = epoch_ms(header.get("commitTimestamp"), "commitTimestamp")
    if change_type == "UPDATE":
        named = [str(name) for name in header.get("changedFields") or []]
        values = {name: payload.get(name) for name in named if "." not in name}
        values.update({str(name): None for name in header.get("nulledFields") or []})
    else:
        values = {
            name: value
            for name, value in payload.items()
            if name != "ChangeEventHeader" and value is not None
        }
    fields = _fields(kind, values, source, change_type, occurred)
    transaction = str(header.get("transactionKey", ""))
    sequence = str(header.get("sequenceNumber", ""))
    return [
        Change(
            source.name,
            kind,  # type: ignore[arg-type]
            source.ids(text_id(record_id, "recordIds[]")),
            f"salesforce:{record_id}:{transaction}:{sequence}",
            occurred,
            fields,
        )
        for record_id in record_ids
    ]


def _fields(
    kind: str, values: dict[str, Any], source: Source, change_type: str, occurred: int
) -> dict[str, Any]:
    fields: dict[str, Any] = {}

    def have(name: str) -> bool:
        return name in values

    def empty(name: str) -> bool:
        return values.get(name) in (None, "")

    if have("OwnerId"):
        fields["rep_id"] = None if empty("OwnerId") else source.rep(str(values["OwnerId"]))
    if have("AccountId"):
        fields["customer_id"] = None if empty("AccountId") else source.ids(values["AccountId"])
    if kind == "deal":
        if have("StageName"):
            fields["stage"] = None if empty("StageName") else source.stage(str(values["StageName"]))
        if have("Amount"):
            fields["amount"] = amount(values["Amount"], "Amount")
        if have("CloseDate"):
            fields["expected_close_date"] = calendar_date(values["CloseDate"], "CloseDate")
        if have("CurrencyIsoCode"):
            fields["currency"] = None if empty("CurrencyIsoCode") else str(values["CurrencyIsoCode"])
        return fields
    if have("WhatId"):
        what = "" if empty("WhatId") else str(values["WhatId"])
        fields["deal_id"] = source.ids(what) if what.startswith(OPPORTUNITY_PREFIX) else None
    if kind == "call":
        if change_type == "CREATE":
            fields["occurred_at_ms"] = occurred
        if have("CallType") and not empty("CallType"):
            direction = DIRECTIONS.get(str(values["CallType"]))
            if direction is None:
                raise Unmapped(
                    "unmapped_direction",
                    f"source '{source.name}': CallType '{values['CallType']}' is neither Inbound nor Outbound",
                )
            fields["direction"] = direction
        if have("CallDurationInSeconds"):
            fields["duration_seconds"] = (
                None
                if empty("CallDurationInSeconds")
                else whole(values["CallDurationInSeconds"], "CallDurationInSeconds")
            )
        if have("CallDisposition"):
            fields["outcome"] = (
                None if empty("CallDisposition") else source.outcome("call", str(values["CallDisposition"]))
            )
        return fields
    if have("ActivityDateTime"):
        fields["occurred_at_ms"] = (
            None if empty("ActivityDateTime") else epoch_ms(values["ActivityDateTime"], "ActivityDateTime")
        )
    if have("DurationInMinutes"):
        fields["duration_minutes"] = (
            None if empty("DurationInMinutes") else whole(values["DurationInMinutes"], "DurationInMinutes")
        )
    outcome_field = source.meeting_outcome_field
    if outcome_field is None and change_type == "CREATE":
        raise Unmapped(
            "unmapped_outcome",
            f"source '{source.name}': Salesforce Events have no standard outcome; set meeting_outcome_field "
            f"under [sources.{source.name}] to the field that holds it",
        )
    if outcome_field is not None and have(outcome_field):
        value = values[outcome_field]
        fields["outcome"] = None if value in (None, "") else source.outcome("visit", str(value))
    return fields
