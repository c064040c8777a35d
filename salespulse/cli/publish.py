"""`salespulse publish`: JSON Lines files of events or records to their topics."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from salespulse.cli.common import BrokerOption, console, fail, settings_from


class PublishType(StrEnum):
    visit = "visit"
    call = "call"
    deal = "deal"
    feedback = "feedback"
    org = "org"
    customers = "customers"
    targets = "targets"


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
    from salespulse.publishing.json_lines import publish_files

    settings = settings_from(broker=broker)
    try:
        report = publish_files(files, settings, type_override=type_.value if type_ else None)
    except (ConnectionError, TimeoutError, OSError) as error:
        fail(str(error))
    console.print(report.summary() if hasattr(report, "summary") else report)
    if getattr(report, "bad_lines", None):
        raise typer.Exit(1)
