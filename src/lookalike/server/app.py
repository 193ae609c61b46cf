"""The FastAPI application: one open collection, the safety middleware and the routes.

One :class:`~lookalike.Collection` is opened per process, and its models are loaded at
start-up. Requests are served concurrently, in a thread pool of ``concurrency`` threads,
and call into the collection at the same time (see :mod:`lookalike.server.state`). The pool
is small on purpose: more threads than cores only fight over the cores and the GIL, and
starve the event loop that answers /health (measured on 2 cores, 32 clients: 116 req/s
with 4 threads against 104 with AnyIO's default 40, and /health's median 6 ms against
62). ``lookalike serve`` also keeps each model call to one core
(:mod:`lookalike.runtime`). The endpoints live in :mod:`lookalike.server.routes`, one
module per resource.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import RequestResponseEndpoint

from lookalike.collection import Collection, ShardedCollection, TextSearching, is_sharded
from lookalike.errors import ValidationError
from lookalike.runtime import apply_thread_limits
from lookalike.server import openapi
from lookalike.server.errors import http_error, validation_error
from lookalike.server.hosts import HostCheck
from lookalike.server.limits import BodyLimit
from lookalike.server.query import OneValuePerQueryParameter
from lookalike.server.routes import annotations as annotation_routes  # not the __future__ name
from lookalike.server.routes import health, images, objects, people, search
from lookalike.server.state import ServerState, get_state

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD = 20 * 2**20
# Lower than the library's cap: one query is decoded per request, and a small PNG can
# claim 89 megapixels. 40 MP still takes any camera's photo.
DEFAULT_MAX_PIXELS = 40_000_000
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the other form fields
ROUTERS = (health.router, search.router, objects.router, images.router,
           annotation_routes.router, people.router)


def create_app(root: Path, *, token: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
               max_pixels: int = DEFAULT_MAX_PIXELS,
               cors_origins: list[str] | None = None,
               allowed_hosts: list[str] | None = None,
               concurrency: int | None = None, address: str | None = None) -> FastAPI:
    """The API and the page over the collection in ``root`` (which must exist).

    A split collection (``lookalike shard``) is searched across its shards, in this
    process or, given a Ray ``address``, as Ray actors; it is served read-only.

    Write endpoints need ``Authorization: Bearer <token>``; with ``token=None`` they are
    refused. ``cors_origins`` allows those origins; CORS is off otherwise.
    ``allowed_hosts`` are the ``Host`` names answered (default: this machine's), so a web
    page elsewhere cannot read the collection through DNS rebinding. ``concurrency``
    requests are worked on at once (default: two per core); the rest wait their turn.
    """
    if token is not None and len(token) < 8:
        raise ValidationError(f"expected a token of at least 8 characters, got {len(token)}")
    if concurrency is not None and (isinstance(concurrency, bool)
                                    or not isinstance(concurrency, int) or concurrency < 1):
        raise ValidationError(f"expected a concurrency of at least 1, got {concurrency!r}")
    collection = _open(root, max_pixels=max_pixels, address=address)
    # No /docs or /redoc: their pages load scripts from a CDN; /openapi.json is served.
    app = FastAPI(title="Lookalike", version="0.1.0", lifespan=_lifespan, docs_url=None,
                  redoc_url=None,
                  # One shape for every error, {"detail": "reason"}, and a true Allow on a 405.
                  exception_handlers={RequestValidationError: validation_error,
                                      StarletteHTTPException: http_error},
                  description="Visual search over one collection: search by example, by "
                              "crop and by face, and see why each result matched.")
    app.state.lookalike = ServerState(collection=collection, token=token,
                                      max_upload_bytes=max_upload_bytes,
                                      concurrency=concurrency or default_concurrency())
    _add_middleware(app, allowed_hosts=allowed_hosts or list(LOCAL_HOSTS),
                    cors_origins=cors_origins, body_limit=max_upload_bytes + _FORM_OVERHEAD)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", _page, methods=["GET"], include_in_schema=False)
    channels = collection.channel_names
    text_search = ("text" in channels if isinstance(collection, ShardedCollection)
                   else any(isinstance(c, TextSearching) for c in collection.channels.values()))

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.document(app, channels, text_search=text_search)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app


def _open(root: Path, *, max_pixels: int, address: str | None
          ) -> Collection | ShardedCollection:
    if is_sharded(root):
        return ShardedCollection(root, address=address, max_pixels=max_pixels).open()
    if address is not None:
        raise ValidationError(f"{root}: expected a split collection (lookalike shard) for a "
                              f"Ray address, got a whole one; serve it without --address")
    return Collection(root, max_pixels=max_pixels).open(create=False)


def _add_middleware(app: FastAPI, *, allowed_hosts: list[str], cors_origins: list[str] | None,
                    body_limit: int) -> None:
    # The last added runs first: the body limit, then the counter, CORS, the Host check,
    # the query check.
    app.add_middleware(OneValuePerQueryParameter)
    app.add_middleware(HostCheck, allowed_hosts=allowed_hosts)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.middleware("http")(_count)
    # Outermost: refuse an oversized body before any of it is read or spooled to disk.
    app.add_middleware(BodyLimit, limit=body_limit)


async def _count(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Count every request (refused ones too), and forbid content sniffing on every answer:
    an uploaded file is served as the type it is, never as a page."""
    get_state(request).requests += 1
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.lookalike
    state.collection.prepare()  # load every model once, before the first request
    apply_thread_limits()  # to the libraries the models brought in
    to_thread.current_default_thread_limiter().total_tokens = state.concurrency
    yield
    state.collection.close()


def default_concurrency() -> int:
    """Requests worked on at once by default: two per core, so that one request's I/O and
    Python never leave a core idle."""
    return 2 * (os.cpu_count() or 1)


def _page() -> FileResponse:
    return FileResponse(STATIC / "index.html")
