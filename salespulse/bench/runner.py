"""`salespulse bench`: throughput, freshness and memory, each beside a baseline measured in the same run.

Everything runs on one embedded broker started for the run:

- **ceiling**: a plain aiokafka consumer that reads the preloaded events, parses them and
  aggregates counts in a dict — what the machine allows;
- **faust**: a bare Faust agent loop over the same events (``bench.faust_baseline``);
- **pipeline**: a real ``salespulse worker`` from its first consumed event until the last one
  is visible, and exact, in the contract views;
- **freshness**: a steady live rate; the delay from publishing to visibility in ``kpi_daily``;
- **memory**: the worker's RSS with growing numbers of open deals, and after re-reading the
  same deals' events again (memory must follow deals, not events processed).

Figures are printed and written as JSON (``--output``) for tracking over time.
"""

import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from salespulse.bench.data import Expected, Message, generate, preload
from salespulse.config import Settings
from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.admin import ensure_topics
from salespulse.runtime.ports import free_port, wait_for_port
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess

ACTIVITY_SUFFIXES = ("visits", "calls", "deals", "feedback")


@dataclass(frozen=True)
class BenchOptions:
    events: int = 1_000_000
    reps: int = 200
    deals: int = 50_000
    faust_events: int = 200_000
    freshness_rate: float = 1_000.0
    freshness_seconds: float = 60.0
    memory_deals: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    seed: int = 1

    @classmethod
    def short(cls) -> "BenchOptions":
        """A few seconds of each measurement: for CI, to show the benchmark works and is exact."""
        return cls(
            events=30_000,
            reps=50,
            deals=3_000,
            faust_events=10_000,
            freshness_rate=200.0,
            freshness_seconds=5.0,
            memory_deals=(1_000, 5_000),
        )


class BenchFailed(RuntimeError):
    """A measurement could not complete or the views were not exact."""


# Quieter and quicker to join its group than a default worker: the embedded broker joins groups
# only after the rebalance timeout.
_WORKER_SETTINGS = {"SALESPULSE_BROKER_REBALANCE_TIMEOUT_SECONDS": "3", "SALESPULSE_LOG_LEVEL": "warning"}


def _start_worker(broker: str, prefix: str, data_dir: Path, **extra_env: str) -> WorkerProcess:
    """A worker for one measurement, started and listening on its web port."""
    worker = WorkerProcess(
        broker, data_dir, prefix, f"bench-{prefix.strip('.')}", {**_WORKER_SETTINGS, **extra_env}
    )
    worker.start()
    assert worker.process is not None
    wait_for_port("127.0.0.1", worker.web_port, 120, worker.process)
    return worker


def _consumed(worker: WorkerProcess) -> float:
    return worker.counter("salespulse_events_consumed_total")


