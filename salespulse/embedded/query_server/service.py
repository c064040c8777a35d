"""The query endpoint as a service of the worker: binds when the worker starts, closes when it stops."""

import logging
from typing import Any

from aiohttp import web
from mode import Service

from salespulse.embedded.query_server.http import create_app, serve
from salespulse.embedded.query_server.limits import QueryLimits

log = logging.getLogger(__name__)


class QueryEndpoint(Service):
    """Serves ClickHouse's HTTP interface over the worker's embedded chDB store on host:port.

    Pass it to ``faust.Worker(app, *services)``: it binds when the worker starts and closes the
    listener, waits for running queries and releases its chDB handle when the worker stops.
    """

    def __init__(
        self,
        chdb_path: str,
        database: str,
        host: str,
        port: int,
        *,
        readonly: bool = True,
        max_body_bytes: int | None = None,
        limits: QueryLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chdb_path = chdb_path
        self.database = database
        self.host = host
        self.port = port
        self.readonly = readonly
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"http://{self.host}:{self.port}"

    async def on_start(self) -> None:
        app = create_app(
            self.chdb_path,
            self.database,
            readonly=self.readonly,
            max_body_bytes=self.max_body_bytes,
            limits=self.limits,
        )
        self._runner = await serve(app, self.host, self.port)
        mode = "read-only" if self.readonly else "writable"
        log.info("ClickHouse HTTP query endpoint (%s) on %s, database %s", mode, self.url, self.database)

    async def on_stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
