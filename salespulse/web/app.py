"""The manager page's HTTP server (`salespulse ui`): the page's files and its JSON API under /api/v1/.

Every API endpoint is a GET that reads the contract views (salespulse.web.queries) and
answers JSON; nothing here writes. A bad parameter is a 400 whose ``message`` says what to
change, ClickHouse being unreachable a 503 with ``Retry-After``; neither ever shows SQL.
docs/web-api.md documents each endpoint.

Behind a reverse proxy, tell the server the path it is published under
(``SALESPULSE_UI_BASE_PATH=/salespulse``) and have the proxy pass the path on unchanged: the
routes then live under the prefix. The page itself only uses relative URLs.
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web

from salespulse.config import Settings
from salespulse.web.auth import Access, access_middleware
from salespulse.web.connection import Store, StoreUnavailable, redacted
from salespulse.web.kpis import empty_sums, with_derived
from salespulse.web.params import (
    LEVELS,
    ParamError,
    Scope,
    parse_choice,
    parse_int,
    parse_period,
    parse_scope,
    read_query,
)
from salespulse.web.queries import LEADERBOARD_METRICS, ViewReader

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
API = "/api/v1"
PERIOD_PARAMS = ("period", "from", "to")
SCOPE_PARAMS = ("level", "entity")
MAX_ROWS = 5000
T = TypeVar("T")

# The page loads nothing from elsewhere; ECharts sets inline styles on the elements it draws.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

READER: web.AppKey[ViewReader] = web.AppKey("reader", ViewReader)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)


class UnknownEntity(ParamError):
    """The scope names an entity the views do not know."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, never in exponent notation
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = orjson.dumps(body, default=_json_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    return web.Response(body=data, status=status, content_type="application/json", headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": code, "message": message}, status, headers)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParamError as error:
        return _error(
            400, "unknown_entity" if isinstance(error, UnknownEntity) else "bad_request", str(error)
        )
    except StoreUnavailable as error:
        return _error(503, "store_unavailable", str(error), {"Retry-After": "5"})


@web.middleware
async def headers_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if request.path.startswith(API) or API in request.path:
            response = _error(
                error.status, error.reason.lower().replace(" ", "_"), f"{error.reason}: {request.path}"
            )
        else:
            raise
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


async def _blocking(request: web.Request, function: Callable[..., T], *args: Any) -> T:
    """Run a ViewReader call in a thread: clickhouse-connect is synchronous."""
    return await asyncio.to_thread(partial(function, *args))


async def _known_scope(request: web.Request, scope: Scope) -> Scope:
    reader = request.app[READER]
    if await _blocking(request, reader.is_known, scope):
        return scope
    known = sorted((await _blocking(request, reader.membership)).entities[scope.level])
    listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    raise UnknownEntity(
        f"entity={scope.entity!r}: no {scope.level} of that id in the views"
        + (f"; known: {listed}" if known else "; the views have none yet")
    )


def _query(request: web.Request, *allowed: str) -> dict[str, str]:
    return read_query(request.query.items(), allowed)


# --- the endpoints ------------------------------------------------------------------------------


async def meta(request: web.Request) -> web.Response:
    _query(request)
    settings = request.app[SETTINGS]
    overview = await _blocking(request, request.app[READER].overview)
    latest = overview["latest_day"]
    return json_response(
        {
            "api": "v1",
            "levels": list(LEVELS),
            "currency": overview["currency"] or settings.reporting_currency,
            "timezone": settings.reporting_timezone,
            "first_day": overview["first_day"],
            "latest_day": latest,
            "default_period": f"{latest.year:04d}-{latest.month:02d}" if latest else None,
            "refresh_seconds": settings.ui_refresh_seconds,
            "leaderboard_metrics": list(LEADERBOARD_METRICS),
            "served_at": datetime.now(UTC),
        }
    )


async def entities(request: web.Request) -> web.Response:
    query = _query(request, "level")
    level = parse_choice(query, "level", "region", ("region", "team", "rep"))
    membership = await _blocking(request, request.app[READER].membership)
    return json_response({"level": level, "entities": sorted(membership.entities[level])})


async def scope_info(request: web.Request) -> web.Response:
    scope = await _known_scope(request, parse_scope(_query(request, *SCOPE_PARAMS)))
    membership = await _blocking(request, request.app[READER].membership)
    return json_response(
        {
            **scope.as_json(),
            "path": membership.path(scope),
            "child_level": scope.child_level,
            "children": membership.children(scope),
        }
    )


async def kpis(request: web.Request) -> web.Response:
    query = _query(request, *PERIOD_PARAMS, *SCOPE_PARAMS)
    period = parse_period(query)
    scope = await _known_scope(request, parse_scope(query))
    reader = request.app[READER]
    previous = period.previous()
    current_sums, previous_sums = await asyncio.gather(
        _blocking(request, reader.kpi_sums, scope, period),
        _blocking(request, reader.kpi_sums, scope, previous),
    )
    return json_response(
        {
            "scope": scope.as_json(),
            "period": period.as_json(),
            "previous_period": previous.as_json(),
            "current": with_derived(current_sums),
            "previous": with_derived(previous_sums),
        }
    )


async def trend(request: web.Request) -> web.Response:
    query = _query(request, *PERIOD_PARAMS, *SCOPE_PARAMS)
    period = parse_period(query)
    scope = await _known_scope(request, parse_scope(query))
    series = await _blocking(request, request.app[READER].trend, scope, period)
    return json_response({"scope": scope.as_json(), "period": period.as_json(), **series})


async def breakdown(request: web.Request) -> web.Response:
    query = _query(request, *PERIOD_PARAMS, *SCOPE_PARAMS)
    period = parse_period(query)
    scope = await _known_scope(request, parse_scope(query))
    reader = request.app[READER]
    membership = await _blocking(request, reader.membership)
    members = membership.children(scope)
    level = scope.child_level
    sums = await _blocking(request, reader.children_sums, level, members, period) if level else {}
    rows = []
    for member in members:
        found = sums.get(member)
        if found is None:
            found = empty_sums()
        rows.append({"entity": member, **with_derived(found)})
    rows.sort(key=lambda row: (-Decimal(row["sums"]["won_amount"]), row["entity"]))
    return json_response(
        {"scope": scope.as_json(), "period": period.as_json(), "child_level": level, "rows": rows}
    )


async def funnel(request: web.Request) -> web.Response:
    scope = await _known_scope(request, parse_scope(_query(request, *SCOPE_PARAMS)))
    stages = await _blocking(request, request.app[READER].funnel, scope)
    return json_response({"scope": scope.as_json(), "stages": stages})


async def pipeline(request: web.Request) -> web.Response:
    scope = await _known_scope(request, parse_scope(_query(request, *SCOPE_PARAMS)))
    stages = await _blocking(request, request.app[READER].pipeline, scope)
    return json_response({"scope": scope.as_json(), "stages": stages})


async def targets(request: web.Request) -> web.Response:
    query = _query(request, *PERIOD_PARAMS, *SCOPE_PARAMS)
    period = parse_period(query)
    scope = await _known_scope(request, parse_scope(query))
    rows = await _blocking(request, request.app[READER].targets, scope, period)
    return json_response({"scope": scope.as_json(), "period": period.as_json(), "targets": rows})


async def leaderboard(request: web.Request) -> web.Response:
    query = _query(request, *PERIOD_PARAMS, "level", "metric", "top")
    period = parse_period(query)
    level = parse_choice(query, "level", "rep", ("rep", "team", "region"))
    metric = parse_choice(query, "metric", "won_amount", LEADERBOARD_METRICS)
    top = parse_int(query, "top", 10, 1, 1000)
    board = await _blocking(request, request.app[READER].leaderboard, level, metric, period, top)
    return json_response({"period": period.as_json(), "level": level, "metric": metric, "top": top, **board})


async def stalled(request: web.Request) -> web.Response:
    query = _query(request, *SCOPE_PARAMS, "limit")
    scope = await _known_scope(request, parse_scope(query))
    limit = parse_int(query, "limit", 500, 1, MAX_ROWS)
    found = await _blocking(request, request.app[READER].stalled, scope, limit)
    return json_response({"scope": scope.as_json(), "limit": limit, **found})


async def followups(request: web.Request) -> web.Response:
    query = _query(request, *SCOPE_PARAMS, "limit")
    scope = await _known_scope(request, parse_scope(query))
    limit = parse_int(query, "limit", 500, 1, MAX_ROWS)
    found = await _blocking(request, request.app[READER].followups, scope, limit)
    return json_response({"scope": scope.as_json(), "limit": limit, **found})


async def health(request: web.Request) -> web.Response:
    """200 when ClickHouse answers; 503 (with why) when it does not. Never needs credentials."""
    reader = request.app[READER]
    try:
        reachable = bool(await _blocking(request, reader.store.client().ping))
    except StoreUnavailable as error:
        return json_response(
            {"ok": False, "clickhouse": redacted(reader.store.url), "message": str(error)}, 503
        )
    status = 200 if reachable else 503
    return json_response({"ok": reachable, "clickhouse": redacted(reader.store.url)}, status)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def api_not_found(request: web.Request) -> web.Response:
    if request.match_info.get("tail", "") in ENDPOINTS:
        return _error(
            405,
            "method_not_allowed",
            f"{request.method} {request.path}: the API is read-only, use GET",
            {"Allow": "GET, HEAD"},
        )
    return _error(404, "not_found", f"no endpoint {request.path}; see docs/web-api.md")


ENDPOINTS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "meta": meta,
    "entities": entities,
    "scope": scope_info,
    "kpis": kpis,
    "trend": trend,
    "breakdown": breakdown,
    "funnel": funnel,
    "pipeline": pipeline,
    "targets": targets,
    "leaderboard": leaderboard,
    "stalled": stalled,
    "followups": followups,
}


def _page_app(settings: Settings, store: Store) -> web.Application:
    access = Access(settings.ui_token, settings.ui_basic_auth)
    prefix = settings.ui_base_path
    app = web.Application(
        middlewares=[
            headers_middleware,
            access_middleware(access, f"{prefix}{API}", frozenset({f"{prefix}/health"})),
            errors_middleware,
        ]
    )
    app[READER] = ViewReader(store)
    app[SETTINGS] = settings
    for path, handler in ENDPOINTS.items():
        app.router.add_get(f"{API}/{path}", handler)
    app.router.add_route("*", API + "/{tail:.*}", api_not_found)
    app.router.add_get("/health", health)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    return app


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """The page's application, mounted under ``ui_base_path`` when one is set."""
    store = store or Store(settings)
    page = _page_app(settings, store)

    async def close_store(app: web.Application) -> None:
        store.close()

    prefix = settings.ui_base_path
    if not prefix:
        page.on_cleanup.append(close_store)
        return page
    root = web.Application(middlewares=[headers_middleware])

    async def to_prefix(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{prefix}/")

    root.router.add_get("/", to_prefix)
    root.router.add_get(prefix, to_prefix)
    root.add_subapp(prefix, page)
    root.on_cleanup.append(close_store)
    return root


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


def run_ui(settings: Settings) -> None:
    """Serve the page until SIGINT or SIGTERM."""
    _configure_logging(settings)
    app = create_app(settings)
    log.info("manager page on %s, reading %s", settings.ui_url, redacted(Store(settings).url))
    web.run_app(app, host=settings.ui_host, port=settings.ui_port, print=None, access_log=None)
