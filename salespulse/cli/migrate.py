"""`salespulse migrate`: create or upgrade the ClickHouse tables and views."""

from typing import Annotated

import typer

from salespulse.cli.common import DataDirOption, console, fail, settings_from


def migrate(
    clickhouse_url: Annotated[
        str | None, typer.Option(help="ClickHouse to migrate (SALESPULSE_CLICKHOUSE_URL).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create or upgrade the ClickHouse tables and views (workers also do this at start)."""
    from salespulse.sinks.clickhouse.client import connect
    from salespulse.sinks.clickhouse.migrations import apply_migrations, schema_version

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
