"""Child processes: a salespulse command run as a process of its own, its output in a log file.

The one runner of salespulse's child processes: the `up` supervisor's broker-side children
(worker, simulator), the benchmark's workers and the tests' workers all start, stop, kill and
read them the same way.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Self

from salespulse.config import ENV_PREFIX, Settings
from salespulse.runtime.waiting import StopWaiting


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, dict):
            value = ",".join(f"{key}={item}" for key, item in value.items())
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def environment_without_settings() -> dict[str, str]:
    """This process's environment minus every SALESPULSE_* variable: a child starts from defaults."""
    return {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}


class ChildProcess:
    """``python -m salespulse ARGS`` as a child process, its output appended to ``log_path``."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_path: Path, *, own_session: bool = True
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        # Its own session: Ctrl-C in a terminal reaches the parent only, which stops children in order.
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salespulse", *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_session,
        )
        self.starts += 1
        return self

    def exit_code(self) -> int | None:
        """None while it runs (or before it started), else its exit code."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def require_running(self) -> None:
        """Inside a wait: stop waiting at once if the process has exited."""
        code = self.exit_code()
        if code is not None:
            raise StopWaiting(f"{self.name} exited with code {code}; log:\n{self.log_tail()}")

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds: a clean stop if it keeps to the time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.exit_code()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._close_log()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
