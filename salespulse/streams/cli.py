"""The ``salespulse`` command line.

Every command reads its settings from ``SALESPULSE_*`` environment variables; the flags shown
by ``--help`` override them. Start with ``salespulse up --simulate``.
"""

import asyncio
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console

from salespulse.streams.settings import Settings, describe_settings_error, load_settings

console = Console()
errors = Console(stderr=True)

cli = typer.Typer(
    name="salespulse",
    help="CRM sales events from Kafka to live KPI views in ClickHouse.\n\n"
    "Try it: `salespulse up --simulate` runs everything on this machine with simulated CRM "
    "traffic; then `salespulse sql 'SELECT * FROM kpi_daily LIMIT 10'`.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
schema_cli = typer.Typer(help="JSON Schemas of the events, for CRM integrators.", no_args_is_help=True)
topics_cli = typer.Typer(
    help="Kafka topics salespulse reads and writes (production mode).", no_args_is_help=True
)
cli.add_typer(schema_cli, name="schema")
cli.add_typer(topics_cli, name="topics")
targets_cli = typer.Typer(
    help="Sales targets (SMART goals) per rep, team, region or company.", no_args_is_help=True
)
cli.add_typer(targets_cli, name="targets")
dlq_cli = typer.Typer(
    help="The dead-letter topic: what was rejected, and replaying it once fixed.", no_args_is_help=True
)
cli.add_typer(dlq_cli, name="dlq")


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment and flags, or a clear message and exit code 2."""
    try:
        return load_settings(**overrides)
    except ValidationError as error:
        errors.print(describe_settings_error(error), highlight=False, markup=False)
        raise typer.Exit(2) from None


class Clock(StrEnum):
    wall = "wall"
    event = "event"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


BrokerOption = Annotated[
    str | None, typer.Option("--broker", help="Kafka bootstrap servers host:port (SALESPULSE_BROKER).")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where the embedded ClickHouse keeps its data (SALESPULSE_DATA_DIR)."),
]
ClockOption = Annotated[
    Clock | None,
    typer.Option("--clock", help="'wall': now is the wall clock; 'event': the latest occurred_at (replays)."),
]


@cli.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Data directory of the embedded ClickHouse.")] = Path(
        ".salespulse"
    ),
    broker_port: Annotated[int, typer.Option(help="Port of the embedded Kafka-protocol broker.")] = 9092,
    web_port: Annotated[int, typer.Option(help="Port of /metrics and /health.")] = 6066,
    sql_port: Annotated[
        int, typer.Option(help="Port of the read-only ClickHouse HTTP query endpoint.")
    ] = 8123,
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
    from salespulse.streams.embedded import EmbeddedOptions, run_up

    settings = settings_from(
        data_dir=data_dir,
        broker=f"127.0.0.1:{broker_port}",
        web_port=web_port,
        sql_port=sql_port,
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


@cli.command()
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
    from salespulse.streams.broker import PortTaken, require_free_port

    try:
        require_free_port(settings.web_host, settings.web_port, "metrics and health endpoint", "--web-port")
        if settings.uses_embedded_clickhouse and settings.sql_port:
            require_free_port(settings.sql_host, settings.sql_port, "ClickHouse query endpoint", "--sql-port")
    except PortTaken as taken:
        fail(str(taken), 2)
    run_worker(settings)


@cli.command()
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
    from salespulse.streams.simulator import run_live

    settings = settings_from(broker=broker)
    if rate <= 0:
        fail(f"--rate must be above 0, got {rate}", 2)
    run_live(settings, rate=rate, seed=seed, duration=duration, quiet=quiet)


class PublishType(StrEnum):
    visit = "visit"
    call = "call"
    deal = "deal"
    feedback = "feedback"
    org = "org"
    customers = "customers"
    targets = "targets"


@cli.command()
def publish(
    files: Annotated[
        list[Path], typer.Argument(help="JSON Lines files, one event or record per line.", exists=True)
    ],
    type_: Annotated[
        PublishType | None,
        typer.Option("--type", help="Type of every line; otherwise each line's event_type field decides."),
    ] = None,
    broker: BrokerOption = None,
) -> None:
    """Publish JSON Lines files of events (or org/customers/targets records) to their topics."""
    from salespulse.streams.publish import publish_files

    settings = settings_from(broker=broker)
    try:
        report = publish_files(files, settings, type_override=type_.value if type_ else None)
    except (ConnectionError, TimeoutError, OSError) as error:
        fail(str(error))
    console.print(report.summary() if hasattr(report, "summary") else report)
    if getattr(report, "bad_lines", None):
        raise typer.Exit(1)


@cli.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run, e.g. 'SELECT * FROM kpi_daily LIMIT 5'.")],
    url: Annotated[
        str | None,
        typer.Option(
            help="ClickHouse HTTP URL; default: SALESPULSE_CLICKHOUSE_URL, else the endpoint of `up`."
        ),
    ] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Query the views (by default through the endpoint of a running `salespulse up`)."""
    from salespulse.streams.querying import QueryFailed, print_result, run_query

    settings = settings_from()
    try:
        result = run_query(settings, query, url)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


@cli.command()
def migrate(
    clickhouse_url: Annotated[
        str | None, typer.Option(help="ClickHouse to migrate (SALESPULSE_CLICKHOUSE_URL).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create or upgrade the ClickHouse tables and views (workers also do this at start)."""
    from salespulse.sinks.clickhouse import connect
    from salespulse.sinks.migrations import apply_migrations, schema_version

    settings = settings_from(clickhouse_url=clickhouse_url, data_dir=data_dir)
    try:
        client = connect(settings)
        applied = apply_migrations(client, settings)
        version = schema_version(client, settings)
    except Exception as error:
        fail(f"could not migrate {settings.clickhouse_database}: {error}")
    console.print(
        f"database [bold]{settings.clickhouse_database}[/] at schema version {version}"
        + (f" (applied now: {', '.join(map(str, applied))})" if applied else " (already up to date)")
        + "; views re-created"
    )


@topics_cli.command("create")
def topics_create(broker: BrokerOption = None) -> None:
    """Create the salespulse topics that do not exist yet (reference topics compacted)."""
    from salespulse.streams.topics import ensure_topics

    settings = settings_from(broker=broker)
    try:
        created = asyncio.run(ensure_topics(settings))
    except Exception as error:
        fail(
            f"could not reach the broker at {settings.broker} ({error}); check SALESPULSE_BROKER or --broker"
        )
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


@topics_cli.command("list")
def topics_list() -> None:
    """Print each topic salespulse uses and what it carries."""
    from rich.table import Table

    from salespulse.streams.topics import Topics

    settings = settings_from()
    table = Table("topic", "kind", "carries", "compacted")
    for info in Topics.from_settings(settings).by_name.values():
        table.add_row(info.name, info.kind, info.type, "yes" if info.compacted else "")
    console.print(table)


@schema_cli.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the .schema.json files to.")],
) -> None:
    """Write one JSON Schema file per event type and reference record type."""
    from salespulse.schemas.export import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(f"wrote {path}")


class Severity(StrEnum):
    warning = "warning"
    critical = "critical"


@cli.command()
def stalled(
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Only warning or critical.")] = None,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """List the deals that are stalled now (idle, stuck or overdue), most urgent first."""
    from salespulse.streams.querying import QueryFailed, equality_filters, print_result, run_query

    where, parameters = equality_filters(
        {
            "region_id": region,
            "team_id": team,
            "rep_id": rep,
            "severity": severity.value if severity else None,
        }
    )
    sql = (
        "SELECT deal_id, rep_id, team_id, region_id, customer_id, stage, amount, arrayStringConcat(reasons, ',') "
        "AS reasons, severity, stalled_since, idle_days FROM stalled_deals "
        f"WHERE {where} ORDER BY severity = 'critical' DESC, stalled_since, deal_id"
    )
    settings = settings_from()
    try:
        result = run_query(settings, sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


@cli.command()
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

    from salespulse.streams.bench import BenchFailed, BenchOptions, run_bench

    options = BenchOptions.short() if short else BenchOptions()
    if events is not None:
        options = replace(options, events=events)
    try:
        run_bench(options, output, console)
    except BenchFailed as error:
        fail(str(error))


@targets_cli.command("import")
def targets_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header row, or JSON Lines.", exists=True)],
    broker: BrokerOption = None,
) -> None:
    """Publish targets from a spreadsheet: columns level, entity_id, metric, period, period_start, target.

    Bad rows are listed with their line number and reason (exit code 1); the good rows are
    published all the same. A later import of the same key replaces the earlier target.
    """
    from salespulse.streams.targets_import import import_targets

    settings = settings_from(broker=broker)
    try:
        report = import_targets(file, settings)
    except (ConnectionError, TimeoutError, OSError) as error:
        fail(str(error))
    console.print(f"published {report.published} target(s) to {settings.topic_prefix}targets")
    if report.bad_rows:
        console.print(f"{len(report.bad_rows)} row(s) not imported:", style="bold red")
        for bad in report.bad_rows:
            console.print(f"  {file}:{bad.line}: {bad.reason}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


class LeaderboardLevel(StrEnum):
    rep = "rep"
    team = "team"
    region = "region"


@cli.command()
def leaderboard(
    period: Annotated[str, typer.Option(help="month or quarter.")] = "month",
    level: Annotated[LeaderboardLevel | None, typer.Option(help="Only this level.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="won_amount, deals_won, win_rate, activities or csat.")
    ] = None,
    top: Annotated[int, typer.Option(help="Ranks to show per level and metric.")] = 3,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """The current month's (or quarter's) rankings: best rep, best team (月度最佳销售 / 最佳团队)."""
    from salespulse.streams.querying import QueryFailed, print_result, run_query

    if period not in ("month", "quarter"):
        fail("--period must be month or quarter")
    parameters = {"period": period, "level": level.value if level else "", "metric": metric or "", "top": top}
    # "Current" = the latest period with data, so a replay in --clock event mode shows its own month.
    sql = (
        "SELECT period_start, level, metric, rank, entity_id, round(value, 4) AS value FROM leaderboard "
        "WHERE period = {period:String} AND rank <= {top:UInt32} "
        "AND period_start = (SELECT max(period_start) FROM leaderboard WHERE period = {period:String}) "
        "AND ({level:String} = '' OR level = {level:String}) AND ({metric:String} = '' OR metric = {metric:String}) "
        "ORDER BY indexOf(['rep', 'team', 'region'], level), metric, rank, entity_id"
    )
    try:
        result = run_query(settings_from(), sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


@cli.command()
def followups(
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only this tier (A, B or C).")] = None,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Customers whose regular follow-up (定期回访) is due or overdue, most overdue first."""
    from salespulse.streams.querying import QueryFailed, equality_filters, print_result, run_query

    where, parameters = equality_filters({"team_id": team, "rep_id": rep, "tier": tier})
    sql = (
        "SELECT customer_id, tier, rep_id, team_id, last_contact_at, due_at, overdue_days, status "
        f"FROM followup_due WHERE {where} ORDER BY overdue_days DESC, tier, customer_id"
    )
    try:
        result = run_query(settings_from(), sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


@dlq_cli.command("list")
def dlq_list(
    all_: Annotated[bool, typer.Option("--all", help="Also the records replayed before.")] = False,
    broker: BrokerOption = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Rejected messages waiting in the DLQ: counted by reason and source topic, with a sample of each."""
    from salespulse.streams.dlq_replay import read_dead_letters, summarize
    from salespulse.streams.querying import QueryResult, print_result

    settings = settings_from(broker=broker)
    try:
        summaries = summarize(read_dead_letters(settings, everything=all_))
    except (LookupError, ConnectionError, OSError, KafkaError) as error:
        fail(f"cannot read the DLQ on {settings.broker}: {error}")
    columns = ["reason", "source_topic", "count", "sample_message", "sample_payload"]
    rows = [(s.reason, s.source_topic, s.count, s.sample_message, s.sample_payload) for s in summaries]
    print_result(QueryResult(columns, rows), format_.value, console)


@dlq_cli.command("replay")
def dlq_replay(
    reason: Annotated[
        list[str] | None,
        typer.Option(help="Only records with this reason (repeatable), e.g. unknown_currency."),
    ] = None,
    broker: BrokerOption = None,
) -> None:
    """Send waiting DLQ records back to their source topics, after the cause was fixed.

    The worker judges them again: accepted ones count once, the others return to the DLQ.
    """
    from salespulse.streams.dlq_replay import replay

    settings = settings_from(broker=broker)
    try:
        report = replay(settings, set(reason) if reason else None)
    except (LookupError, ConnectionError, OSError, KafkaError) as error:
        fail(f"cannot replay the DLQ on {settings.broker}: {error}")
    by_reason = (
        ", ".join(f"{name} {count}" for name, count in sorted(report.replayed.items())) or "nothing waiting"
    )
    console.print(f"replayed {report.total} message(s) to their source topics: {by_reason}")
    for letter in report.not_replayable:
        body = letter.body
        console.print(
            f"not replayable (payload not copied into the DLQ): {body.get('source_topic')} "
            f"partition {body.get('source_partition')} offset {body.get('source_offset')}",
            markup=False,
            soft_wrap=True,
        )


# --- more commands are added above this line -------------------------------------------------


def main() -> None:
    # Faust reads the log level from its own environment; keep its banner quiet in our CLI.
    os.environ.setdefault("F_QUIET", "1")
    cli()
