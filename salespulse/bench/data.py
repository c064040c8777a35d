"""Synthetic CRM traffic for the benchmark: a realistic mix, generated fast, with its expected totals.

The simulator (``salespulse.simulator``) models a sales org in detail but produces tens of
thousands of events per second at most; a benchmark needs a million in seconds. This
generator keeps the mix of the simulator (about 55% calls, 19% visits, 18% deal updates,
8% feedback; deals moving through the funnel; activity linked to deals) and writes the JSON
bytes directly. It also counts what it generated, so the benchmark can check the views.
"""

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

FUNNEL = ("prospecting", "qualified", "proposal", "negotiation")
TYPE_WEIGHTS = (("call", 55), ("visit", 19), ("deal", 18), ("feedback", 8))
TOPIC_SUFFIX = {"visit": "visits", "call": "calls", "deal": "deals", "feedback": "feedback"}


@dataclass
class Expected:
    """Totals the views must show for the generated events (company level)."""

    by_type: Counter[str] = field(default_factory=Counter)
    visits_completed: int = 0
    calls_connected: int = 0
    deals: set[str] = field(default_factory=set)

    @property
    def events(self) -> int:
        return sum(self.by_type.values())


@dataclass
class Message:
    topic_suffix: str
    key: bytes
    value: bytes


def generate(
    events: int,
    *,
    reps: int = 200,
    open_deals: int = 50_000,
    seed: int = 1,
    start: datetime | None = None,
    days: int = 365,
    expected: Expected | None = None,
    id_prefix: str = "b",
) -> Iterator[Message]:
    """``events`` messages over ``days`` days, for ``open_deals`` deals that never close.

    The first ``open_deals`` messages create the deals (so exactly that many exist once
    ``events`` ≥ ``open_deals``); after them comes the random mix. Deals only move forward
    through the open stages, so they all stay open: the benchmark's memory figure depends on
    that number, not on how many events are sent.
    """
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 1, tzinfo=UTC)
    span = days * 86_400
    types = [name for name, weight in TYPE_WEIGHTS for _ in range(weight)]
    stage_of = [0] * open_deals
    expected = expected if expected is not None else Expected()
    for number in range(events):
        creating = number < open_deals
        event_type = "deal" if creating else rng.choice(types)
        # Time moves forward with small jitter, so days fill up in order like a backfill.
        moment = start + timedelta(seconds=int(span * number / max(1, events)) + rng.randint(0, 3600))
        deal = number if creating else rng.randrange(open_deals)
        rep = f"rep-{deal % reps:04d}"
        customer = f"cust-{deal % (open_deals // 3 + 1):07d}"
        body: dict[str, object] = {
            "event_id": f"{id_prefix}{seed}-{number}",
            "occurred_at": moment.isoformat().replace("+00:00", "Z"),
            "rep_id": rep,
            "customer_id": customer,
            "source": "bench",
        }
        if event_type == "deal" or rng.random() < 0.4:
            body["deal_id"] = f"deal-{deal:07d}"
        if event_type == "visit":
            outcome = rng.choice(("completed", "completed", "completed", "cancelled", "no_show"))
            body |= {"duration_minutes": rng.randint(10, 120), "outcome": outcome}
            expected.visits_completed += outcome == "completed"
        elif event_type == "call":
            outcome = rng.choice(("connected", "connected", "no_answer", "busy", "voicemail"))
            body |= {
                "direction": rng.choice(("outbound", "inbound")),
                "duration_seconds": rng.randint(0, 1800),
                "outcome": outcome,
            }
            expected.calls_connected += outcome == "connected"
        elif event_type == "deal":
            stage_of[deal] = min(len(FUNNEL) - 1, stage_of[deal] + (rng.random() < 0.3))
            body |= {
                "stage": FUNNEL[stage_of[deal]],
                "amount": f"{rng.randint(1_000, 500_000)}.{rng.randint(0, 99):02d}",
                "expected_close_date": (moment + timedelta(days=rng.randint(10, 120))).date().isoformat(),
            }
            expected.deals.add(str(body["deal_id"]))
        else:
            score_type = rng.choice(("csat", "nps"))
            score = rng.randint(1, 5) if score_type == "csat" else rng.randint(0, 10)
            body |= {
                "score_type": score_type,
                "score": score,
                "category": rng.choice(("praise", "complaint", "suggestion")),
            }
        expected.by_type[event_type] += 1
        key = str(body.get("deal_id") or customer).encode()
        yield Message(TOPIC_SUFFIX[event_type], key, orjson.dumps(body))


def preload(bootstrap: str, topic_prefix: str, messages: Iterator[Message]) -> int:
    """Publish fast (confluent-kafka batches far better than kafka-python); returns the count."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 20_000,
            "queue.buffering.max.messages": 500_000,
            "acks": "all",
        }
    )
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for message in messages:
        while True:
            try:
                producer.produce(
                    topic_prefix + message.topic_suffix, message.value, message.key, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining or failures:
        raise RuntimeError(f"{remaining} messages not delivered; first failures: {failures[:3]}")
    return count
