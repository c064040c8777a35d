"""`salespulse bench`: throughput, freshness and memory, each beside a baseline of the same run."""

from pathlib import Path
from typing import Annotated

import typer

from salespulse.cli.common import console, fail


def bench(
    short: Annotated[
        bool, typer.Option("--short", help="A quick run (CI smoke): small figures, same checks.")
    ] = False,
    events: Annotated[
        int | None, typer.Option(help="Events for the throughput runs (default 1,000,000).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
) -> None:
    """Measure throughput, freshness and memory, each beside a baseline measured in the same run."""
    from dataclasses import replace

    from salespulse.bench.runner import BenchFailed, BenchOptions, run_bench

    options = BenchOptions.short() if short else BenchOptions()
    if events is not None:
        options = replace(options, events=events)
    try:
        run_bench(options, output, console)
    except BenchFailed as error:
        fail(str(error))
