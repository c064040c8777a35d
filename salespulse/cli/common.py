"""What every command shares: the consoles, failing with a message, settings from flags, common options."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from salespulse.config import Settings, describe_settings_error, load_settings

console = Console()
errors = Console(stderr=True)


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
