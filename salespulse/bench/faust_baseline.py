"""The benchmark's Faust baseline: a bare Faust agent loop over the activity topics.

    python -m salespulse.bench.faust_baseline BROKER TOPIC_PREFIX EVENTS RESULT_FILE

Counts events one by one, as a Faust agent per event would, and writes the rate between the
first and the EVENTS-th event to RESULT_FILE as JSON. This is what salespulse would reach if it
processed events with Faust's per-event machinery (contract §7, issue: throughput).
"""

import os
import sys
import time
import uuid

import faust
import orjson


def main(broker: str, prefix: str, events: int, result_file: str) -> None:
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",  # a fresh group: read from the beginning
        broker=f"kafka://{broker}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=3,
        stream_wait_empty=False,
    )
    topics = [f"{prefix}{suffix}" for suffix in ("visits", "calls", "deals", "feedback")]
    source = app.topic(*topics, value_serializer="raw", key_serializer="raw")
    state = {"count": 0, "first": 0.0}

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for value in stream:
            orjson.loads(value)  # parse, as the ceiling does
            if state["count"] == 0:
                state["first"] = time.perf_counter()
            state["count"] += 1
            if state["count"] >= events:
                elapsed = time.perf_counter() - state["first"]
                with open(result_file, "wb") as out:
                    out.write(
                        orjson.dumps(
                            {"events": events, "seconds": elapsed, "events_per_second": events / elapsed}
                        )
                    )
                os._exit(0)  # the measurement is done; no need for Faust's orderly shutdown

    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
