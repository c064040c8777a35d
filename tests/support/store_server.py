"""A stand-in ClickHouse server for tests of the server code path: the query endpoint, writable.

    python -m tests.support.store_server PATH PORT

Serves chDB at PATH over ClickHouse's HTTP interface on 127.0.0.1:PORT until SIGTERM.
"""

import asyncio
import signal
import sys

from salespulse.embedded.query_server.service import QueryEndpoint


async def serve(path: str, port: int) -> None:
    endpoint = QueryEndpoint(path, "default", "127.0.0.1", port, readonly=False)
    await endpoint.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"serving {path} on {port}", flush=True)
    await stop.wait()
    await endpoint.stop()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
