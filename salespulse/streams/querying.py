"""Running a query for the CLI: against the configured ClickHouse, or the endpoint of `up`."""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import clickhouse_connect
import orjson
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

from salespulse.streams.settings import Settings


class QueryFailed(RuntimeError):
    """The query could not run; the message says why and what to check."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def query_url(settings: Settings, url: str | None = None) -> str:
    """Where queries go: an explicit URL, a configured ClickHouse server, or the embedded endpoint."""
    if url:
        return url
    if settings.clickhouse_url and settings.clickhouse_url.startswith(("http://", "https://")):
        return settings.clickhouse_url
    return f"http://{settings.sql_host}:{settings.sql_port}"


def query_client(settings: Settings, url: str | None = None) -> Client:
    target = query_url(settings, url)
    try:
        return clickhouse_connect.get_client(dsn=target, database=settings.clickhouse_database)
    except Exception as error:
        raise QueryFailed(
            f"cannot reach ClickHouse at {target} ({type(error).__name__}: {error}). "
            "Is `salespulse up` running? Otherwise pass --url or set SALESPULSE_CLICKHOUSE_URL."
        ) from None


def run_query(
    settings: Settings, sql: str, url: str | None = None, parameters: dict[str, Any] | None = None
) -> QueryResult:
    client = query_client(settings, url)
    try:
        result = client.query(sql, parameters=parameters)
    except Exception as error:
        raise QueryFailed(str(error)) from None
    finally:
        client.close()
    return QueryResult(list(result.column_names), [tuple(row) for row in result.result_rows])


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def equality_filters(filters: dict[str, str | None]) -> tuple[str, dict[str, str]]:
    """A WHERE condition (``column = {column:String}`` for each given value) and its parameters."""
    given = {column: value for column, value in filters.items() if value}
    return " AND ".join(f"{column} = {{{column}:String}}" for column in given) or "1", given


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
