"""Querying the views from outside a worker: the configured ClickHouse server, or the endpoint of `up`."""

from dataclasses import dataclass
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from salespulse.config import Settings


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


def equality_filters(filters: dict[str, str | None]) -> tuple[str, dict[str, str]]:
    """A WHERE condition (``column = {column:String}`` for each given value) and its parameters."""
    given = {column: value for column, value in filters.items() if value}
    return " AND ".join(f"{column} = {{{column}:String}}" for column in given) or "1", given
