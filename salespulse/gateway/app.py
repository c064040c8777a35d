"""The gateway's HTTP API (SPEC §8), served by aiohttp: `salespulse gateway`.

- ``POST /v1/events``: a JSON array, or NDJSON (``Content-Type: application/x-ndjson``), of
  activity events, each with ``event_type``; ``POST /v1/records/{org|customers|targets}``: the
  same for reference records, keyed on their topic as SPEC §3 says.
- ``Authorization: Bearer <token>`` with a named token (``salespulse.gateway.auth``); 401 and
  nothing published without one.
- Each item is judged by the one decoder of salespulse (``salespulse.schemas.decoding``), with
  the DLQ's reasons and messages. Rejected items are listed in the answer and not published;
  the accepted ones are published, and the answer (200) waits for the broker's
  acknowledgement of every one of them. A broker that is down or slow gives 503 with
  ``Retry-After``: resending the whole request is safe, event_ids make redelivery harmless.
- ``GET /v1/health`` (200 when the broker answers, else 503), ``GET /metrics``,
  ``GET /v1/openapi.json`` (the API as OpenAPI 3.1; docs in the README).

The process is stateless: scale out by running more replicas behind a load balancer.
"""

import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import orjson
from aiohttp import web
from pydantic_core import from_json

from salespulse.config import Settings
from salespulse.gateway.auth import TokenBook
from salespulse.gateway.batches import BatchRefused, split_body, with_source
from salespulse.gateway.metrics import GatewayMetrics
from salespulse.gateway.publishing import BrokerUnavailable, GatewayProducer, Outgoing
from salespulse.gateway.sources import Source, load_sources
from salespulse.gateway.webhooks import (
    ADAPTERS,
    answer_body,
    credentials_problem,
    outgoing_of,
    signature_problem,
)
from salespulse.kafka.producer import REFERENCE_TYPES, message_key
from salespulse.kafka.topics import Topics
from salespulse.schemas.decoding import Decoder, Rejection

log = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).parent / "openapi.json"
RETRY_AFTER_SECONDS = 5
HEALTH_TIMEOUT_SECONDS = 3.0
# The path's plural names, as in SPEC §8, for the record types.
RECORD_PATHS = {"org": "org", "customers": "customers", "targets": "targets"}

GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": error, "message": message}, status, headers)


