"""`salespulse rebuild`: recompute the live KPI tables from the stored events."""

from typing import Annotated

import typer
from rich.progress import Progress

from salespulse.cli.common import DataDirOption, console, fail, settings_from


def rebuild(
    clickhouse_url: Annotated[
        str | None, typer.Option(help="ClickHouse to rebuild (SALESPULSE_CLICKHOUSE_URL).")
    ] = None,
    data_dir: DataDirOption = None,
    from_scratch: Annotated[
        bool,
        typer.Option(
            "--from-scratch",
            help="Empty the live tables first (needed after a change of reporting time zone, and done "
            "then automatically). Stop the workers first: events they write meanwhile may be missed.",
        ),
    ] = False,
) -> None:
    """Recompute the live KPI tables from the raw events, e.g. after an upgrade.

    Safe while workers run (without --from-scratch): it only adds rows, and a recomputation that
    read everything stored is never overwritten by one that read less.
    """
    from salespulse.sinks.clickhouse.client import connect
    from salespulse.sinks.clickhouse.live import LiveTables
    from salespulse.sinks.clickhouse.migrations import apply_migrations

    settings = settings_from(clickhouse_url=clickhouse_url, data_dir=data_dir)
    try:
        client = connect(settings)
        apply_migrations(client, settings)
        with Progress(console=console) as progress:
            task = progress.add_task("rebuilding live tables", total=None)
            LiveTables(client, settings).rebuild(
                from_scratch=from_scratch,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except Exception as error:
        fail(f"could not rebuild the live tables of {settings.clickhouse_database}: {error}")
    console.print(f"live tables of [bold]{settings.clickhouse_database}[/] rebuilt from the stored events")
