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
    views: Annotated[
        bool,
        typer.Option(
            "--views",
            help="Only the dashboard queries over generated histories (1M and 10M events, or --events): "
            "live views beside the views computed from the raw events.",
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

    if views:
        import orjson

        from salespulse.bench.views_bench import DASHBOARD_QUERIES, run_views_bench_isolated

        sizes = [events] if events is not None else ([100_000] if short else [1_000_000, 10_000_000])
        all_figures = []
        for size in sizes:
            figures = run_views_bench_isolated(size)
            all_figures.append(figures.__dict__)
            console.print(
                f"[bold]{size:,} events[/]: generated in {figures.generate_seconds:.1f}s, "
                f"live tables built in {figures.rebuild_seconds:.1f}s; over the HTTP query endpoint, "
                "median of 5, ms (live / before)"
            )
            for name in DASHBOARD_QUERIES:
                live_ms, before_ms = figures.live_ms[name], figures.baseline_ms[name]
                # NaN: the query endpoint refused the query (a limit, e.g. memory).
                console.print(
                    f"  {name}: {'refused' if live_ms != live_ms else f'{live_ms:,.0f}'} / "
                    f"{'refused' if before_ms != before_ms else f'{before_ms:,.0f}'}"
                )
        if len(all_figures) > 1:
            first, last = all_figures[0], all_figures[-1]
            console.print(
                f"[bold]growth from {first['events']:,} to {last['events']:,} events[/] (live / before)"
            )
            for name in DASHBOARD_QUERIES:
                console.print(
                    f"  {name}: {last['live_ms'][name] / first['live_ms'][name]:.2f}x / "
                    f"{last['baseline_ms'][name] / first['baseline_ms'][name]:.2f}x"
                )
        if output is not None:
            output.write_bytes(orjson.dumps(all_figures, option=orjson.OPT_INDENT_2))
        return

    from salespulse.bench.runner import BenchFailed, BenchOptions, run_bench

    options = BenchOptions.short() if short else BenchOptions()
    if events is not None:
        options = replace(options, events=events)
    try:
        run_bench(options, output, console)
    except BenchFailed as error:
        fail(str(error))
