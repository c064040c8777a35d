"""Printing query results for a person or a program: a table, CSV or JSON."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from salespulse.sinks.clickhouse.querying import QueryResult


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_result(result: QueryResult, output: str, console: Console) -> None:
    """Print as a rich table, CSV (with a header) or JSON (an array of objects)."""
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_plain(value) for value in row] for row in result.rows])
        console.file.write(buffer.getvalue())
        return
    if output == "json":
        objects = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
        console.file.write(orjson.dumps(objects, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(*result.columns, show_lines=False)
    for row in result.rows:
        table.add_row(*["" if value is None else str(_plain(value)) for value in row])
    console.print(table)
    console.print(f"{len(result.rows)} row(s)", style="dim")
