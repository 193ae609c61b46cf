"""Answer only the ``Host`` names this server is known by, against DNS rebinding.

Starlette's ``TrustedHostMiddleware`` does the same with a plain-text answer; this one
answers like every other error of the API, ``{"detail": "reason"}`` in JSON, with 400.
Patterns: a name (``localhost``, ``[::1]``), ``*.example.com`` (any name under it) or ``*``
(any name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from lookalike.server.limits import ASGIApp, Receive, Scope, Send

# host[:port], the host a name, an IPv4 address or a bracketed IPv6 address.
_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]:/\s]+)(?::[0-9]{1,5})?")


class HostCheck:
    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = [pattern.lower() for pattern in allowed_hosts]
        self.any = "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] != "http":  # the API has no websocket
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if self.answers(given):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": f"expected a Host this server answers "
                                     f"({', '.join(self.allowed)}), got {given[:100]!r}"}
                          ).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def answers(self, header: str) -> bool:
        match = _HOST.fullmatch(header.strip())
        if match is None:
            return False
        host = match["host"].lower()
        return any(host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))
                   for pattern in self.allowed)
