"""`salespulse ui`: the manager page (contract §9) as its own process."""

from typing import Annotated

import typer

from salespulse.cli.common import fail, settings_from


def ui(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (SALESPULSE_UI_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of the page (SALESPULSE_UI_PORT, default 8080).")
    ] = None,
    base_path: Annotated[
        str | None,
        typer.Option(help="Path prefix behind a reverse proxy, e.g. /salespulse (SALESPULSE_UI_BASE_PATH)."),
    ] = None,
    clickhouse_url: Annotated[
        str | None,
        typer.Option(
            help="ClickHouse to read, with read-only credentials (SALESPULSE_UI_CLICKHOUSE_URL); "
            "default: SALESPULSE_CLICKHOUSE_URL, else the query endpoint of `up`."
        ),
    ] = None,
) -> None:
    """Serve the manager page and its JSON API: KPIs, funnel, pipeline, targets, stalled deals.

    It only reads the views. Access control comes from the environment, never from flags (which
    other users of the machine can see): SALESPULSE_UI_TOKEN and/or SALESPULSE_UI_BASIC_AUTH.
    """
    from salespulse.runtime.ports import PortTaken, require_free_port
    from salespulse.web.app import run_ui

    settings = settings_from(
        ui_host=host, ui_port=port, ui_base_path=base_path, ui_clickhouse_url=clickhouse_url
    )
    if not settings.ui_port:
        fail("--port must be a port number (1-65535) for `salespulse ui`", 2)
    try:
        require_free_port(settings.ui_host, settings.ui_port, "manager page", "--port")
    except PortTaken as taken:
        fail(str(taken), 2)
    run_ui(settings)
