"""One real worker for the manager page's tests, fed the managers' scenario on the event clock.

The worker (real embedded broker, real chDB, ``--clock event``) reads the pipeline scenario with
targets, customers and follow-ups (tests/management_scenario.py); the page (`salespulse ui`)
reads the worker's read-only query endpoint over HTTP, as in `salespulse up`.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.kafka.producer import message_key
from salespulse.runtime.waiting import wait_until
from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.management_scenario import build_management_scenario
from tests.support.pipeline import publish_events, publish_org, scenario_env, wait_consumed
from tests.support.processes import Publisher, spawn_worker
from tests.support.web import UiProcess

from .expectations import PageModel

SCENARIO = build_management_scenario()


@dataclass
class ScenarioWorker:
    """The worker, what it was sent, and the models of what the page must show for it."""

    worker: WorkerProcess
    publisher: Publisher
    events: list[dict[str, Any]] = field(default_factory=list)
    consumed: int = 0
    _model: PageModel | None = None

    @property
    def model(self) -> PageModel:
        if self._model is None:
            self._model = PageModel(SCENARIO, self.events)
        return self._model

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.worker.sql_port}"

    def publish(self, events: list[dict[str, Any]]) -> None:
        """More events (the live test): the models follow."""
        self.consumed += publish_events(self.publisher, events)
        self.events = [*self.events, *events]
        self._model = None
        wait_consumed(self.worker, self.consumed)


@pytest.fixture(scope="package")
def fed_worker(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioWorker]:
    data_dir = tmp_path_factory.mktemp("web-worker")
    worker = spawn_worker(
        broker=broker.bootstrap,
        data_dir=data_dir,
        topic_prefix="web.",
        app_id="test-web",
        extra_env={
            **scenario_env(SCENARIO.base),
            "SALESPULSE_CLOCK": "event",
            "SALESPULSE_STALL_CHECK_INTERVAL_SECONDS": "0.5",
            "SALESPULSE_FOLLOWUP_CHECK_INTERVAL_SECONDS": "0.5",
        },
    )
    worker.start()
    publisher = Publisher(broker.bootstrap, worker.topic_prefix)
    try:
        worker.wait_ready()
        total = publish_org(publisher, SCENARIO.org)
        total += publisher.send_all(("customers", c, message_key("customers", c)) for c in SCENARIO.customers)
        targets = SCENARIO.targets + SCENARIO.quarter_targets
        total += publisher.send_all(("targets", t, message_key("targets", t)) for t in targets)
        fed = ScenarioWorker(worker, publisher, list(SCENARIO.events), total)
        fed.consumed += publish_events(publisher, SCENARIO.events)
        wait_consumed(worker, fed.consumed)
        # The stall monitor works in rounds: wait until it has caught up with the last event.
        want = len(fed.model.stalled())
        wait_until(
            lambda: worker.query("SELECT count() FROM stalled_deals")[0][0] == want,
            120,
            f"{want} stalled deals",
        )
        yield fed
    finally:
        publisher.close()
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()


@pytest.fixture(scope="package")
def make_ui(
    fed_worker: ScenarioWorker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., UiProcess]]:
    """Factory: a `salespulse ui` process reading the worker, with extra settings."""
    started: list[UiProcess] = []
    logs = tmp_path_factory.mktemp("web-ui")

    def make(clickhouse_url: str | None = None, **extra_env: str) -> UiProcess:
        ui = UiProcess(
            clickhouse_url or fed_worker.query_url,
            logs / f"ui-{len(started) + 1}.log",
            extra_env={"SALESPULSE_REPORTING_TIMEZONE": SCENARIO.base.timezone, **extra_env},
        )
        started.append(ui)
        return ui.start()

    yield make
    for ui in started:
        ui.stop()


@pytest.fixture(scope="package")
def page(make_ui: Callable[..., UiProcess]) -> UiProcess:
    """The page as `up` runs it: no access control, no prefix."""
    return make_ui()