def _event_id_of(raw: bytes) -> str | None:
    """The event_id of a rejected item when it has a readable one (to help the caller find it)."""
    try:
        parsed = from_json(raw)
    except ValueError:
        return None
    value = parsed.get("event_id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


class _Refusal(Exception):
    """The request is refused as a whole with this answer (nothing published)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class Gateway:
    """Everything a request needs: settings, tokens, decoder, producer, metrics."""

    def __init__(self, settings: Settings, producer: GatewayProducer | None = None) -> None:
        self.settings = settings
        self.tokens = TokenBook(settings.ingest_token_names())
        self.decoder = Decoder(settings)
        self.topics = Topics.from_settings(settings)
        self.producer = producer or GatewayProducer(settings)
        self.metrics = GatewayMetrics()
        self.sources: dict[str, Source] = (
            load_sources(settings.ingest_sources_file) if settings.ingest_sources_file else {}
        )

    # --- the request's steps ------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> str:
        name = self.tokens.identify(request.headers.get("Authorization"))
        if name is None:
            self.metrics.refused.labels("unauthorized").inc()
            raise _Refusal(
                _error(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <token> with a token the gateway knows "
                    "(SALESPULSE_INGEST_TOKENS); nothing was published",
                    {"WWW-Authenticate": 'Bearer realm="salespulse-ingest"'},
                )
            )
        return name

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.ingest_max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            self._too_large(f"the body is {length} bytes")
        chunks: list[bytes] = []
        size = 0
        # Read in chunks, so a chunked body without Content-Length is never held beyond the limit.
        async for chunk in request.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > limit:
                self._too_large(f"the body is more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, what: str, error: str = "body_too_large", limit_name: str = "") -> NoReturn:
        self.metrics.refused.labels("too_large").inc()
        message = (
            what
            if limit_name
            else (
                f"{what}, above the limit of {self.settings.ingest_max_body_bytes} bytes per request "
                "(SALESPULSE_INGEST_MAX_BODY_BYTES); split it into smaller requests. Nothing was published."
            )
        )
        raise _Refusal(_error(413, error, message))

    async def _items(self, request: web.Request) -> list[bytes]:
        body = await self._read_body(request)
        try:
            return split_body(body, request.content_type, self.settings.ingest_max_events)
        except BatchRefused as refused:
            if refused.status == 413:
                self._too_large(refused.message, refused.error, "SALESPULSE_INGEST_MAX_EVENTS")
            self.metrics.refused.labels(refused.error).inc()
            raise _Refusal(_error(400, refused.error, refused.message)) from None

    async def _publish(
        self, source: str, outgoing: list[Outgoing], types: list[str], rejected: list[dict[str, Any]]
    ) -> web.Response:
        try:
            seconds = await self.producer.publish(outgoing)
        except BrokerUnavailable as unavailable:
            self.metrics.broker_errors.inc()
            log.warning("answering 503 to '%s': %s", source, unavailable)
            return _error(
                503,
                "broker_unavailable",
                f"{unavailable}; some events of this request may already be on Kafka: resend the whole "
                "request, which is always safe (event_ids make redelivery harmless)",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if outgoing:
            self.metrics.publish_seconds.observe(seconds)
        for record_type in types:
            self.metrics.accepted.labels(record_type, source).inc()
        return _json({"accepted": len(outgoing), "rejected": rejected})

    def _rejection(
        self, index: int, raw: bytes, rejection: Rejection, record_type: str, source: str
    ) -> dict[str, Any]:
        self.metrics.rejected.labels(record_type, rejection.reason, source).inc()
        return {
            "index": index,
            "event_id": _event_id_of(raw),
            "reason": rejection.reason,
            "message": rejection.message,
        }

    # --- handlers -----------------------------------------------------------------------------

    async def post_events(self, request: web.Request) -> web.Response:
        source = self._authenticate(request)
        items = await self._items(request)
        outgoing: list[Outgoing] = []
        types: list[str] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(items):
            event = self.decoder.decode_typed_event(raw)
            if isinstance(event, Rejection):
                kind = _declared_type(raw)
                rejected.append(self._rejection(index, raw, event, kind, source))
                continue
            value = raw if event.source is not None else with_source(raw, source)
            key = message_key(event.EVENT_TYPE, {"deal_id": event.deal_id, "customer_id": event.customer_id})
            outgoing.append(Outgoing(self.topics.for_type(event.EVENT_TYPE), key, value))
            types.append(event.EVENT_TYPE)
        return await self._publish(source, outgoing, types, rejected)

    async def post_records(self, request: web.Request) -> web.Response:
        record_type = RECORD_PATHS.get(request.match_info["record_type"])
        if record_type is None or record_type not in REFERENCE_TYPES:
            return _error(
                404,
                "unknown_record_type",
                f"no record type '{request.match_info['record_type']}'; POST to /v1/records/org, "
                "/v1/records/customers or /v1/records/targets",
            )
        source = self._authenticate(request)
        items = await self._items(request)
        outgoing: list[Outgoing] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(items):
            # Never a tombstone: a request item always has a value (an empty one is rejected).
            record = self.decoder.decode_reference(record_type, None, raw)
            if isinstance(record, Rejection):
                rejected.append(self._rejection(index, raw, record, record_type, source))
                continue
            key = message_key(record_type, from_json(raw))
            outgoing.append(Outgoing(self.topics.for_type(record_type), key, raw))
        return await self._publish(source, outgoing, [record_type] * len(outgoing), rejected)

    async def post_webhook(self, request: web.Request) -> web.Response:
        """A CRM's webhook (salespulse.gateway.webhooks): authenticate, translate, publish changes."""
        kind, name = request.match_info["kind"], request.match_info["source"]
        source = self.sources.get(name)
        if kind not in ADAPTERS or source is None or source.kind != kind:
            self.metrics.refused.labels("unknown_source").inc()
            configured = ", ".join(f"/v1/webhooks/{s.kind}/{s.name}" for s in self.sources.values()) or "none"
            return _error(
                404,
                "unknown_source",
                f"no {kind} source named '{name}' in the sources file (SALESPULSE_INGEST_SOURCES_FILE); "
                f"configured: {configured}",
            )
        if kind != "hubspot":
            problem = credentials_problem(request.headers.get("Authorization"), source)
            if problem is not None:
                self._unauthorized(name, problem)
        body = await self._read_body(request)
        if kind == "hubspot":
            problem = signature_problem(request, source, body)
            if problem is not None:
                self._unauthorized(name, problem)
        try:
            translation = ADAPTERS[kind](body, source, self.settings.ingest_max_events)
        except BatchRefused as refused:
            if refused.status == 413:
                self._too_large(refused.message, refused.error, "SALESPULSE_INGEST_MAX_EVENTS")
            self.metrics.refused.labels(refused.error).inc()
            raise _Refusal(_error(400, refused.error, refused.message)) from None
        outgoing = outgoing_of(kind, source, translation, self.topics.changes, self.topics.dlq)
        try:
            seconds = await self.producer.publish(outgoing)
        except BrokerUnavailable as unavailable:
            self.metrics.broker_errors.inc()
            log.warning("answering 503 to source '%s': %s", name, unavailable)
            return _error(
                503,
                "broker_unavailable",
                f"{unavailable}; resend the request (redelivered changes are recognised by their ids)",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if outgoing:
            self.metrics.publish_seconds.observe(seconds)
        for change in translation.changes:
            self.metrics.accepted.labels(f"{change.kind}_change", name).inc()
        for rejected in translation.rejected:
            self.metrics.rejected.labels(f"{kind}_webhook", rejected.reason, name).inc()
            log.warning(
                "source '%s': rejected item %d: %s: %s",
                name,
                rejected.index,
                rejected.reason,
                rejected.message,
            )
        if translation.ignored:
            self.metrics.ignored.labels(name).inc(len(translation.ignored))
        return _json(answer_body(translation))

    def _unauthorized(self, name: str, problem: str) -> NoReturn:
        self.metrics.refused.labels("unauthorized").inc()
        log.warning("refused a webhook for source '%s': %s", name, problem)
        raise _Refusal(_error(401, "unauthorized", f"{problem}; nothing was published"))

    async def health(self, request: web.Request) -> web.Response:
        if await self.producer.broker_answers(HEALTH_TIMEOUT_SECONDS):
            return _json({"status": "ok", "broker": "available"})
        return _json(
            {
                "status": "unavailable",
                "broker": "unavailable",
                "message": f"the broker at {self.settings.broker} does not answer",
            },
            503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI_FILE.read_bytes(), content_type="application/json")


def _declared_type(raw: bytes) -> str:
    """The type a rejected event says it is, for the metrics label ('unknown' when it does not say)."""
    try:
        parsed = from_json(raw)
    except ValueError:
        return "unknown"
    declared = parsed.get("event_type") if isinstance(parsed, dict) else None
    return declared if declared in ("visit", "call", "deal", "feedback") else "unknown"


@web.middleware
async def _count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    route = request.match_info.route.resource
    endpoint = route.canonical if route is not None else "unmatched"
    started = time.perf_counter()
    try:
        try:
            response: web.StreamResponse = await handler(request)
        except _Refusal as refusal:
            response = refusal.response
    except web.HTTPException as answer:
        gateway.metrics.requests.labels(endpoint, str(answer.status)).inc()
        raise
    gateway.metrics.requests.labels(endpoint, str(response.status)).inc()
    if request.method == "POST":
        gateway.metrics.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
    return response


def create_app(settings: Settings, producer: GatewayProducer | None = None) -> web.Application:
    """The gateway's aiohttp application (its producer starts and stops with the app)."""
    gateway = Gateway(settings, producer)
    # The body limit is the gateway's own (a JSON 413); aiohttp's must not cut in first.
    app = web.Application(middlewares=[_count_requests], client_max_size=settings.ingest_max_body_bytes + 1)
    app[GATEWAY] = gateway

    async def producer_lifecycle(app: web.Application) -> Any:
        await gateway.producer.start()
        yield
        await gateway.producer.stop()

    app.cleanup_ctx.append(producer_lifecycle)
    app.router.add_post("/v1/events", gateway.post_events)
    app.router.add_post("/v1/records/{record_type}", gateway.post_records)
    app.router.add_post("/v1/webhooks/{kind}/{source}", gateway.post_webhook)
    app.router.add_get("/v1/health", gateway.health)
    app.router.add_get("/v1/openapi.json", gateway.openapi)
    app.router.add_get("/metrics", gateway.metrics_page)
    return app


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_gateway(settings: Settings) -> None:
    """Serve the gateway until SIGINT or SIGTERM."""
    _configure_logging(settings)
    app = create_app(settings)
    log.info(
        "ingestion gateway on %s, publishing to %s, tokens: %s",
        settings.ingest_url,
        settings.broker,
        ", ".join(app[GATEWAY].tokens.names),
    )
    web.run_app(app, host=settings.ingest_host, port=settings.ingest_port, print=None, access_log=None)
