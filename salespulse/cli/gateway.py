"""`salespulse gateway`: the HTTP ingestion gateway (SPEC §8) as its own process."""

from typing import Annotated

import typer

from salespulse.cli.common import BrokerOption, fail, settings_from


def gateway(
    broker: BrokerOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (SALESPULSE_INGEST_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of the gateway (SALESPULSE_INGEST_PORT, default 8088).")
    ] = None,
) -> None:
    """Accept events over HTTP, validate them like the worker does, publish them to Kafka.

    Stateless: run as many replicas as you like behind a load balancer. Tokens come from the
    environment, never from flags (which other users of the machine can see):
    SALESPULSE_INGEST_TOKENS='name=token,…' or SALESPULSE_INGEST_TOKENS_FILE.
    """
    from salespulse.gateway.app import run_gateway
    from salespulse.runtime.ports import PortTaken, require_free_port

    settings = settings_from(broker=broker, ingest_host=host, ingest_port=port)
    if not settings.ingest_port:
        fail("--port must be a port number (1-65535) for `salespulse gateway`", 2)
    try:
        if not settings.ingest_token_names():
            fail(
                "the gateway needs at least one token: set SALESPULSE_INGEST_TOKENS='name=token' "
                "(16+ characters) or SALESPULSE_INGEST_TOKENS_FILE",
                2,
            )
    except ValueError as error:
        fail(str(error), 2)
    try:
        require_free_port(settings.ingest_host, settings.ingest_port, "ingestion gateway", "--port")
    except PortTaken as taken:
        fail(str(taken), 2)
    run_gateway(settings)
