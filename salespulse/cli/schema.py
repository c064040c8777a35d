"""`salespulse schema`: the JSON Schemas of the contract, for CRM integrators."""

from pathlib import Path
from typing import Annotated

import typer

from salespulse.cli.common import console

app = typer.Typer(help="JSON Schemas of the events, for CRM integrators.", no_args_is_help=True)


@app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the .schema.json files to.")],
) -> None:
    """Write one JSON Schema file per event type and reference record type."""
    from salespulse.schemas.export import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(f"wrote {path}")
