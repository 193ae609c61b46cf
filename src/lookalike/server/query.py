"""Refuse a query parameter given more than once: no parameter of the API takes several
values, and FastAPI would silently keep the last one (``?offset=5&offset=0`` is offset 0).
Answered 400 (the request is ambiguous, on any route), like every error: ``{"detail": ...}``."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qsl

from lookalike.server.limits import ASGIApp, Receive, Scope, Send


class OneValuePerQueryParameter:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            query = scope["query_string"].decode("latin-1")
            counts = Counter(name for name, _ in parse_qsl(query, keep_blank_values=True))
            repeated = [(name, count) for name, count in counts.items() if count > 1]
            if repeated:
                await _refuse(send, *repeated[0])
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, name: str, count: int) -> None:
    body = json.dumps({"detail": f"expected one value for {name!r} in the query, "
                                 f"got {count}"}).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
