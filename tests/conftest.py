"""Fixtures shared by every test layer: the embedded broker and salespulse workers."""

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salespulse.embedded.broker import EmbeddedBroker
from salespulse.runtime.ports import free_port
from salespulse.runtime.worker_process import WorkerProcess
from tests.oracle.scenario import Scenario, build_scenario
from tests.support.pipeline import ScenarioRun, scenario_env
from tests.support.processes import Publisher, spawn_worker

_names = itertools.count(1)
_TESTS = Path(__file__).parent
# A test's kind is where it lives, so a marker can never say something else than the folder.
_MARKER_OF_FOLDER = {"integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(_TESTS).parts[0]
        marker = _MARKER_OF_FOLDER.get(folder)
        if marker is not None:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real embedded broker (Tansu) for the whole test session; tests use their own topics."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(free_port(), log_path=log) as running:
        yield running


@pytest.fixture
def make_worker(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: a worker with its own topics, consumer group and data directory."""
    started: list[WorkerProcess] = []

    def make(name: str | None = None, **extra_env: str) -> WorkerProcess:
        label = name or f"w{next(_names)}"
        worker = spawn_worker(
            broker=broker.bootstrap,
            data_dir=tmp_path / label,
            topic_prefix=f"{label}.",
            app_id=f"test-{label}",
            extra_env=extra_env,
        )
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    """The pipeline scenario (tests/oracle/scenario.py), built once per session."""
    return build_scenario()


@pytest.fixture
def scenario_run(
    make_worker: Callable[..., WorkerProcess], make_publisher: Callable[[str], Publisher], scenario: Scenario
) -> Callable[..., ScenarioRun]:
    """Factory: a worker with the scenario's settings (plus ``extra_env``) and a publisher on its topics.

    The worker is not started: call ``.start()`` (some tests adjust it first).
    """

    def make(name: str | None = None, **extra_env: str) -> ScenarioRun:
        worker = make_worker(name, **scenario_env(scenario), **extra_env)
        return ScenarioRun(worker, make_publisher(worker.topic_prefix), scenario)

    return make


@pytest.fixture
def make_publisher(broker: EmbeddedBroker) -> Iterator[Callable[[str], Publisher]]:
    publishers: list[Publisher] = []

    def make(topic_prefix: str) -> Publisher:
        publisher = Publisher(broker.bootstrap, topic_prefix)
        publishers.append(publisher)
        return publisher

    yield make
    for publisher in publishers:
        publisher.close()
