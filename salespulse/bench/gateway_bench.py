"""`salespulse bench --gateway`: events/s through the ingestion gateway, beside direct publishing.

In one run, on one embedded broker, the same events are published twice:

- **direct**: salespulse's own producer (``TopicPublisher``: kafka-python, acks=all), the way
  ``salespulse publish`` sends them — the baseline;
- **aiokafka**: a bare aiokafka producer (the gateway's own client library), acks=all — the
  stricter baseline, since kafka-python is the slower client here;
- **gateway**: a real ``salespulse gateway`` process, fed by 10 concurrent HTTP clients
  (aiohttp) posting JSON arrays of 500 events, each request answered only once the broker has
  acknowledged all of them.

Then the request latency at a steady 1,000 events/s (batches of 100, ten requests a second),
as p50/p99. Both publishing runs are checked: every event is on its topic exactly as often as
it was sent. Goals (issue 13): gateway ≥ 0.5× direct, p99 ≤ 250 ms at 1,000 events/s.
"""

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from salespulse.bench.data import generate
from salespulse.config import Settings
from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.admin import ensure_topics
from salespulse.kafka.consumers import read_topics
from salespulse.kafka.producer import TopicPublisher
from salespulse.runtime.gateway_process import GatewayProcess
from salespulse.runtime.ports import free_port

TYPE_OF_SUFFIX = {"visits": "visit", "calls": "call", "deals": "deal", "feedback": "feedback"}
SUFFIX_OF_TYPE = {kind: suffix for suffix, kind in TYPE_OF_SUFFIX.items()}
TOKEN_NAME, TOKEN = "bench", "bench-token-0123456789abcdef"


@dataclass(frozen=True)
class GatewayBenchOptions:
    events: int = 200_000
    clients: int = 10
    batch: int = 500
    latency_rate: float = 1_000.0
    latency_batch: int = 100
    latency_seconds: float = 20.0

    @classmethod
    def short(cls) -> "GatewayBenchOptions":
        return cls(events=20_000, latency_seconds=5.0)


class GatewayBenchFailed(RuntimeError):
    pass


