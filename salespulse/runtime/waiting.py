"""Waiting for a condition: the one poll-until loop of salespulse (supervisor, benchmark, tests)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class StopWaiting(Exception):
    """Raised by a check that knows the condition can no longer come true (a process exited)."""


def wait_until(
    check: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    error: type[Exception] = TimeoutError,
) -> T:
    """Poll ``check`` until it returns a truthy value, and return that value.

    An exception from ``check`` counts as "not yet" (what is polled may still be starting) and
    is named in the failure; :class:`StopWaiting` ends the wait at once. After ``timeout``
    seconds, raises ``error`` with ``what`` in its message.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except StopWaiting:
            raise
        except Exception as failure:
            last_error = failure
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise error(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