class Bench:
    def __init__(self, options: BenchOptions, console: Console, workdir: Path) -> None:
        self.options = options
        self.console = console
        self.workdir = workdir
        self.broker = EmbeddedBroker(free_port(), log_path=workdir / "broker.log")
        self.results: dict[str, Any] = {}

    # --- helpers -----------------------------------------------------------------------------------
    def _topics(self, prefix: str) -> None:
        asyncio.run(ensure_topics(Settings(broker=self.broker.bootstrap, topic_prefix=prefix)))

    def _load(self, prefix: str, messages: Iterator[Message]) -> tuple[int, float]:
        self._topics(prefix)
        started = time.perf_counter()
        count = preload(self.broker.bootstrap, prefix, messages)
        return count, time.perf_counter() - started

    # --- measurements ----------------------------------------------------------------------------------
    def ceiling(self, prefix: str, events: int) -> float:
        """A plain aiokafka consumer: parse every event, count by type and rep."""

        async def consume() -> float:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.broker.bootstrap,
                group_id=None,
                max_partition_fetch_bytes=8 << 20,
                fetch_max_bytes=64 << 20,
            )
            await consumer.start()
            try:
                partitions = [
                    TopicPartition(f"{prefix}{suffix}", p)
                    for suffix in ACTIVITY_SUFFIXES
                    for p in consumer.partitions_for_topic(f"{prefix}{suffix}") or ()
                ]
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                counts: dict[tuple[str, str], int] = {}
                seen, first = 0, 0.0
                while seen < events:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
                    for part, messages in batch.items():
                        if not first:
                            first = time.perf_counter()
                        for message in messages:
                            event = orjson.loads(message.value)
                            key = (part.topic, event["rep_id"])
                            counts[key] = counts.get(key, 0) + 1
                        seen += len(messages)
                return events / (time.perf_counter() - first)
            finally:
                await consumer.stop()

        return asyncio.run(consume())

    def faust_baseline(self, prefix: str, events: int) -> float:
        result, log_path = self.workdir / "faust.json", self.workdir / "faust.log"
        with log_path.open("wb") as log:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "salespulse.bench.faust_baseline",
                    self.broker.bootstrap,
                    prefix,
                    str(events),
                    str(result),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=900,
            )
        if not result.exists():
            tail = log_path.read_text(errors="replace")[-500:]
            raise BenchFailed(f"the Faust baseline did not finish: {tail}")
        return float(orjson.loads(result.read_bytes())["events_per_second"])

    def pipeline(self, prefix: str, expected: Expected) -> dict[str, float]:
        worker = _start_worker(self.broker.bootstrap, prefix, self.workdir / "pipeline")
        try:
            wait_until(
                lambda: _consumed(worker) > 0,
                180,
                "the worker's first event",
                interval=0.01,
                error=BenchFailed,
            )
            first = time.perf_counter()
            wait_until(
                lambda: worker.query("SELECT count() FROM events")[0][0] >= expected.events,
                3600,
                "every event written",
                interval=0.1,
                error=BenchFailed,
            )
            self._check_views(worker, expected)
            elapsed = time.perf_counter() - first
            return {
                "seconds": elapsed,
                "events_per_second": expected.events / elapsed,
                "rss_mb": worker.rss_mb(),
            }
        finally:
            worker.stop()

    def _check_views(self, worker: WorkerProcess, expected: Expected) -> None:
        """The smoke check: company totals in kpi_daily and the deal count match what was generated."""
        ((visits, completed, calls, connected, csat, nps),) = worker.query(
            "SELECT sum(visits), sum(visits_completed), sum(calls), sum(calls_connected), sum(csat_count), "
            "sum(nps_count) FROM kpi_daily WHERE level = 'company'"
        )
        ((deals,),) = worker.query("SELECT count() FROM deals_current")
        got = (visits, completed, calls, connected, csat + nps, deals)
        want = (
            expected.by_type["visit"],
            expected.visits_completed,
            expected.by_type["call"],
            expected.calls_connected,
            expected.by_type["feedback"],
            len(expected.deals),
        )
        if got != want:
            raise BenchFailed(f"views not exact: got {got}, expected {want}")

    def freshness(self, prefix: str) -> dict[str, float]:
        """Publish at a steady rate; each event's delay until kpi_daily counts it."""
        self._topics(prefix)
        worker = _start_worker(self.broker.bootstrap, prefix, self.workdir / "freshness")
        try:
            wait_until(
                lambda: worker.query("SELECT 1")[0][0] == 1,
                120,
                "the query endpoint",
                interval=0.05,
                error=BenchFailed,
            )
            total = int(self.options.freshness_rate * self.options.freshness_seconds)
            published: list[float] = []
            thread = threading.Thread(
                target=self._publish_steadily, args=(prefix, total, published), daemon=True
            )
            thread.start()
            visible_at: list[float] = []
            deadline = time.monotonic() + self.options.freshness_seconds + 120
            while len(visible_at) < total and time.monotonic() < deadline:
                ((count,),) = worker.query(
                    "SELECT sum(visits) FROM kpi_daily WHERE level = 'rep' AND entity_id = 'bench-fresh'"
                )
                now = time.time()
                visible_at.extend([now] * (int(count or 0) - len(visible_at)))
                time.sleep(0.02)
            thread.join()
            if len(visible_at) < total:
                raise BenchFailed(f"only {len(visible_at)} of {total} fresh events became visible")
            delays = sorted(seen - sent for seen, sent in zip(visible_at, published, strict=True))
            quantiles = statistics.quantiles(delays, n=100, method="inclusive")
            return {
                "events": total,
                "rate": self.options.freshness_rate,
                "p50_ms": quantiles[49] * 1000,
                "p95_ms": quantiles[94] * 1000,
                "p99_ms": quantiles[98] * 1000,
            }
        finally:
            worker.stop()

    def _publish_steadily(self, prefix: str, total: int, published: list[float]) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.broker.bootstrap, "linger.ms": 1, "acks": "all"})
        start = time.time()
        for number in range(total):
            due = start + number / self.options.freshness_rate
            if (pause := due - time.time()) > 0:
                time.sleep(pause)
            body = {
                "event_id": f"fresh-{number}",
                "occurred_at": datetime.now(UTC).isoformat(),
                "rep_id": "bench-fresh",
                "customer_id": f"c-{number % 97}",
                "duration_minutes": 5,
                "outcome": "completed",
            }
            published.append(time.time())
            producer.produce(f"{prefix}visits", orjson.dumps(body), b"fresh")
            producer.poll(0)
        producer.flush(60)

    def memory(self, index: int, deals: int) -> dict[str, float]:
        """RSS with ``deals`` open deals, then after the same deals' events are read a second time."""
        prefix = f"m{index}."
        recent = datetime.now(UTC) - timedelta(hours=6)  # recent activity: nothing is stalled
        expected = Expected()
        count, _ = self._load(
            prefix,
            generate(
                deals * 3,
                reps=self.options.reps,
                open_deals=deals,
                seed=self.options.seed + index,
                start=recent,
                days=1,
                expected=expected,
                id_prefix="m",
            ),
        )
        worker = _start_worker(self.broker.bootstrap, prefix, self.workdir / f"memory-{deals}")
        try:
            wait_until(lambda: _consumed(worker) >= count, 3600, f"{count} events", error=BenchFailed)
            time.sleep(3)  # a stall round and a few flush cycles
            after_deals = worker.rss_mb()
            more, _ = self._load(
                prefix,
                generate(
                    deals * 3,
                    reps=self.options.reps,
                    open_deals=deals,
                    seed=self.options.seed + 100 + index,
                    start=recent,
                    days=1,
                    id_prefix="n",
                ),
            )
            wait_until(lambda: _consumed(worker) >= count + more, 3600, "the second pass", error=BenchFailed)
            time.sleep(3)
            return {
                "open_deals": len(expected.deals),
                "events": count,
                "rss_mb": after_deals,
                "events_after_second_pass": count + more,
                "rss_mb_after_second_pass": worker.rss_mb(),
            }
        finally:
            worker.stop()

    # --- the run --------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        options = self.options
        say = self.console.print
        self.broker.start()
        try:
            expected = Expected()
            count, seconds = self._load(
                "t.",
                generate(
                    options.events,
                    reps=options.reps,
                    open_deals=options.deals,
                    seed=options.seed,
                    expected=expected,
                ),
            )
            say(f"preloaded {count:,} events in {seconds:.1f}s")
            ceiling = self.ceiling("t.", count)
            say(f"ceiling (plain aiokafka consumer): {ceiling:,.0f} events/s")
            faust = self.faust_baseline("t.", min(options.faust_events, count))
            say(f"bare Faust agent loop: {faust:,.0f} events/s")
            pipeline = self.pipeline("t.", expected)
            say(
                f"pipeline (first consumed → exact in the views): {pipeline['events_per_second']:,.0f} events/s"
            )
            freshness = self.freshness("f.")
            say(
                f"freshness at {options.freshness_rate:g}/s: p50 {freshness['p50_ms']:.0f} ms, "
                f"p95 {freshness['p95_ms']:.0f} ms, p99 {freshness['p99_ms']:.0f} ms"
            )
            memory = []
            for index, deals in enumerate(options.memory_deals):
                memory.append(self.memory(index, deals))
                say(
                    f"memory with {memory[-1]['open_deals']:,} open deals: {memory[-1]['rss_mb']:.0f} MB RSS "
                    f"({memory[-1]['rss_mb_after_second_pass']:.0f} MB after reading them twice as many events)"
                )
        finally:
            self.broker.stop()
        self.results = {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "options": {key: getattr(options, key) for key in options.__dataclass_fields__},
            "events": count,
            "ceiling_events_per_second": ceiling,
            "faust_bare_events_per_second": faust,
            "pipeline": pipeline,
            "ratio_pipeline_to_ceiling": pipeline["events_per_second"] / ceiling,
            "ratio_pipeline_to_faust": pipeline["events_per_second"] / faust,
            "freshness": freshness,
            "memory": memory,
        }
        return self.results

    def table(self) -> Table:
        r = self.results
        table = Table("measurement", "figure", "baseline", "ratio", title="salespulse bench")
        pipe = r["pipeline"]["events_per_second"]
        table.add_row(
            "ceiling: plain aiokafka consumer", f"{r['ceiling_events_per_second']:,.0f} ev/s", "", ""
        )
        table.add_row("bare Faust agent loop", f"{r['faust_bare_events_per_second']:,.0f} ev/s", "", "")
        table.add_row(
            "pipeline vs ceiling",
            f"{pipe:,.0f} ev/s",
            f"{r['ceiling_events_per_second']:,.0f} ev/s",
            f"{r['ratio_pipeline_to_ceiling']:.2f}×",
        )
        table.add_row(
            "pipeline vs bare Faust",
            f"{pipe:,.0f} ev/s",
            f"{r['faust_bare_events_per_second']:,.0f} ev/s",
            f"{r['ratio_pipeline_to_faust']:.1f}×",
        )
        fresh = r["freshness"]
        table.add_row(
            f"freshness at {fresh['rate']:g}/s (p50 / p95 / p99)",
            f"{fresh['p50_ms']:.0f} / {fresh['p95_ms']:.0f} / {fresh['p99_ms']:.0f} ms",
            "",
            "",
        )
        for entry in r["memory"]:
            table.add_row(
                f"worker RSS, {entry['open_deals']:,} open deals",
                f"{entry['rss_mb']:.0f} MB",
                f"{entry['rss_mb_after_second_pass']:.0f} MB after 2× events",
                "",
            )
        return table


def run_bench(
    options: BenchOptions, output: Path | None, console: Console, keep: bool = False
) -> dict[str, Any]:
    """Run every measurement; write JSON to ``output``; raise BenchFailed when one fails."""
    workdir = Path(tempfile.mkdtemp(prefix="salespulse-bench-"))
    try:
        bench = Bench(options, console, workdir)
        results = bench.run()
        console.print(bench.table())
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
            console.print(f"results written to {output}")
        return results
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
