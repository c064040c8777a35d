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
    gateway: Annotated[
        bool,
        typer.Option(
            "--gateway",
            help="Only the ingestion gateway: events/s beside direct publishing, latency at 1,000/s.",
        ),
    ] = False,
) -> None:
    """Measure throughput, freshness and memory, each beside a baseline measured in the same run."""
    from dataclasses import replace

    if gateway:
        import orjson

        from salespulse.bench.gateway_bench import GatewayBenchFailed, GatewayBenchOptions, run_gateway_bench

        gateway_options = GatewayBenchOptions.short() if short else GatewayBenchOptions()
        if events is not None:
            gateway_options = replace(gateway_options, events=events)
        try:
            results = run_gateway_bench(gateway_options, console)
        except GatewayBenchFailed as error:
            fail(str(error))
        if output is not None:
            output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        return

    from salespulse.bench.runner import BenchFailed, BenchOptions, run_bench

    options = BenchOptions.short() if short else BenchOptions()
    if events is not None:
        options = replace(options, events=events)
    try:
        run_bench(options, output, console)
    except BenchFailed as error:
        fail(str(error))
