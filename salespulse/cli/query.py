"""Reading the views: `sql`, and the views managers ask for by name (`stalled`, `leaderboard`, `followups`)."""

from enum import StrEnum
from typing import Annotated

import typer

from salespulse.cli.common import OutputFormat, console, fail, settings_from


def sql(
    query: Annotated[str, typer.Argument(help="SQL to run, e.g. 'SELECT * FROM kpi_daily LIMIT 5'.")],
    url: Annotated[
        str | None,
        typer.Option(
            help="ClickHouse HTTP URL; default: SALESPULSE_CLICKHOUSE_URL, else the endpoint of `up`."
        ),
    ] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Query the views (by default through the endpoint of a running `salespulse up`)."""
    from salespulse.cli.output import print_result
    from salespulse.sinks.clickhouse.querying import QueryFailed, run_query

    settings = settings_from()
    try:
        result = run_query(settings, query, url)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


class Severity(StrEnum):
    warning = "warning"
    critical = "critical"


def stalled(
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Only warning or critical.")] = None,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """List the deals that are stalled now (idle, stuck or overdue), most urgent first."""
    from salespulse.cli.output import print_result
    from salespulse.sinks.clickhouse.querying import QueryFailed, equality_filters, run_query

    where, parameters = equality_filters(
        {
            "region_id": region,
            "team_id": team,
            "rep_id": rep,
            "severity": severity.value if severity else None,
        }
    )
    sql = (
        "SELECT deal_id, rep_id, team_id, region_id, customer_id, stage, amount, arrayStringConcat(reasons, ',') "
        "AS reasons, severity, stalled_since, idle_days FROM stalled_deals "
        f"WHERE {where} ORDER BY severity = 'critical' DESC, stalled_since, deal_id"
    )
    settings = settings_from()
    try:
        result = run_query(settings, sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


class LeaderboardLevel(StrEnum):
    rep = "rep"
    team = "team"
    region = "region"


def leaderboard(
    period: Annotated[str, typer.Option(help="month or quarter.")] = "month",
    level: Annotated[LeaderboardLevel | None, typer.Option(help="Only this level.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="won_amount, deals_won, win_rate, activities or csat.")
    ] = None,
    top: Annotated[int, typer.Option(help="Ranks to show per level and metric.")] = 3,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """The current month's (or quarter's) rankings: best rep, best team (月度最佳销售 / 最佳团队)."""
    from salespulse.cli.output import print_result
    from salespulse.sinks.clickhouse.querying import QueryFailed, run_query

    if period not in ("month", "quarter"):
        fail("--period must be month or quarter")
    parameters = {"period": period, "level": level.value if level else "", "metric": metric or "", "top": top}
    # "Current" = the latest period with data, so a replay in --clock event mode shows its own month.
    sql = (
        "SELECT period_start, level, metric, rank, entity_id, round(value, 4) AS value FROM leaderboard "
        "WHERE period = {period:String} AND rank <= {top:UInt32} "
        "AND period_start = (SELECT max(period_start) FROM leaderboard WHERE period = {period:String}) "
        "AND ({level:String} = '' OR level = {level:String}) AND ({metric:String} = '' OR metric = {metric:String}) "
        "ORDER BY indexOf(['rep', 'team', 'region'], level), metric, rank, entity_id"
    )
    try:
        result = run_query(settings_from(), sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)


def followups(
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only this tier (A, B or C).")] = None,
    url: Annotated[str | None, typer.Option(help="ClickHouse HTTP URL (default as for `sql`).")] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Customers whose regular follow-up (定期回访) is due or overdue, most overdue first."""
    from salespulse.cli.output import print_result
    from salespulse.sinks.clickhouse.querying import QueryFailed, equality_filters, run_query

    where, parameters = equality_filters({"team_id": team, "rep_id": rep, "tier": tier})
    sql = (
        "SELECT customer_id, tier, rep_id, team_id, last_contact_at, due_at, overdue_days, status "
        f"FROM followup_due WHERE {where} ORDER BY overdue_days DESC, tier, customer_id"
    )
    try:
        result = run_query(settings_from(), sql, url, parameters)
    except QueryFailed as error:
        fail(str(error))
    print_result(result, format_.value, console)
