"""Optional access control for the manager page: a bearer token, HTTP basic auth, or both.

- Neither configured: open (bind it to loopback, or put it behind your own proxy).
- ``SALESPULSE_UI_BASIC_AUTH=user:password``: every path but ``/health`` asks for it; browsers
  show their login prompt and send it with the page's own API calls.
- ``SALESPULSE_UI_TOKEN``: the JSON API requires ``Authorization: Bearer <token>``. The page's
  files (HTML, scripts, styles, no data) stay readable, so the page can ask for the token and
  keep it in the tab's session storage; the token never goes into the URL, which people share.

Credentials are compared in constant time (``hmac.compare_digest``), whatever their length.
"""

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = "salespulse"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Access:
    """Decides whether a request may see a path."""

    def __init__(self, token: str | None, basic: str | None) -> None:
        self.token = token
        self.basic = basic

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.basic)

    def allows(self, authorization: str, is_api: bool) -> bool:
        if not self.enabled:
            return True
        scheme, _, credentials = authorization.partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if self.basic and scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return _same(decoded, self.basic)
        if self.token and scheme == "bearer" and is_api:
            return _same(credentials, self.token)
        # Only a token configured: the page's files are public, its data is not.
        return not self.basic and not is_api

    def challenge(self) -> dict[str, str]:
        if self.basic:
            return {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
        return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


def access_middleware(
    access: Access, api_prefix: str, open_paths: frozenset[str]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware answering 401 (JSON for the API) when ``access`` says no."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        is_api = request.path.startswith(api_prefix)
        if access.allows(request.headers.get("Authorization", ""), is_api):
            return await handler(request)
        message = (
            "this page needs a user name and password"
            if access.basic
            else "the API needs Authorization: Bearer <token> (SALESPULSE_UI_TOKEN)"
        )
        if is_api:
            return web.json_response(
                {"error": "unauthorized", "message": message}, status=401, headers=access.challenge()
            )
        return web.Response(text=f"401 Unauthorized: {message}\n", status=401, headers=access.challenge())

    return middleware
