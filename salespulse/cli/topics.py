"""`salespulse topics`: the Kafka topics salespulse reads and writes."""

import asyncio

import typer

from salespulse.cli.common import BrokerOption, console, fail, settings_from

app = typer.Typer(help="Kafka topics salespulse reads and writes (production mode).", no_args_is_help=True)


@app.command("create")
def topics_create(broker: BrokerOption = None) -> None:
    """Create the salespulse topics that do not exist yet (reference topics compacted)."""
    from salespulse.kafka.admin import ensure_topics

    settings = settings_from(broker=broker)
    try:
        created = asyncio.run(ensure_topics(settings))
    except Exception as error:
        fail(
            f"could not reach the broker at {settings.broker} ({error}); check SALESPULSE_BROKER or --broker"
        )
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command("list")
def topics_list() -> None:
    """Print each topic salespulse uses and what it carries."""
    from rich.table import Table

    from salespulse.kafka.topics import Topics

    settings = settings_from()
    table = Table("topic", "kind", "carries", "compacted")
    for info in Topics.from_settings(settings).by_name.values():
        table.add_row(info.name, info.kind, info.type, "yes" if info.compacted else "")
    console.print(table)
