"""The ``salespulse`` command line: one module per command group, assembled here.

Every command reads its settings from ``SALESPULSE_*`` environment variables; the flags shown
by ``--help`` override them. Start with ``salespulse up --simulate``.
"""

import os

import typer

from salespulse.cli import (
    bench,
    dlq,
    gateway,
    import_csv,
    migrate,
    publish,
    query,
    run,
    schema,
    simulate,
    targets,
    topics,
    ui,
)

cli = typer.Typer(
    name="salespulse",
    help="CRM sales events from Kafka to live KPI views in ClickHouse.\n\n"
    "Try it: `salespulse up --simulate` runs everything on this machine with simulated CRM "
    "traffic; then `salespulse sql 'SELECT * FROM kpi_daily LIMIT 10'`.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
for command in (
    run.up,
    run.worker,
    simulate.simulate,
    publish.publish,
    query.sql,
    migrate.migrate,
    query.stalled,
    bench.bench,
    query.leaderboard,
    query.followups,
    ui.ui,
    gateway.gateway,
):
    cli.command()(command)
cli.command(name="import")(import_csv.import_)
cli.add_typer(schema.app, name="schema")
cli.add_typer(topics.app, name="topics")
cli.add_typer(targets.app, name="targets")
cli.add_typer(dlq.app, name="dlq")


def main() -> None:
    # Faust reads the log level from its own environment; keep its banner quiet in our CLI.
    os.environ.setdefault("F_QUIET", "1")
    cli()
