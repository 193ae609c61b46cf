"""Refuse a query parameter, or a form field, given more than once: no parameter of the API
takes several values (a form's ``category`` aside), and FastAPI would silently keep the last
one (``?offset=5&offset=0`` is offset 0; two uploads search the second). Answered 400 (the
request is ambiguous, on any route), like every error: ``{"detail": ...}``."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

from lookalike.server.limits import ASGIApp, Receive, Scope, Send

#: The form fields that take several values.
REPEATABLE_FIELDS = frozenset({"category"})


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


async def one_value_per_form_field(request: Request) -> None:
    """A route's dependency: each form field the route takes (its body parameters) is in
    its form (read once, and kept for the route) once, but for :data:`REPEATABLE_FIELDS`;
    fields it does not take are ignored, as FastAPI ignores them."""
    taken = {field.alias for field in request.scope["route"].dependant.body_params}
    counts = Counter(name for name, _ in (await request.form()).multi_items())
    repeated = [(name, count) for name, count in counts.items()
                if count > 1 and name in taken and name not in REPEATABLE_FIELDS]
    if repeated:
        name, count = repeated[0]
        raise HTTPException(400, f"expected one value for {name!r} in the form, got {count}")
