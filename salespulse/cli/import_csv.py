"""`salespulse import`: a CRM export (CSV) to events, through a column mapping file (TOML)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from salespulse.cli.common import BrokerOption, console, errors, fail, settings_from

MAX_BAD_ROWS_SHOWN = 50


def import_(
    file: Annotated[Path, typer.Argument(help="The CRM's CSV export (deals, activities).", exists=True)],
    mapping: Annotated[
        Path,
        typer.Option("--mapping", help="TOML file: column of each field, value maps (see examples/import)."),
    ],
    broker: BrokerOption = None,
) -> None:
    """Turn a CRM export into events and publish the good rows; bad rows are listed with file:line.

    Exits with 1 when any row is bad (fix them, and import again: event_ids make it harmless).
    """
    from salespulse.publishing.csv_import import MappingError, import_csv

    settings = settings_from(broker=broker)
    try:
        report = import_csv(file, mapping, settings, console)
    except MappingError as error:
        fail(str(error), 2)
    except (ConnectionError, TimeoutError, OSError) as error:
        fail(str(error))
    published = sum(report.published.values())
    for bad in report.bad_rows[:MAX_BAD_ROWS_SHOWN]:
        errors.print(f"[red]bad row[/] {escape(str(bad))}", highlight=False, soft_wrap=True)
    if len(report.bad_rows) > MAX_BAD_ROWS_SHOWN:
        errors.print(f"… and {len(report.bad_rows) - MAX_BAD_ROWS_SHOWN} more bad rows", highlight=False)
    topics = ", ".join(f"{topic} {count}" for topic, count in sorted(report.published.items()))
    console.print(
        f"{report.rows} rows: {published} published ({topics or 'none'}), {len(report.bad_rows)} bad",
        highlight=False,
    )
    if report.bad_rows:
        raise typer.Exit(1)
