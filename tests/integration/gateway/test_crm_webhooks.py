"""CRM webhooks end to end (issue 14): HubSpot, Salesforce and Pipedrive payloads → contract events → views.

One gateway and one worker serve nine sources: each CRM's recorded life is posted through three
sources, delivered in order, shuffled, and twice (in order, then again shuffled). Each source
has its own id_prefix, so the three deliveries make disjoint deals in one run. What reached the
topics is read back and compared with an expectation written out by hand below; the views are
compared with the reference model (tests/oracle) computed from that expectation.
"""

import asyncio
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from salespulse.kafka.consumers import read_topics
from salespulse.runtime.gateway_process import GatewayProcess
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.fixtures.hubspot import payloads as hubspot
from tests.fixtures.pipedrive import payloads as pipedrive
from tests.fixtures.salesforce import payloads as salesforce
from tests.oracle.reference_model import expected_views
from tests.support.gateway import Answer
from tests.support.pipeline import actual_views, assert_views_equal, sorted_views
from tests.support.webhooks import hubspot_headers, post_webhook

HUBSPOT_SECRET = "hubspot-client-secret-6f1e2d3c"
TOKEN = "salesforce-relay-token-0123456789"
BASIC = ("pipedrive", "pipedrive-hook-password")
DELIVERIES = ("o", "s", "t")  # in order, shuffled, twice


def deal(
    at: str, deal_id: str, rep: str, customer: str, stage: str, amount: str, **extra: Any
) -> dict[str, Any]:
    return {
        "event_type": "deal",
        "occurred_at": at,
        "deal_id": deal_id,
        "rep_id": rep,
        "customer_id": customer,
        "stage": stage,
        "amount": amount,
        "currency": "USD",
        **extra,
    }


def expected_events(crm: str, prefix: str) -> list[dict[str, Any]]:
    """The contract events a CRM's life must give, written out from the story (not from the code)."""
    ids = {
        "hubspot": ("9001", "9002", "5101", "5102", "7301", "7302", "7401"),
        "salesforce": (
            salesforce.DEAL_WON,
            salesforce.DEAL_LOST,
            salesforce.ACCOUNT_1,
            salesforce.ACCOUNT_2,
            salesforce.CALL_1,
            salesforce.CALL_2,
            salesforce.MEETING_1,
        ),
        "pipedrive": ("311", "312", "41", "42", "801", "802", "803"),
    }[crm]
    won, lost, c1, c2 = (prefix + part for part in ids[:4])
    close = {"expected_close_date": "2026-03-31"}
    reason = {} if crm == "salesforce" else {"lost_reason": "Went with a competitor"}
    events = [
        deal("2026-03-02T09:00:00.000Z", won, "rep-01", c1, "prospecting", "10000", **close),
        deal("2026-03-03T10:00:00.000Z", won, "rep-01", c1, "qualified", "10000", **close),
        deal("2026-03-04T11:00:00.000Z", won, "rep-01", c1, "qualified", "12500.5", **close),
        deal("2026-03-05T12:00:00.000Z", won, "rep-01", c1, "proposal", "12500.5", **close),
        deal("2026-03-09T15:00:00.000Z", won, "rep-01", c1, "won", "12500.5", **close),
        deal("2026-03-02T13:00:00.000Z", lost, "rep-02", c2, "negotiation", "3000"),
        deal("2026-03-06T09:00:00.000Z", lost, "rep-02", c2, "lost", "3000", **reason),
    ]
    pipedrive_call = crm == "pipedrive"
    events += [
        {
            "event_type": "call",
            "occurred_at": "2026-03-03T09:30:00.000Z",
            "rep_id": "rep-01",
            "customer_id": c1,
            "deal_id": won,
            "direction": "outbound",
            "duration_seconds": 300,
            "outcome": "connected",
        },
        {
            "event_type": "call",
            "occurred_at": "2026-03-04T14:00:00.000Z",
            "rep_id": "rep-02",
            "customer_id": c2,
            # Pipedrive has no call direction (the source's call_direction) and a done/not-done state only.
            "direction": "outbound" if pipedrive_call else "inbound",
            "duration_seconds": 60 if pipedrive_call else 45,
            "outcome": "connected" if pipedrive_call else "no_answer",
        },
        {
            "event_type": "visit",
            "occurred_at": "2026-03-05T10:00:00.000Z",
            "rep_id": "rep-01",
            "customer_id": c1,
            "deal_id": won,
            "duration_minutes": 45,
            "outcome": "completed",
        },
    ]
    for event in events:
        event["source"] = f"{crm}-{prefix[-2]}"
    return events


