"""The CRM adapters' pieces that need no broker: HubSpot's signature, maps that refuse, Salesforce shapes."""

import orjson

from salespulse.gateway.adapters import hubspot, pipedrive, salesforce
from salespulse.gateway.sources import Source

SECRET = "hubspot-client-secret-6f1e2d3c"
URL = "https://salespulse.example.com/v1/webhooks/hubspot/hubspot-main"
BODY = b'[{"eventId":1,"objectId":9001}]'
TIMESTAMP = "1772442000000"
# Computed with openssl, not with the code under test:
#   printf '%s' 'POST<URL><BODY><TIMESTAMP>' | openssl dgst -sha256 -hmac '<SECRET>' -binary | base64
VECTOR = "MFOZuTqrE75TYzVF/lyXqNHoZNXDXT1n+VQfOj1krEM="


def test_hubspot_v3_signature_matches_an_independent_vector() -> None:
    assert hubspot.signature_v3(SECRET, "POST", URL, BODY, TIMESTAMP) == VECTOR
    now = int(TIMESTAMP) + 60_000
    assert hubspot.verify(SECRET, "POST", URL, BODY, VECTOR, TIMESTAMP, now) is None
    # Percent-encoded characters in the URI are compared decoded, as HubSpot signs them.
    encoded = URL.replace("hubspot-main", "hubspot%2Dmain")
    assert hubspot.verify(SECRET, "POST", encoded, BODY, VECTOR, TIMESTAMP, now) is None


def test_hubspot_refuses_stale_wrong_or_missing_signatures() -> None:
    now = int(TIMESTAMP)
    stale = hubspot.verify(SECRET, "POST", URL, BODY, VECTOR, TIMESTAMP, now + 5 * 60_000 + 1)
    assert stale is not None and "5 minutes" in stale
    assert hubspot.verify(SECRET, "POST", URL, BODY + b" ", VECTOR, TIMESTAMP, now) is not None
    assert hubspot.verify("another-secret-000", "POST", URL, BODY, VECTOR, TIMESTAMP, now) is not None
    assert hubspot.verify(SECRET, "POST", URL, BODY, None, TIMESTAMP, now) is not None


def source(kind: str, **extra: object) -> Source:
    credentials = {"hubspot": {"client_secret": SECRET}}.get(kind, {"token": "t" * 20})
    return Source(
        name=f"{kind}-main",
        kind=kind,  # type: ignore[arg-type]
        stages={"appointmentscheduled": "prospecting", "Prospecting": "prospecting", "1": "prospecting"},
        owners={"61001": "rep-01", "005A": "rep-01", "13001": "rep-01"},
        **credentials,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_an_unmapped_stage_or_owner_is_rejected_with_its_reason_and_the_rest_goes_on() -> None:
    events = [
        {"eventId": 1, "subscriptionId": 2, "portalId": 3, "occurredAt": 1000, "objectId": 9,
         "subscriptionType": "deal.propertyChange", "propertyName": "dealstage", "propertyValue": "closedwon"},
        {"eventId": 2, "subscriptionId": 2, "portalId": 3, "occurredAt": 1000, "objectId": 9,
         "subscriptionType": "deal.propertyChange", "propertyName": "hubspot_owner_id", "propertyValue": "999"},
        {"eventId": 3, "subscriptionId": 2, "portalId": 3, "occurredAt": 1000, "objectId": 9,
         "subscriptionType": "deal.propertyChange", "propertyName": "amount", "propertyValue": "5"},
        {"eventId": 4, "subscriptionId": 2, "portalId": 3, "occurredAt": 1000, "objectId": 9,
         "subscriptionType": "deal.propertyChange", "propertyName": "dealname", "propertyValue": "x"},
    ]  # fmt: skip
    result = hubspot.translate(orjson.dumps(events), source("hubspot"), 100)
    assert [(r.index, r.reason) for r in result.rejected] == [(0, "unmapped_stage"), (1, "unmapped_owner")]
    assert (
        "closedwon" in result.rejected[0].message
        and "[sources.hubspot-main.stages]" in result.rejected[0].message
    )
    assert [c.fields for c in result.changes] == [{"amount": "5"}]
    assert result.changes[0].change_id == "hubspot:3:2:3:9:amount:1000"
    assert [i.index for i in result.ignored] == [3]


def test_salesforce_update_carries_only_changed_fields_and_gap_events_are_rejected() -> None:
    update = {
        "data": {
            "payload": {
                "ChangeEventHeader": {
                    "entityName": "Opportunity", "recordIds": ["006A", "006B"], "changeType": "UPDATE",
                    "transactionKey": "tk-1", "sequenceNumber": 2, "commitTimestamp": 1772442000000,
                    "changedFields": ["StageName", "LastModifiedDate"], "nulledFields": ["CloseDate"],
                },
                "StageName": "Prospecting", "Amount": None, "LastModifiedDate": "2026-03-02T09:00:00Z",
            }
        }
    }  # fmt: skip
    gap = {
        "ChangeEventHeader": {"entityName": "Opportunity", "recordIds": ["006C"], "changeType": "GAP_UPDATE"}
    }
    result = salesforce.translate(orjson.dumps([update, gap]), source("salesforce"), 100)
    assert [(c.object_id, c.change_id, c.fields) for c in result.changes] == [
        ("006A", "salesforce:006A:tk-1:2", {"stage": "prospecting", "expected_close_date": None}),
        ("006B", "salesforce:006B:tk-1:2", {"stage": "prospecting", "expected_close_date": None}),
    ]
    assert [(r.index, r.reason) for r in result.rejected] == [(1, "gap_event")]


def test_pipedrive_deal_status_wins_over_the_stage_and_an_undone_activity_has_no_outcome() -> None:
    meta = {"action": "change", "entity": "deal", "entity_id": 5, "id": "n-1", "timestamp": 1772442000}
    data = {
        "status": "won",
        "stage_id": 1,
        "value": 7,
        "owner_id": 13001,
        "org_id": 4,
        "update_time": "2026-03-02T09:00:00Z",
    }
    result = pipedrive.translate(
        orjson.dumps({"meta": meta, "data": data, "previous": {"status": "open"}}), source("pipedrive"), 1
    )
    (change,) = result.changes
    assert change.fields["stage"] == "won" and change.occurred_at_ms == 1772442000000
    assert change.change_id == "pipedrive:n-1" and change.fields["customer_id"] == "4"
    activity = {
        "type": "meeting",
        "owner_id": 13001,
        "org_id": 4,
        "due_date": "2026-03-05",
        "due_time": "10:00",
        "duration": "00:45",
        "done": False,
    }
    meta = {**meta, "entity": "activity", "id": "n-2"}
    (meeting,) = pipedrive.translate(
        orjson.dumps({"meta": meta, "data": activity}), source("pipedrive"), 1
    ).changes
    assert (
        meeting.kind == "visit"
        and meeting.fields["outcome"] is None
        and meeting.fields["duration_minutes"] == 45
    )
