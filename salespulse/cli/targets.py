"""`salespulse targets`: sales targets from a spreadsheet."""

from pathlib import Path
from typing import Annotated

import typer

from salespulse.cli.common import BrokerOption, console, fail, settings_from

app = typer.Typer(help="Sales targets (SMART goals) per rep, team, region or company.", no_args_is_help=True)


@app.command("import")
def targets_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header row, or JSON Lines.", exists=True)],
    broker: BrokerOption = None,
) -> None:
    """Publish targets from a spreadsheet: columns level, entity_id, metric, period, period_start, target.

    Bad rows are listed with their line number and reason (exit code 1); the good rows are
    published all the same. A later import of the same key replaces the earlier target.
    """
    from salespulse.publishing.targets import import_targets

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