def _events(count: int) -> list[tuple[str, bytes, bytes]]:
    """(type, key, value) with event_type in each value, as the gateway requires."""
    out = []
    for message in generate(count, reps=200, open_deals=min(count // 4, 50_000), id_prefix="g"):
        kind = TYPE_OF_SUFFIX[message.topic_suffix]
        value = b'{"event_type":"' + kind.encode() + b'",' + message.value[1:]
        out.append((kind, message.key, value))
    return out


def _direct(bootstrap: str, prefix: str, events: list[tuple[str, bytes, bytes]]) -> float:
    settings = Settings(broker=bootstrap, topic_prefix=prefix)
    with TopicPublisher(settings) as publisher:
        started = time.perf_counter()
        for kind, key, value in events:
            publisher.send(kind, value, key.decode())
        publisher.flush()
        return time.perf_counter() - started


async def _direct_aiokafka(bootstrap: str, prefix: str, events: list[tuple[str, bytes, bytes]]) -> float:
    """The same events with aiokafka (the gateway's own client library), acks=all, every ack awaited."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        started = time.perf_counter()
        deliveries = [
            await producer.send(prefix + SUFFIX_OF_TYPE[kind], value, key=key) for kind, key, value in events
        ]
        await asyncio.gather(*deliveries)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, expected: int) -> float:
    started = time.perf_counter()
    async with session.post(
        url, data=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    ) as response:
        answer = await response.json()
        if response.status != 200 or answer.get("accepted") != expected:
            raise GatewayBenchFailed(f"the gateway answered {response.status}: {str(answer)[:300]}")
    return time.perf_counter() - started


def _bodies(events: list[tuple[str, bytes, bytes]], size: int) -> list[tuple[bytes, int]]:
    return [
        (b"[" + b",".join(value for _, _, value in events[i : i + size]) + b"]", len(events[i : i + size]))
        for i in range(0, len(events), size)
    ]


async def _through_gateway(
    url: str, bodies: list[tuple[bytes, int]], clients: int
) -> tuple[float, list[float]]:
    queue = list(reversed(bodies))
    latencies: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            body, count = queue.pop()
            latencies.append(await _post(session, url, body, count))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return time.perf_counter() - started, latencies


async def _paced(url: str, bodies: list[tuple[bytes, int]], per_second: float) -> list[float]:
    """One request every 1/per_second seconds, each on its own task (an open-loop load)."""
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        tasks = []
        for index, (body, count) in enumerate(bodies):
            delay = started + index / per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, url, body, count)))
        return list(await asyncio.gather(*tasks))


def _count_on_topics(bootstrap: str, prefix: str) -> int:
    topics = [prefix + suffix for suffix in TYPE_OF_SUFFIX]
    return sum(len(records) for records in asyncio.run(read_topics(bootstrap, topics)).values())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_gateway_bench(options: GatewayBenchOptions, console: Console) -> dict[str, Any]:
    """Measure, print a table, return the figures; raise GatewayBenchFailed if a run is not exact."""
    workdir = Path(tempfile.mkdtemp(prefix="salespulse-gateway-bench-"))
    events = _events(options.events)
    with EmbeddedBroker(free_port(), log_path=workdir / "broker.log") as broker:
        asyncio.run(ensure_topics(Settings(broker=broker.bootstrap, topic_prefix="gw.")))
        gateway = GatewayProcess(broker.bootstrap, "gw.", {TOKEN_NAME: TOKEN}, workdir / "gateway.log")
        gateway.start()
        try:
            gateway.wait_ready()
            console.print(f"publishing {len(events):,} events directly with the producer...")
            direct_seconds = _direct(broker.bootstrap, "direct.", events)
            asyncio.run(ensure_topics(Settings(broker=broker.bootstrap, topic_prefix="aio.")))
            aio_seconds = asyncio.run(_direct_aiokafka(broker.bootstrap, "aio.", events))
            console.print(
                f"publishing them through the gateway ({options.clients} clients, batches of {options.batch})..."
            )
            bodies = _bodies(events, options.batch)
            gateway_seconds, batch_latencies = asyncio.run(
                _through_gateway(f"{gateway.url}/v1/events", bodies, options.clients)
            )
            steady = int(options.latency_rate * options.latency_seconds)
            console.print(
                f"request latency at {options.latency_rate:,.0f} events/s for {options.latency_seconds:g}s..."
            )
            paced = _bodies(events[:steady], options.latency_batch)
            latencies = asyncio.run(
                _paced(f"{gateway.url}/v1/events", paced, options.latency_rate / options.latency_batch)
            )
        finally:
            gateway.stop(10)
        direct_count = _count_on_topics(broker.bootstrap, "direct.")
        gateway_count = _count_on_topics(broker.bootstrap, "gw.")
        aio_count = _count_on_topics(broker.bootstrap, "aio.")
    if aio_count != len(events) or direct_count != len(events) or gateway_count != len(events) + steady:
        raise GatewayBenchFailed(
            f"messages on the topics: direct {direct_count}, aiokafka {aio_count} (sent {len(events)}), "
            f"gateway {gateway_count} (sent {len(events) + steady})"
        )
    direct_rate, gateway_rate = len(events) / direct_seconds, len(events) / gateway_seconds
    aio_rate = len(events) / aio_seconds
    results = {
        "events": len(events),
        "direct_events_per_second": round(direct_rate),
        "gateway_events_per_second": round(gateway_rate),
        "ratio": round(gateway_rate / direct_rate, 3),
        "aiokafka_events_per_second": round(aio_rate),
        "ratio_to_aiokafka": round(gateway_rate / aio_rate, 3),
        "batch_latency_p50_ms": round(statistics.median(batch_latencies) * 1000, 1),
        "batch_latency_p99_ms": round(_percentile(batch_latencies, 0.99) * 1000, 1),
        "steady_rate": options.latency_rate,
        "steady_batch": options.latency_batch,
        "steady_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "steady_latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
    }
    table = Table(title="ingestion gateway vs direct publishing (same run, same broker)")
    table.add_column("measurement")
    table.add_column("figure", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("direct producer (baseline)", f"{direct_rate:,.0f} events/s", "")
    table.add_row(
        f"gateway, {options.clients} clients × {options.batch}/request", f"{gateway_rate:,.0f} events/s", ""
    )
    table.add_row("gateway / direct", f"{results['ratio']:.2f}×", "≥ 0.5×")
    table.add_row("bare aiokafka producer, acks=all (the gateway's client)", f"{aio_rate:,.0f} events/s", "")
    table.add_row("gateway / bare aiokafka", f"{results['ratio_to_aiokafka']:.2f}×", "")
    table.add_row(
        f"request p50 / p99, batches of {options.batch}",
        f"{results['batch_latency_p50_ms']} / {results['batch_latency_p99_ms']} ms",
        "",
    )
    table.add_row(
        f"request p50 / p99 at {options.latency_rate:,.0f} events/s ({options.latency_batch}/request)",
        f"{results['steady_latency_p50_ms']} / {results['steady_latency_p99_ms']} ms",
        "p99 ≤ 250 ms",
    )
    console.print(table)
    return results
