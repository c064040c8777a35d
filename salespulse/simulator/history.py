"""A simulated history: deterministic for a seed, so a backfill published twice changes nothing."""

import hashlib
import random
from datetime import date, datetime, time, timedelta, tzinfo

from salespulse.simulator.company import Company, SimulatedData, SimulationOptions
from salespulse.simulator.simulation import Simulation


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tz)


def generate_history(
    start: date, days: int, seed: int, options: SimulationOptions | None = None
) -> SimulatedData:
    """``days`` days of simulated CRM history from ``start`` (local midnight in ``options.tz``).

    Deterministic for (start, seed, options); a shorter history is a prefix of a longer one.
    Org records take effect on ``start`` (the mover's second one half-way through), targets
    cover every month and quarter the period touches. Event and deal ids carry a tag derived
    from (seed, start, options), so publishing the same history twice changes nothing and
    histories with other seeds or starts do not collide.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    options = options or SimulationOptions()
    company = Company.create(seed, options)
    tag = hashlib.blake2s(f"{seed}|{start.isoformat()}|{options!r}".encode(), digest_size=3).hexdigest()
    simulation = Simulation(
        company, random.Random(f"{seed}:activity"), local_midnight(start, options.tz), tag
    )
    end = local_midnight(start + timedelta(days=days), options.tz)
    events = []
    for when, event in simulation.events():
        if when >= end:
            break
        events.append(event)
    last = start + timedelta(days=days - 1)
    return SimulatedData(
        org=company.org_records(start, start + timedelta(days=max(1, days // 2))),
        customers=company.customer_records(),
        targets=company.target_records(start, last),
        events=events,
    )
