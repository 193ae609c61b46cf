"""GET /health and GET /stats: is the server up, and what it holds and has served."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from lookalike.server import schemas
from lookalike.server.errors import SHARDS, errors
from lookalike.server.state import State

router = APIRouter()


@router.get("/health", responses=errors())
async def health(state: State) -> schemas.Health:
    # Answered in the event loop, not the thread pool, so that a probe never queues behind
    # searches that fill the pool; the image count is cached for a second.
    with state.browsing() as collection:
        return schemas.Health(status="ok", images=state.image_count(),
                              channels=collection.channel_names)


@router.get("/stats", responses=errors(SHARDS))
def stats(state: State) -> dict[str, Any]:
    with state.browsing() as collection:
        info = collection.info()
    return {"collection": info, "server": {
        "uptime_s": round(time.time() - state.started, 1), "requests": state.requests,
        "searches": state.searches}}
