"""`salespulse up`: the embedded mode of contract §2, supervised.

The supervisor starts three kinds of processes and watches them:

- the embedded broker (Tansu, memory storage unless ``broker_storage`` says otherwise), its own
  process so a worker crash leaves the broker and its messages alone; restarted if it dies (the
  worker reconnects by itself);
- the worker (``salespulse worker``) with the embedded ClickHouse under the data directory,
  restarted with back-off whenever it dies;
- the manager page (``salespulse ui``, on ``ui_port``; 0 leaves it out), which reads the
  worker's query endpoint over HTTP and is restarted if it exits;
- the ingestion gateway (``salespulse gateway``, on ``ingest_port``; 0 leaves it out), with
  the tokens of SALESPULSE_INGEST_TOKENS, or else a token made for this data directory and
  kept in ``<data dir>/ingest-tokens`` (readable by its owner only), restarted if it exits;
- optionally the simulator.

Ctrl-C or SIGTERM stops them in the safe order: first what brings input (the simulator, and any
other input child) and the page; then it waits, bounded by ``stop_drain_timeout_seconds`` and
reporting as it goes, until the worker has written everything the broker holds (``drain``); then
the worker (which writes what it has accepted before it exits); the broker last.
"""

import asyncio
import secrets
import signal
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console

from salespulse.config import Settings
from salespulse.embedded.broker import EmbeddedBroker
from salespulse.embedded.drain import DrainResult, wait_until_written
from salespulse.kafka.admin import ensure_topics
from salespulse.runtime.children import ChildProcess, settings_environment
from salespulse.runtime.ports import PortTaken, require_free_port
from salespulse.runtime.waiting import StopWaiting, wait_until

WORKER_START_TIMEOUT = 120.0
WORKER_STOP_TIMEOUT = 60.0
RESTART_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class EmbeddedOptions:
    simulate: bool = False
    rate: float = 20.0
    seed: int = 42
    dashboard: bool = False


class _Stop(Exception):
    """Raised in the main thread by SIGTERM, like KeyboardInterrupt is by SIGINT."""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def run_up(settings: Settings, options: EmbeddedOptions, console: Console | None = None) -> int:
    """Run the embedded mode until interrupted; returns the process exit code."""
    console = console or Console(soft_wrap=True)
    host = "127.0.0.1"
    broker_port = int(settings.broker.rsplit(":", 1)[1])
    try:
        require_free_port(host, broker_port, "embedded broker", "--broker-port")
        require_free_port(settings.web_host, settings.web_port, "metrics and health endpoint", "--web-port")
        if settings.sql_port:
            require_free_port(settings.sql_host, settings.sql_port, "ClickHouse query endpoint", "--sql-port")
        if settings.ui_port:
            require_free_port(settings.ui_host, settings.ui_port, "manager page", "--ui-port")
        if settings.ingest_port:
            require_free_port(
                settings.ingest_host, settings.ingest_port, "ingestion gateway", "--ingest-port"
            )
    except PortTaken as taken:
        console.print(f"[bold red]error:[/] {taken}", highlight=False, soft_wrap=True)
        return 2

    if settings.ui_port and not settings.sql_port and not settings.ui_clickhouse_url:
        console.print(
            "[bold red]error:[/] the manager page reads the query endpoint: give --sql-port, or --ui-port 0",
            highlight=False,
            soft_wrap=True,
        )
        return 2

    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if settings.ingest_port and not (settings.ingest_tokens or settings.ingest_tokens_file):
        settings = settings.model_copy(update={"ingest_tokens_file": local_token_file(data_dir)})
    env = settings_environment(settings.model_copy(update={"data_dir": data_dir}))
    broker = EmbeddedBroker(broker_port, host, logs / "broker.log", storage=settings.broker_storage)
    worker = ChildProcess("worker", ["worker"], env, logs / "worker.log")
    simulator = ChildProcess(
        "simulator",
        ["simulate", "--rate", str(options.rate), "--seed", str(options.seed), "--quiet"],
        env,
        logs / "simulator.log",
    )
    page = ChildProcess("ui", ["ui"], env, logs / "ui.log")
    gateway = ChildProcess("gateway", ["gateway"], env, logs / "gateway.log")
    # Children that bring input into the broker: stopped first on a clean stop, so that the
    # worker can catch up with a broker that no longer grows.
    inputs = [gateway, simulator]
    health_url = f"http://{settings.web_host}:{settings.web_port}/health"

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with console.status("starting the embedded broker..."):
            broker.start()
            asyncio.run(ensure_topics(settings))
        with console.status("starting the worker and the embedded ClickHouse..."):
            worker.start()
            _wait_healthy(worker, health_url)
        if settings.ui_port:
            page.start()
        if settings.ingest_port:
            gateway.start()
        _print_where(console, settings, data_dir, logs, options)
        if options.simulate:
            simulator.start()
        _supervise(console, settings, options, broker, worker, simulator, [page, gateway], health_url)
    except (KeyboardInterrupt, _Stop):
        console.print("stopping: input first, then the worker once it has written what the broker holds...")
    except WorkerFailed as failure:
        console.print(f"[bold red]error:[/] {failure}", highlight=False)
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the drain or the flush short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in inputs:
            child.stop(10)
        page.stop(10)
        if broker.alive() and worker.running():
            _drain(console, settings, broker, worker)
        worker.stop(WORKER_STOP_TIMEOUT)
        broker.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    console.print("stopped.")
    return 0


