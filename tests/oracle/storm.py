"""Event storms: a large simulated history delivered with duplicates, out of order and late."""

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from salespulse.simulator import SimulationOptions, generate_history


@dataclass
class Storm:
    org: list[dict[str, Any]]
    unique_events: list[dict[str, Any]]  # each event once, in CRM (occurred_at) order
    delivery: list[dict[str, Any]]  # what is published, in this order
    duplicates: int
    late: int


def build_storm(
    seed: int, reps: int, days: int, duplicate_share: float = 0.30, late_share: float = 0.05
) -> Storm:
    """A simulated history of ``reps`` reps over ``days`` days, stormed.

    - each deal's events are shuffled among the positions they occupy (random order within
      each deal: later states often arrive before earlier ones);
    - ``late_share`` of all events are moved to the very end (they arrive days late);
    - ``duplicate_share`` of them are published a second time, later than the first copy.
    """
    rng = random.Random(seed)
    customers = max(50, reps * 14)
    regions = 4 if reps >= 60 else 2
    options = SimulationOptions(
        regions=regions, teams=max(regions, reps // 11), reps=reps, customers=customers
    )
    history = generate_history(date(2026, 1, 1), days, seed, options)
    events = list(history.events)
    delivery = events[:]
    by_deal: dict[str, list[int]] = {}
    for position, event in enumerate(delivery):
        if event["event_type"] == "deal":
            by_deal.setdefault(event["deal_id"], []).append(position)
    for positions in by_deal.values():
        members = [delivery[p] for p in positions]
        # Two events of one deal at the same instant must keep their order (the later-delivered
        # one wins, contract §4); the simulator never produces such ties, and this guards it.
        assert len({m["occurred_at"] for m in members}) == len(members), "tie in a deal's history"
        rng.shuffle(members)
        for p, member in zip(positions, members, strict=True):
            delivery[p] = member
    late = set(rng.sample(range(len(delivery)), int(len(delivery) * late_share)))
    delivery = [e for i, e in enumerate(delivery) if i not in late] + [delivery[i] for i in sorted(late)]
    copies = sorted(rng.sample(range(len(delivery)), int(len(delivery) * duplicate_share)), reverse=True)
    stormed = delivery[:]
    for index in copies:
        stormed.insert(rng.randint(index + 1, len(delivery)), orjson.loads(orjson.dumps(delivery[index])))
    return Storm(history.org, events, stormed, len(copies), len(late))
