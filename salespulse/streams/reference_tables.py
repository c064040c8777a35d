"""Reference data as Faust tables: the org, customers and targets the worker currently knows.

The views read reference data from ClickHouse (the ingest service writes it there with the
events). These tables keep the same records inside the worker, one Faust agent per reference
topic, so an operator can ask a worker what it knows (``/reference``) without ClickHouse.

The store is a setting (``table_store``): ``memory`` in the embedded mode — the tables are
small and rebuilt from their compacted changelog topics in a moment — and ``rocksdb`` in
production, where a restart reopens the tables from disk under ``data_dir/tables`` instead of
reading the changelogs again. Reference topics are low volume, so per-event agents (Faust's
only way to change a table) cost nothing here.
"""

from typing import Any

import faust
import orjson
from faust.types import TableT
from pydantic import ValidationError

from salespulse.config import Settings
from salespulse.kafka.topics import Topics
from salespulse.schemas.reference import REFERENCE_MODELS


def add_reference_tables(app: faust.App, settings: Settings) -> dict[str, TableT]:
    """A table and an agent per reference topic; returns the tables by record type."""
    topics = Topics.from_settings(settings)
    tables: dict[str, TableT] = {}
    for record_type, model in REFERENCE_MODELS.items():
        source = app.topic(
            topics.for_type(record_type),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        table = app.Table(
            f"reference-{record_type}",  # changelog topic: <app_id>-reference-<type>-changelog
            default=None,
            partitions=settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
        )
        tables[record_type] = table

        async def mirror(stream: faust.StreamT, table: TableT = table, model: Any = model) -> None:
            async for key, value in stream.items():
                if value is None:  # a tombstone deletes the record
                    if key is not None:
                        table.pop(key, None)
                    continue
                try:
                    record = model.model_validate_json(value)
                except ValidationError:
                    continue  # the ingest service sends it to the DLQ with the reason
                table[record.record_key.encode()] = orjson.dumps(record.model_dump(mode="json"))

        app.agent(source, name=f"reference-{record_type}")(mirror)
    return tables


def table_summary(tables: dict[str, TableT]) -> dict[str, Any]:
    """What ``/reference`` shows: the records of the partitions this worker holds, per type."""
    return {
        record_type: sorted((orjson.loads(value) for value in table.values() if value), key=orjson.dumps)
        for record_type, table in tables.items()
    }
