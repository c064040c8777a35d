"""Fault injection for the reliability suite: crash or fail the worker at chosen points.

Off unless ``SALESPULSE_FAULTS`` is set, e.g.::

    SALESPULSE_FAULTS="seed=7,kill_during_write=0.1,kill_after_write=0.1,kill_during_commit=0.1"
    SALESPULSE_FAULTS="fail_writes_while=/tmp/clickhouse-down"

- ``kill_<point>=P``: at that point of a flush, with probability P, the worker SIGKILLs itself —
  a real crash, with no chance to clean up. ``during_write`` and ``during_commit`` kill from a
  timer thread a few milliseconds into the operation, so the operation is cut in flight.
  Points: ``before_write``, ``during_write``, ``after_write`` (written, offsets not committed),
  ``during_commit``, ``after_commit``.
- ``fail_writes_while=PATH``: every ClickHouse write fails while PATH exists (an outage of
  the embedded engine, which cannot otherwise be taken away from a running worker).

Each injected fault is logged (``fault: ...``) and flushed before it happens, so a test can
tell where each crash landed.
"""

import contextlib
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

KILL_POINTS = ("before_write", "during_write", "after_write", "during_commit", "after_commit")


class InjectedWriteFailure(ConnectionError):
    """A ClickHouse write failed on purpose (fault injection)."""


class Faults:
    """The faults configured for this process (none by default)."""

    def __init__(self, spec: str | None) -> None:
        self.kill_probability: dict[str, float] = {}
        self.fail_writes_while: Path | None = None
        seed: int | None = None
        for item in (spec or "").split(","):
            if not item.strip():
                continue
            key, _, value = item.strip().partition("=")
            if key == "seed":
                seed = int(value)
            elif key == "fail_writes_while":
                self.fail_writes_while = Path(value)
            elif key.startswith("kill_") and key.removeprefix("kill_") in KILL_POINTS:
                self.kill_probability[key.removeprefix("kill_")] = float(value)
            else:
                raise ValueError(
                    f"unknown fault '{item}' in SALESPULSE_FAULTS; known: seed, fail_writes_while, "
                    + ", ".join(f"kill_{point}" for point in KILL_POINTS)
                )
        # A different stream per process, reproducible from the seed and the pid.
        self._random = random.Random(None if seed is None else seed * 1_000_003 + os.getpid())

    @property
    def active(self) -> bool:
        return bool(self.kill_probability) or self.fail_writes_while is not None

    def point(self, name: str) -> None:
        """Maybe crash right here."""
        if self._roll(name):
            _kill(name)

    @contextlib.contextmanager
    def around(self, name: str, within_seconds: float = 0.02) -> Iterator[None]:
        """Maybe crash while the block runs: a timer thread kills up to ``within_seconds`` into it.

        Give a quick operation a short window, or most kills land just after it finished.
        """
        timer = None
        running = threading.Event()
        running.set()
        if self._roll(name):

            def kill() -> None:
                _kill(name if running.is_set() else f"{name} (just after it finished)")

            timer = threading.Timer(self._random.uniform(0.0, within_seconds), kill)
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            running.clear()
            if timer is not None:
                timer.join()  # the kill happens even if the operation was quicker

    def check_write(self) -> None:
        if self.fail_writes_while is not None and self.fail_writes_while.exists():
            raise InjectedWriteFailure(f"injected ClickHouse outage ({self.fail_writes_while} exists)")

    def _roll(self, name: str) -> bool:
        probability = self.kill_probability.get(name, 0.0)
        return probability > 0 and self._random.random() < probability


def _kill(point: str) -> None:
    log.warning("fault: SIGKILL %s", point)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
