"""Versioned, idempotent ClickHouse migrations, and the contract views.

Tables change only through numbered migrations (``sql/NNNN_*.sql``), each applied once and
recorded in ``schema_migrations``; every statement is written to be safe to run again, so a
worker that dies half-way through simply re-applies on its next start. Views carry settings
(time zone, currency, stage probabilities) and are re-created at every start.
"""

import logging
import re
from datetime import UTC, datetime
from importlib import resources
from string import Template

from clickhouse_connect.driver.client import Client

from salespulse.config import Settings
from salespulse.schemas.reference import TIER_FOLLOW_UP_DAYS

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _sql_files() -> dict[str, str]:
    folder = resources.files("salespulse.sinks.clickhouse").joinpath("sql")
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }


def statements(sql: str) -> list[str]:
    """Split a file into statements: they end with ';' at the end of a line."""
    without_comments = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", without_comments, flags=re.MULTILINE) if part.strip()]


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration, in order."""
    found = []
    for filename, sql in _sql_files().items():
        match = _MIGRATION_FILE.match(filename)
        if match:
            found.append((int(match.group(1)), match.group(2), sql))
    return sorted(found)


def view_parameters(settings: Settings) -> dict[str, str]:
    probabilities = {f"p_{stage}": str(value) for stage, value in settings.stage_probabilities.items()}
    follow_up_days = {f"f_{tier}": str(days) for tier, days in TIER_FOLLOW_UP_DAYS.items()}
    # "Now" for views that compare with the present (stalls, pacing, follow-ups): the wall clock,
    # or with --clock event the latest occurred_at accepted, so that a replay gives the same rows.
    now = (
        "now64(6, 'UTC')"
        if settings.clock == "wall"
        else f"(SELECT toDateTime64(max(occurred_at), 6, 'UTC') FROM {settings.clickhouse_database}.events)"
    )
    # The stall thresholds (contract §6) as ClickHouse maps from open stage to days.
    rules = settings.stall_rules()

    def days_map(days: dict[str, int]) -> str:
        return "map(" + ", ".join(f"'{stage}', toUInt32({int(value)})" for stage, value in days.items()) + ")"

    return {
        "now": now,
        "idle_days": days_map(rules.idle_days),
        "stage_days": days_map(rules.stage_days),
        "overdue_critical_days": str(int(rules.overdue_critical_days)),
        "db": settings.clickhouse_database,
        "tz": settings.reporting_timezone,
        "currency": settings.reporting_currency,
        **probabilities,
        **follow_up_days,
    }


def apply_migrations(client: Client, settings: Settings) -> list[int]:
    """Bring the database to the latest schema; returns the versions applied now."""
    db = settings.clickhouse_database
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        log.info("applying ClickHouse migration %04d %s", version, name)
        for statement in statements(Template(sql).substitute(db=db)):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[version, name, datetime.now(UTC)]],
            column_names=["version", "name", "applied_at"],
            database=db,
        )
        applied.append(version)
    create_views(client, settings)
    return applied


def create_views(client: Client, settings: Settings) -> None:
    """(Re)create the contract views with the current settings.

    ``views.sql`` first (the deal and KPI views others build on), then every other
    ``views_*.sql`` file in name order.
    """
    files = _sql_files()
    names = ["views.sql", *sorted(name for name in files if name.startswith("views_"))]
    parameters = view_parameters(settings)
    for name in names:
        for statement in statements(Template(files[name]).substitute(parameters)):
            client.command(statement)


def schema_version(client: Client, settings: Settings) -> int:
    """The latest migration applied to the database (0 when none)."""
    db = settings.clickhouse_database
    exists = client.command(f"EXISTS TABLE {db}.schema_migrations")
    if not exists or str(exists) == "0":
        return 0
    return int(str(client.command(f"SELECT max(version) FROM {db}.schema_migrations") or 0))