def comparable(event: dict[str, Any]) -> tuple[Any, ...]:
    """An event without its event_id, amounts as numbers (10000 and 10000.0 are one amount)."""
    body = {key: value for key, value in event.items() if key != "event_id" and value is not None}
    if "amount" in body:
        body["amount"] = Decimal(body["amount"]).normalize()
    return tuple(sorted(body.items(), key=lambda item: item[0]))


def sources_file(path: Path) -> Path:
    lines = []
    for crm, module in (("hubspot", hubspot), ("salesforce", salesforce), ("pipedrive", pipedrive)):
        for delivery in DELIVERIES:
            name = f"{crm}-{delivery}"
            lines.append(
                f'[sources.{name}]\nkind = "{crm}"\nid_prefix = "{crm[:2]}-{delivery}-"\ncurrency = "USD"'
            )
            if crm == "hubspot":
                lines.append(f'client_secret = "{HUBSPOT_SECRET}"')
            elif crm == "salesforce":
                lines.append(f'token = "{TOKEN}"\nmeeting_outcome_field = "Outcome__c"')
            else:
                lines.append(f'basic_auth = "{BASIC[0]}:{BASIC[1]}"\ncall_direction = "outbound"')
            for table, mapping in module.SOURCE_MAPS.items():
                lines.append(f"[sources.{name}.{table}]")
                lines.extend(
                    f"{orjson.dumps(key).decode()} = {orjson.dumps(value).decode()}"
                    for key, value in mapping.items()
                )
    path.write_text("\n".join(lines) + "\n")
    return path


def bodies(crm: str, rng: random.Random, shuffled: bool) -> list[bytes]:
    """The CRM's requests as bodies; shuffled: events re-ordered across requests too."""
    if crm == "pipedrive":
        items: list[Any] = pipedrive.requests()
        if shuffled:
            rng.shuffle(items)
        return [orjson.dumps(item) for item in items]
    requests = (hubspot if crm == "hubspot" else salesforce).requests()
    if not shuffled:
        return [orjson.dumps(request) for request in requests]
    events = [event for request in requests for event in request]
    rng.shuffle(events)
    cuts = sorted(rng.sample(range(1, len(events)), min(5, len(events) - 1)))
    return [orjson.dumps(events[a:b]) for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]


def post(gateway: GatewayProcess, crm: str, source: str, body: bytes) -> Answer:
    url = f"{gateway.url}/v1/webhooks/{crm}/{source}"
    if crm == "hubspot":
        return post_webhook(url, body, hubspot_headers(HUBSPOT_SECRET, url, body, int(time.time() * 1000)))
    if crm == "salesforce":
        return post_webhook(url, body, {"Authorization": f"Bearer {TOKEN}"})
    return post_webhook(url, body, basic=BASIC)


