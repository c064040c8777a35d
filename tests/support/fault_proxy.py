"""A TCP proxy in front of a ClickHouse HTTP endpoint that can fail on demand.

Modes: ``pass`` (forward), ``refuse`` (nothing listens: connection refused), ``hang`` (accept,
never answer: client timeouts), ``error`` (answer every request with a ClickHouse error, HTTP 500).
"""

import asyncio
import threading
from typing import Literal

Mode = Literal["pass", "refuse", "hang", "error"]

_ERROR_BODY = b"Code: 242. DB::Exception: Table is in readonly mode (injected). (TABLE_IS_READ_ONLY)\n"
ERROR_RESPONSE = (
    b"HTTP/1.1 500 Internal Server Error\r\nX-ClickHouse-Exception-Code: 242\r\n"
    b"Content-Type: text/plain\r\nConnection: close\r\n"
    + f"Content-Length: {len(_ERROR_BODY)}\r\n\r\n".encode()
    + _ERROR_BODY
)


class FaultProxy:
    """Runs on its own event loop thread; switch modes with :meth:`set_mode`."""

    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.mode: Mode = "pass"
        self.outages: list[Mode] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._listen())

    def set_mode(self, mode: Mode) -> None:
        # The mode first, then the listener, then the open connections: a client that reconnects
        # while the outage begins must meet the outage, not a fresh pass-through connection.
        self.mode = mode
        if mode == "refuse":
            self._call(self._close())
        elif self._server is None:
            self._call(self._listen())
        if mode != "pass":
            self.outages.append(mode)
            # Kept-alive client connections must not outlive the outage.
            self._call(self._drop_connections())

    def close(self) -> None:
        self._call(self._drop_connections())
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine: "asyncio.Future[None] | object") -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.listen_port, reuse_address=True
        )

    async def _drop_connections(self) -> None:
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if self.mode == "refuse":  # accepted just before the listener closed
                return
            if self.mode == "hang":
                await reader.read(65536)
                await asyncio.sleep(3600)
            elif self.mode == "error":
                await reader.read(65536)
                writer.write(ERROR_RESPONSE)
                await writer.drain()
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
                try:
                    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
                finally:
                    upstream_writer.close()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
