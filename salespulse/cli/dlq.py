"""`salespulse dlq`: what was rejected, and replaying it once the cause is fixed."""

from typing import Annotated

import typer
from aiokafka.errors import KafkaError

from salespulse.cli.common import BrokerOption, OutputFormat, console, fail, settings_from

app = typer.Typer(
    help="The dead-letter topic: what was rejected, and replaying it once fixed.", no_args_is_help=True
)


@app.command("list")
def dlq_list(
    all_: Annotated[bool, typer.Option("--all", help="Also the records replayed before.")] = False,
    broker: BrokerOption = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv or json.")
    ] = OutputFormat.table,
) -> None:
    """Rejected messages waiting in the DLQ: counted by reason and source topic, with a sample of each."""
    from salespulse.cli.output import print_result
    from salespulse.kafka.dlq import read_dead_letters, summarize
    from salespulse.sinks.clickhouse.querying import QueryResult

    settings = settings_from(broker=broker)
    try:
        summaries = summarize(read_dead_letters(settings, everything=all_))
    except (LookupError, ConnectionError, OSError, KafkaError) as error:
        fail(f"cannot read the DLQ on {settings.broker}: {error}")
    columns = ["reason", "source_topic", "count", "sample_message", "sample_payload"]
    rows = [(s.reason, s.source_topic, s.count, s.sample_message, s.sample_payload) for s in summaries]
    print_result(QueryResult(columns, rows), format_.value, console)


@app.command("replay")
def dlq_replay(
    reason: Annotated[
        list[str] | None,
        typer.Option(help="Only records with this reason (repeatable), e.g. unknown_currency."),
    ] = None,
    broker: BrokerOption = None,
) -> None:
    """Send waiting DLQ records back to their source topics, after the cause was fixed.

    The worker judges them again: accepted ones count once, the others return to the DLQ.
    """
    from salespulse.kafka.dlq import replay

    settings = settings_from(broker=broker)
    try:
        report = replay(settings, set(reason) if reason else None)
    except (LookupError, ConnectionError, OSError, KafkaError) as error:
        fail(f"cannot replay the DLQ on {settings.broker}: {error}")
    by_reason = (
        ", ".join(f"{name} {count}" for name, count in sorted(report.replayed.items())) or "nothing waiting"
    )
    console.print(f"replayed {report.total} message(s) to their source topics: {by_reason}")
    for letter in report.not_replayable:
        body = letter.body
        if body.get("source_endpoint"):
            # A CRM webhook item: it never was on a topic; once the mapping is fixed, the CRM resends it.
            console.print(
                f"not replayable (a webhook item of {body.get('source_endpoint')}): fix the source's maps, "
                "then have the CRM resend it or POST its payload_text to that endpoint",
                markup=False,
                soft_wrap=True,
            )
            continue
        console.print(
            f"not replayable (payload not copied into the DLQ): {body.get('source_topic')} "
            f"partition {body.get('source_partition')} offset {body.get('source_offset')}",
            markup=False,
            soft_wrap=True,
        )
