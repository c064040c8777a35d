"""The assembly agent: partial CRM changes in, full contract events out (issue 14).

The gateway's CRM adapters publish each change of a deal, call or meeting on the internal
changes topic (``<prefix>changes``), keyed by object. This agent keeps every object's record in a
Faust table (changelogged, so a restart or another worker taking the partition over has it),
merges each change (:mod:`salespulse.assembly.merge`) and publishes the resulting full contract
events on the deals, calls and visits topics, where the ingest service treats them like any
CRM's events. Faust tables can only be changed while iterating a stream event by event; the
changes topic is low volume (one message per CRM change), so that costs nothing here.
"""

import logging

import faust
import orjson
from faust.types import TableT
from prometheus_client import Counter

from salespulse.assembly.changes import Change
from salespulse.assembly.merge import merge
from salespulse.config import Settings
from salespulse.kafka.producer import message_key
from salespulse.kafka.topics import Topics
from salespulse.streams.metrics import Metrics

log = logging.getLogger(__name__)


def add_deal_assembly(app: faust.App, settings: Settings, metrics: Metrics) -> TableT:
    """The assembly table and agent; returns the table."""
    topics = Topics.from_settings(settings)
    changes = Counter(
        "salespulse_crm_changes_total",
        "CRM changes read from the changes topic, by object kind and result: merged, duplicate "
        "(a redelivery), held (its deal is not complete yet at that instant), malformed.",
        ["kind", "result"],
        registry=metrics.registry,
    )
    emitted = Counter(
        "salespulse_crm_events_emitted_total",
        "Full contract events the assembly agent published, by type (re-sent duplicates included).",
        ["type"],
        registry=metrics.registry,
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    source = raw_topic(topics.changes)
    outputs = {kind: raw_topic(topics.for_type(kind)) for kind in ("deal", "call", "visit")}
    table = app.Table(
        "crm-assembly",  # changelog topic: <app_id>-crm-assembly-changelog
        default=None,
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
    )

    async def assemble(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                change = Change.decode(value)
            except (ValueError, KeyError) as error:
                # Only the gateway writes this topic; a foreign message is logged, never guessed at.
                changes.labels("unknown", "malformed").inc()
                log.warning("skipping a message on %s that is not a change record: %s", topics.changes, error)
                continue
            key = change.key.encode()
            merged = merge(table.get(key), change)
            for event in merged.events:
                event_key = message_key(event["event_type"], event)
                await outputs[change.kind].send(
                    key=None if event_key is None else event_key.encode(), value=orjson.dumps(event)
                )
                emitted.labels(event["event_type"]).inc()
            table[key] = merged.record
            result = "duplicate" if merged.duplicate else "held" if merged.held else "merged"
            changes.labels(change.kind, result).inc()

    app.agent(source, name="crm-assembly")(assemble)
    return table