def local_token_file(data_dir: Path) -> Path:
    """``<data dir>/ingest-tokens``: one token named ``local``, made once, readable by its owner only."""
    path = data_dir / "ingest-tokens"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(
            "# Tokens of the ingestion gateway of `salespulse up` (name=token per line).\n"
            f"local={secrets.token_urlsafe(24)}\n",
            encoding="utf-8",
        )
    return path


def _drain(console: Console, settings: Settings, broker: EmbeddedBroker, worker: ChildProcess) -> DrainResult:
    """Wait until the worker has written every message the broker holds; say how it went."""
    limit = settings.stop_drain_timeout_seconds
    with console.status("stopping: waiting for the worker to write what the broker holds...") as status:

        def report(left: int, waited: float) -> None:
            shown = f"{left:,} messages left" if left >= 0 else "reading the broker"
            status.update(
                f"stopping: the worker is writing what the broker holds: {shown} ({waited:.0f}s of at most {limit:.0f}s)"
            )

        result = wait_until_written(settings, worker.running, report)
    if result.drained:
        console.print(f"the worker wrote everything the broker held ({result.seconds:.1f}s)")
    elif broker.in_memory:
        left = f"{result.left:,} messages" if result.left >= 0 else "an unknown number of messages"
        why = (
            f"within {limit:.0f}s (SALESPULSE_STOP_DRAIN_TIMEOUT_SECONDS)"
            if worker.running()
            else "(the worker exited)"
        )
        console.print(
            f"[bold red]warning:[/] the worker did not catch up {why}: {left} held by the broker "
            "were not written and are lost with it. Raise the timeout, or give the broker durable "
            "storage (SALESPULSE_BROKER_STORAGE).",
            highlight=False,
        )
    else:
        console.print(
            f"[yellow]the worker did not catch up within {limit:.0f}s; {result.left:,} messages stay in the "
            "broker's storage and are written after the next start[/]",
            highlight=False,
        )
    return result


class WorkerFailed(RuntimeError):
    pass


def _wait_healthy(worker: ChildProcess, health_url: str) -> None:
    def healthy() -> bool:
        if worker.exit_code() is not None:
            raise StopWaiting(
                f"the worker exited with code {worker.exit_code()} while starting; see {worker.log_path}"
            )
        return _healthy(health_url)

    try:
        wait_until(
            healthy, WORKER_START_TIMEOUT, "the worker to become healthy", interval=0.25, error=WorkerFailed
        )
    except StopWaiting as exited:
        raise WorkerFailed(str(exited)) from None
    except WorkerFailed:
        raise WorkerFailed(
            f"the worker did not become healthy within {WORKER_START_TIMEOUT:.0f}s; see {worker.log_path}"
        ) from None


