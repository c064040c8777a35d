"""`salespulse simulate`: realistic CRM traffic on the topics."""

from typing import Annotated

import typer

from salespulse.cli.common import BrokerOption, fail, settings_from


def simulate(
    broker: BrokerOption = None,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 20.0,
    seed: Annotated[
        int, typer.Option(help="Seed: the same seed gives the same org, customers and deals.")
    ] = 42,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No status lines.")] = False,
) -> None:
    """Publish realistic CRM traffic: an org, customers, targets, deals moving through the funnel."""
    from salespulse.simulator import run_live

    settings = settings_from(broker=broker)
    if rate <= 0:
        fail(f"--rate must be above 0, got {rate}", 2)
    run_live(settings, rate=rate, seed=seed, duration=duration, quiet=quiet)
