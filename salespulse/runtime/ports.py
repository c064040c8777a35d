"""Ports on this machine: is one free, refuse a taken one with a clear message, wait for a listener."""

import socket
import subprocess
import time


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