def _print_where(
    console: Console, settings: Settings, data_dir: Path, logs: Path, options: EmbeddedOptions
) -> None:
    sql = f"http://{settings.sql_host}:{settings.sql_port}"
    web = f"http://{settings.web_host}:{settings.web_port}"
    console.print("[bold green]salespulse is up[/]")
    console.print(
        f"  broker (Kafka protocol)                  {settings.broker}   topics {settings.topic_prefix}*   "
        f"storage {'memory' if settings.broker_storage.startswith('memory:') else 'durable'}"
    )
    console.print(
        f"  ClickHouse (read-only HTTP endpoint)     {sql}   database {settings.clickhouse_database}"
    )
    if settings.ui_port:
        console.print(f"  manager page                              {settings.ui_url}")
    if settings.ingest_port:
        where = (
            f"token in {settings.ingest_tokens_file}"
            if settings.ingest_tokens_file and not settings.ingest_tokens
            else "tokens of SALESPULSE_INGEST_TOKENS"
        )
        console.print(
            f"  ingestion gateway (HTTP)                  {settings.ingest_url}/v1/events   {where}"
        )
    console.print(f"  metrics / health                          {web}/metrics   {web}/health")
    console.print(f"  data                                      {data_dir}")
    console.print(f"  logs                                      {logs}")
    if options.simulate:
        console.print(
            f"  simulator                                 {options.rate:g} events/s, seed {options.seed}"
        )
    console.print(
        "  query:  salespulse sql \"SELECT * FROM kpi_daily WHERE level = 'region' ORDER BY day DESC LIMIT 10\""
    )
    console.print(f"          curl '{sql}/?query=SELECT+*+FROM+deals_current+LIMIT+5+FORMAT+PrettyCompact'")
    console.print("  stop:   Ctrl-C")


def _supervise(
    console: Console,
    settings: Settings,
    options: EmbeddedOptions,
    broker: EmbeddedBroker,
    worker: ChildProcess,
    simulator: ChildProcess,
    services: list[ChildProcess],
    health_url: str,
) -> None:
    """Watch the children until interrupted; restart the worker, a service (page, gateway) or the simulator when it dies."""
    from salespulse.embedded.dashboard import Dashboard

    dashboard = Dashboard(settings, console) if options.dashboard else None
    backoff = 1.0
    next_restart: float | None = None
    with dashboard.live() if dashboard else _nothing():
        while True:
            if not broker.alive():
                _restart_broker(console, settings, broker)
            code = worker.exit_code()
            if code is not None and next_restart is None:
                console.print(f"[yellow]the worker exited with code {code}; restarting in {backoff:.0f}s[/]")
                next_restart = time.monotonic() + backoff
                backoff = min(RESTART_BACKOFF_MAX, backoff * 2)
            if next_restart is not None and time.monotonic() >= next_restart:
                worker.stop(1)
                worker.start()
                next_restart = None
            elif code is None and worker.starts > 1 and _healthy(health_url):
                backoff = 1.0
            if options.simulate and simulator.exit_code() not in (None, 0):
                console.print(
                    f"[yellow]the simulator exited with code {simulator.exit_code()}; see {simulator.log_path}[/]"
                )
                simulator.stop(1)
                simulator.start()
            for service in services:
                if service.starts and service.exit_code() is not None:
                    console.print(
                        f"[yellow]the {service.name} exited with code {service.exit_code()}; "
                        f"see {service.log_path}[/]"
                    )
                    service.stop(1)
                    service.start()
            if dashboard is not None:
                dashboard.refresh()
            time.sleep(1.0)


def _restart_broker(console: Console, settings: Settings, broker: EmbeddedBroker) -> None:
    """Start a broker that died again, on the same port: the worker reconnects and resumes."""
    lost = (
        "it kept messages in memory, so those the worker had not yet written are lost"
        if broker.in_memory
        else "its storage keeps the messages"
    )
    console.print(
        f"[bold red]the embedded broker exited with code {broker.exit_code()}; {lost}. Restarting it; "
        f"see {broker.log_path}[/]",
        highlight=False,
    )
    broker.stop()
    broker.start()
    asyncio.run(ensure_topics(settings))
    console.print("[green]the embedded broker is back[/]")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
