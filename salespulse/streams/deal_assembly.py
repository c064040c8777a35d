"""The assembly agent: partial CRM changes in, full contract events out (issue 14).

The gateway's CRM adapters publish each change of a deal, call or meeting on the internal
changes topic (``<prefix>changes``), keyed by object. This agent keeps every object's record in a
Faust table (changelogged, so a restart or another worker taking the partition over has it),
merges each change (:mod:`salespulse.assembly.merge`) and publishes the resulting full contract
events on the deals, calls and visits topics, where the ingest service treats them like any
CRM's events. Faust tables can only be changed while iterating a stream event by event; the
changes topic is low volume (one message per CRM change), so that costs nothing here.

A complete activity that waits for its deal link (``Merged.awaiting``) gets a deadline in a second
table (``crm-assembly-settle``: now + ``crm_activity_settle_seconds``). A timer cannot change
tables, so when a deadline has passed it publishes a *release* change on the changes topic, keyed
like the object's changes: the agent merges it in the object's order, emits the activity and
drops the deadline. A release is idempotent (a second one changes nothing), so the timers of two
workers, or a standby's copy of the table, releasing the same activity do no harm.
"""

import logging
import time

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


def settle_interval(settle_seconds: float) -> float:
    """How often the settle timer looks for due activities: a quarter of the window, 0.5-5 s."""
    return min(5.0, max(0.5, settle_seconds / 4))


def add_deal_assembly(app: faust.App, settings: Settings, metrics: Metrics) -> TableT:
    """The assembly table, its settle table, the agent and the settle timer; returns the table."""
    topics = Topics.from_settings(settings)
    changes = Counter(
        "salespulse_crm_changes_total",
        "CRM changes read from the changes topic, by object kind and result: merged, duplicate "
        "(a redelivery), held (its object is not complete yet, or a complete activity waits for its "
        "deal link), released (the settle timer emitted a waiting activity), malformed.",
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
    # object key → {"due_ms", "source", "kind", "object_id"} of activities waiting for their link.
    settle = app.Table(
        "crm-assembly-settle",
        default=None,
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
    )
    settle_ms = int(settings.crm_activity_settle_seconds * 1000)
    release_sent: dict[bytes, float] = {}  # key → when this process last sent its release

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
            if merged.awaiting:
                if settle.get(key) is None:
                    due = int(time.time() * 1000) + settle_ms
                    settle[key] = orjson.dumps(
                        {
                            "due_ms": due,
                            "source": change.source,
                            "kind": change.kind,
                            "object_id": change.object_id,
                        }
                    )
            elif change.kind != "deal" and merged.events and settle.get(key) is not None:
                # Emitted (or re-sent, so emitted before): nothing waits any more. A redelivery of a
                # waiting activity's change emits nothing and keeps its deadline.
                del settle[key]
                release_sent.pop(key, None)
            result = (
                "released"
                if merged.released
                else "duplicate"
                if merged.duplicate
                else "held"
                if merged.held
                else "merged"
            )
            changes.labels(change.kind, result).inc()

    async def release_due() -> None:
        now = time.time()
        for key, value in list(settle.items()):
            if value is None:
                continue
            waiting = orjson.loads(value)
            # Sent, not yet merged: wait a window before sending again (a lost send is retried).
            if waiting["due_ms"] > now * 1000 or now - release_sent.get(key, 0.0) < settle_ms / 1000:
                continue
            release = Change(
                waiting["source"],
                waiting["kind"],
                waiting["object_id"],
                "release",
                waiting["due_ms"],
                {},
                release=True,
            )
            await source.send(key=key, value=release.encode())
            release_sent[key] = now

    app.agent(source, name="crm-assembly")(assemble)
    app.timer(settle_interval(settings.crm_activity_settle_seconds), name="crm-assembly-settle")(release_due)
    return table
