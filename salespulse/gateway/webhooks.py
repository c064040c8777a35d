"""The CRM webhook endpoints: ``POST /v1/webhooks/{hubspot|salesforce|pipedrive}/{source}`` (issue 14).

A request is authenticated by its source (HubSpot: the v3 signature with the app's client
secret, stale after 5 minutes; Salesforce and Pipedrive: the source's bearer token or basic-auth
credentials), read within the gateway's body limits, and translated by the CRM's adapter into
partial changes. The changes are published on the internal changes topic, keyed by object, where
the worker's assembly agent turns them into full contract events. Items that cannot be
translated (an unmapped stage, owner or outcome, a GAP event, a bad value) are rejected: listed
in the answer with their reason, counted by source, logged, and published to the DLQ (with the
vendor's bytes and the endpoint they came to) so ``salespulse dlq list`` shows them. The answer
is 200 once the broker acknowledged everything, so the CRM does not retry what was rejected on
purpose; a refused request (401, 404, 400, 413) publishes nothing.
"""

import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from salespulse.assembly.changes import Change
from salespulse.gateway.adapters import hubspot, pipedrive, salesforce
from salespulse.gateway.adapters.common import Rejected, Translation
from salespulse.gateway.publishing import Outgoing
from salespulse.gateway.sources import Source

log = logging.getLogger(__name__)

Translator = Callable[[bytes, Source, int], Translation]
ADAPTERS: dict[str, Translator] = {
    "hubspot": hubspot.translate,
    "salesforce": salesforce.translate,
    "pipedrive": pipedrive.translate,
}


def request_url(request: web.Request, source: Source) -> str:
    """The URL HubSpot signed: the source's ``signed_url`` if set, else the one this request names."""
    if source.signed_url:
        query = request.rel_url.query_string
        return source.signed_url + (f"?{query}" if query else "")
    return str(request.url)


def signature_problem(request: web.Request, source: Source, body: bytes) -> str | None:
    assert source.client_secret is not None
    return hubspot.verify(
        source.client_secret,
        request.method,
        request_url(request, source),
        body,
        request.headers.get("X-HubSpot-Signature-v3"),
        request.headers.get("X-HubSpot-Request-Timestamp"),
        int(time.time() * 1000),
    )


def credentials_problem(authorization: str | None, source: Source) -> str | None:
    """None when ``Authorization`` carries the source's token or basic-auth credentials."""
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and source.token:
        if hmac.compare_digest(given.encode(), source.token.encode()):
            return None
    elif scheme.lower() == "basic" and source.basic_auth:
        try:
            decoded = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if hmac.compare_digest(decoded, source.basic_auth.encode()):
            return None
    wanted = " or ".join(
        what
        for what, present in (("Bearer <token>", source.token), ("Basic <user:password>", source.basic_auth))
        if present
    )
    return f"send Authorization: {wanted} with the credentials of source '{source.name}'"


def dead_letter(kind: str, source: Source, rejected: Rejected) -> tuple[str, bytes]:
    """The DLQ key and record of a rejected webhook item (not replayable: no source topic)."""
    digest = hashlib.sha256(rejected.raw).hexdigest()
    try:
        text: str | None = rejected.raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    body: dict[str, Any] = {
        "reason": rejected.reason,
        "message": rejected.message,
        "type": f"{kind}_webhook",
        "source_topic": "",
        "source_endpoint": f"/v1/webhooks/{kind}/{source.name}",
        "source_name": source.name,
        "source_index": rejected.index,
        "rejected_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "rejected_by": "gateway",
        "payload_bytes": len(rejected.raw),
        "payload_sha256": digest,
        "payload_base64": base64.b64encode(rejected.raw).decode("ascii"),
        "payload_text": text,
    }
    return f"webhook|{source.name}|{digest[:24]}", orjson.dumps(body)


def with_default_currency(change: Change, source: Source) -> Change:
    """A deal change carries the source's currency as the default for a CRM that does not say."""
    if change.kind != "deal" or not source.currency or "default_currency" in change.fields:
        return change
    return dataclasses.replace(change, fields={**change.fields, "default_currency": source.currency})


def outgoing_of(
    kind: str, source: Source, translation: Translation, changes_topic: str, dlq_topic: str
) -> list[Outgoing]:
    messages = [
        Outgoing(changes_topic, change.key, with_default_currency(change, source).encode())
        for change in translation.changes
    ]
    for rejected in translation.rejected:
        key, value = dead_letter(kind, source, rejected)
        messages.append(Outgoing(dlq_topic, key, value))
    return messages


def answer_body(translation: Translation) -> dict[str, Any]:
    return {
        "accepted": len(translation.changes),
        "rejected": [
            {"index": item.index, "reason": item.reason, "message": item.message}
            for item in translation.rejected
        ],
        "ignored": [{"index": item.index, "reason": item.reason} for item in translation.ignored],
    }
