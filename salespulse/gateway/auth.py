"""Named bearer tokens of the gateway: ``Authorization: Bearer <token>`` → the token's name.

Each token has a name (``hubspot-prod=…``); the name says who sent a request and becomes the
``source`` of events that carry none. Tokens are compared in constant time against every
configured token (no early exit, so timing says nothing about which one nearly matched), and
no token is ever logged: only names are.
"""

import hmac
from collections.abc import Mapping


class TokenBook:
    """The configured tokens, and who a request's ``Authorization`` header names."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ValueError(
                "the gateway has no tokens: set SALESPULSE_INGEST_TOKENS='name=token,…' "
                "(16+ characters each) or SALESPULSE_INGEST_TOKENS_FILE"
            )
        self._tokens = [(name, token.encode("utf-8")) for name, token in tokens.items()]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._tokens]

    def identify(self, authorization: str | None) -> str | None:
        """The name of the token in a ``Bearer`` header, or None for a missing or wrong token."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = credentials.strip().encode("utf-8")
        found: str | None = None
        for name, token in self._tokens:
            if hmac.compare_digest(given, token) and found is None:
                found = name
        return found