def test_three_crms_in_order_shuffled_and_twice_give_the_expected_events_and_views(
    make_worker: Callable[..., WorkerProcess], make_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    worker = make_worker("crm")
    worker.start()
    worker.wait_ready()
    gateway = make_gateway(
        worker.topic_prefix, SALESPULSE_INGEST_SOURCES_FILE=str(sources_file(tmp_path / "sources.toml"))
    )
    # Refused, and nothing published (the exact events below would show anything that was).
    body = bodies("hubspot", random.Random(1), shuffled=False)[0]
    url = f"{gateway.url}/v1/webhooks/hubspot/hubspot-o"
    now = int(time.time() * 1000)
    for headers in (
        hubspot_headers("not-the-client-secret", url, body, now),
        hubspot_headers(HUBSPOT_SECRET, url, body, now - 5 * 60 * 1000 - 1000),  # stale
        hubspot_headers(HUBSPOT_SECRET, url, body + b" ", now),  # another body
        {},
    ):
        refused = post_webhook(url, body, headers)
        assert refused.status == 401 and refused.body["error"] == "unauthorized", refused
    sf_body = bodies("salesforce", random.Random(1), shuffled=False)[0]
    sf_url = f"{gateway.url}/v1/webhooks/salesforce/salesforce-o"
    assert post_webhook(sf_url, sf_body, {"Authorization": "Bearer wrong-token-0123456789"}).status == 401
    pd_url = f"{gateway.url}/v1/webhooks/pipedrive/pipedrive-o"
    pd_body = bodies("pipedrive", random.Random(1), shuffled=False)[0]
    assert post_webhook(pd_url, pd_body, basic=(BASIC[0], "wrong-password")).status == 401
    assert post_webhook(pd_url, pd_body).status == 401
    assert post_webhook(f"{gateway.url}/v1/webhooks/pipedrive/nobody", pd_body, basic=BASIC).status == 404
    assert gateway.counter("salespulse_gateway_requests_refused_total", reason="unauthorized") == 7

    rng = random.Random(14)
    changes = 0
    for crm in ("hubspot", "salesforce", "pipedrive"):
        plan = {
            "o": bodies(crm, rng, shuffled=False),
            "s": bodies(crm, rng, shuffled=True),
            "t": bodies(crm, rng, shuffled=False) + bodies(crm, rng, shuffled=True),
        }
        for delivery, requests in plan.items():
            for body in requests:
                answer = post(gateway, crm, f"{crm}-{delivery}", body)
                assert answer.status == 200, answer
                assert answer.body["rejected"] == [], answer.body
                changes += answer.body["accepted"]

    wait_until(
        lambda: worker.counter("salespulse_crm_changes_total") >= changes,
        180,
        f"{changes} changes assembled (log tail:\n{worker.log_tail(15)})",
    )
    topics = ("deals", "calls", "visits")
    emitted = int(worker.counter("salespulse_crm_events_emitted_total"))
    records = asyncio.run(read_topics(worker.broker, [worker.topic_prefix + topic for topic in topics]))
    on_topics = [orjson.loads(record.value) for found in records.values() for record in found]
    assert len(on_topics) == emitted
    wait_until(
        lambda: worker.counter("salespulse_events_consumed_total") >= emitted,
        180,
        f"{emitted} events consumed (log tail:\n{worker.log_tail(15)})",
    )

    expected_all: list[dict[str, Any]] = []
    for crm in ("hubspot", "salesforce", "pipedrive"):
        for delivery in DELIVERIES:
            prefix = f"{crm[:2]}-{delivery}-"
            expected = expected_events(crm, prefix)
            expected_all.extend(expected)
            mine = [event for event in on_topics if event["source"] == f"{crm}-{delivery}"]
            by_id: dict[str, dict[str, Any]] = {}
            for event in mine:
                assert by_id.setdefault(event["event_id"], event) == event, "one event_id, two contents"
            distinct = list(by_id.values())
            if crm == "pipedrive" or (crm == "salesforce" and delivery == "o"):
                # Pipedrive's notifications carry the whole state, and Salesforce in order sends each
                # change whole: exactly the story. (HubSpot sends one property per event, so even in
                # order a state at one instant is completed by the next event of the same instant.)
                assert sorted(map(comparable, distinct)) == sorted(map(comparable, expected)), (crm, delivery)
            else:
                # Out of order, a state may first be emitted before an older change arrived, then
                # corrected at the same occurred_at (which the contract resolves by delivery order):
                # the last event of each (deal, occurred_at), in topic order, and every activity is the story.
                final: dict[tuple[str, str], dict[str, Any]] = {}
                for event in mine:
                    slot = event["occurred_at"] if event["event_type"] == "deal" else event["event_id"]
                    final[(event.get("deal_id") if event["event_type"] == "deal" else "", slot)] = event
                if (crm, delivery) == ("hubspot", "s"):  # the known limit below: a late deal link
                    final = {
                        k: {**e, "deal_id": None} if e["event_type"] != "deal" else e
                        for k, e in final.items()
                    }
                    expected = [{**e, "deal_id": None} if e["event_type"] != "deal" else e for e in expected]
                assert sorted(map(comparable, final.values())) == sorted(map(comparable, expected)), (
                    crm,
                    delivery,
                )
            if delivery == "t":
                # Twice: not one event_id more than once delivered (the redelivery emitted only copies).
                once = {e["event_id"] for e in on_topics if e["source"] == f"{crm}-o"}
                assert len(by_id) >= len(expected) and len(once) == len(expected)

    # Known limit (docs/crm/hubspot.md): HubSpot sends a call's deal association as its own event;
    # shuffled so that it comes in a later request than the call's other properties, the call
    # is already emitted (activities are immutable) without its deal_id. The views are then those
    # of the events as emitted; everything else above is checked against the story itself.
    emitted_links = {
        (e["event_type"], e["occurred_at"]): e.get("deal_id")
        for e in on_topics
        if e["source"] == "hubspot-s" and e["event_type"] != "deal"
    }
    for event in expected_all:
        if event["source"] == "hubspot-s" and event["event_type"] != "deal":
            event["deal_id"] = emitted_links[(event["event_type"], event["occurred_at"])]
    numbered = [
        {**{key: value for key, value in event.items() if value is not None}, "event_id": f"expected-{n}"}
        for n, event in enumerate(expected_all)
    ]
    views = sorted_views(
        expected_views([], numbered, timezone="UTC", reporting_currency="USD", currency_rates={})
    )
    assert_views_equal(actual_views(worker), views)
    assert worker.counter("salespulse_events_rejected_total") == 0
