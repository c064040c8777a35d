"""Running salespulse: everything on this machine (`up`), or one worker (`worker`)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from salespulse.cli.common import BrokerOption, ClockOption, DataDirOption, fail, settings_from


def up(
    data_dir: Annotated[Path, typer.Option(help="Data directory of the embedded ClickHouse.")] = Path(
        ".salespulse"
    ),
    broker_port: Annotated[int, typer.Option(help="Port of the embedded Kafka-protocol broker.")] = 9092,
    web_port: Annotated[int, typer.Option(help="Port of /metrics and /health.")] = 6066,
    sql_port: Annotated[
        int, typer.Option(help="Port of the read-only ClickHouse HTTP query endpoint.")
    ] = 8123,
    ui_port: Annotated[
        int, typer.Option(help="Port of the manager page (the web page for sales managers); 0: none.")
    ] = 8080,
    ingest_port: Annotated[
        int, typer.Option(help="Port of the ingestion gateway (CRMs post events over HTTP); 0: none.")
    ] = 8088,
    simulate: Annotated[bool, typer.Option("--simulate", help="Also run the CRM traffic simulator.")] = False,
    rate: Annotated[float, typer.Option(help="Simulated events per second.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulator.")] = 42,
    clock: ClockOption = None,
    dashboard: Annotated[
        bool | None,
        typer.Option("--dashboard/--no-dashboard", help="Live KPIs in the terminal (default: on a TTY)."),
    ] = None,
) -> None:
    """Run everything on this machine: embedded broker, worker, embedded ClickHouse (chDB).

    The broker runs as its own process; the worker is restarted if it dies. Ctrl-C (or
    SIGTERM) stops everything after the worker has written what it accepted.
    """
    from salespulse.embedded.supervisor import EmbeddedOptions, run_up

    settings = settings_from(
        data_dir=data_dir,
        broker=f"127.0.0.1:{broker_port}",
        web_port=web_port,
        sql_port=sql_port,
        ui_port=ui_port,
        ingest_port=ingest_port,
        clock=clock.value if clock else None,
        clickhouse_url=None,
    )
    if settings.clickhouse_url:
        fail(
            "`up` runs the embedded ClickHouse; unset SALESPULSE_CLICKHOUSE_URL or use `salespulse worker`.",
            2,
        )
    options = EmbeddedOptions(
        simulate=simulate,
        rate=rate,
        seed=seed,
        dashboard=sys.stdout.isatty() if dashboard is None else dashboard,
    )
    raise typer.Exit(run_up(settings, options))


def worker(
    broker: BrokerOption = None,
    clickhouse_url: Annotated[
        str | None,
        typer.Option(help="chdb:///path or http(s)://user:password@host:port (SALESPULSE_CLICKHOUSE_URL)."),
    ] = None,
    data_dir: DataDirOption = None,
    web_port: Annotated[int | None, typer.Option(help="Port of /metrics, /health and /ready.")] = None,
    sql_port: Annotated[
        int | None, typer.Option(help="Query endpoint port (embedded ClickHouse only; 0: off).")
    ] = None,
    clock: ClockOption = None,
) -> None:
    """Run one worker against a configured broker and ClickHouse (the production mode)."""
    from salespulse.streams.app import run_worker

    settings = settings_from(
        broker=broker,
        clickhouse_url=clickhouse_url,
        data_dir=data_dir,
        web_port=web_port,
        sql_port=sql_port,
        clock=clock.value if clock else None,
    )
    from salespulse.runtime.ports import PortTaken, require_free_port

    try:
        require_free_port(settings.web_host, settings.web_port, "metrics and health endpoint", "--web-port")
        if settings.uses_embedded_clickhouse and settings.sql_port:
            require_free_port(settings.sql_host, settings.sql_port, "ClickHouse query endpoint", "--sql-port")
    except PortTaken as taken:
        fail(str(taken), 2)
    extra_services = []
    if settings.uses_embedded_clickhouse and settings.sql_port:
        # The endpoint runs in the worker's process: chDB allows one engine per process.
        from salespulse.embedded.query_server.limits import limits_from_settings
        from salespulse.embedded.query_server.service import QueryEndpoint

        extra_services.append(
            QueryEndpoint(
                settings.effective_clickhouse_url.removeprefix("chdb://"),
                settings.clickhouse_database,
                settings.sql_host,
                settings.sql_port,
                limits=limits_from_settings(settings),
            )
        )
    run_worker(settings, extra_services)
