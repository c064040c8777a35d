"""Posting CRM webhooks as the vendors do: HubSpot's v3 signature headers, basic auth, a real HTTP client."""

import base64
import hashlib
import hmac
import urllib.error
import urllib.request

import orjson

from tests.support.gateway import Answer


def hubspot_headers(secret: str, url: str, body: bytes, now_ms: int, method: str = "POST") -> dict[str, str]:
    """The headers HubSpot sends: base64(HMAC-SHA256(secret, method + url + body + timestamp))."""
    timestamp = str(now_ms)
    digest = hmac.new(
        secret.encode(), method.encode() + url.encode() + body + timestamp.encode(), hashlib.sha256
    )
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest.digest()).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v3",
    }


def post_webhook(
    url: str, body: bytes, headers: dict[str, str] | None = None, basic: tuple[str, str] | None = None
) -> Answer:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if basic is not None:
        all_headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, orjson.loads(response.read()), dict(response.headers))
    except urllib.error.HTTPError as error:
        raw = error.read()
        return Answer(error.code, orjson.loads(raw) if raw else None, dict(error.headers))
