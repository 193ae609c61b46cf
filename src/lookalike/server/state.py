"""What every route shares: the open collection, the counters and the token check.

Requests call into the collection at the same time, without a server-wide lock: the
library is safe to share between threads (a database connection per thread, readers-writer
locks on the derived indexes, one writer at a time through the collection's write lock),
so searches run in parallel and a write waits only for other writes. Routes get the state
through :func:`get_state`, a FastAPI dependency, instead of closing over it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from anyio import CapacityLimiter
from fastapi import Depends, Header, HTTPException, Request

from lookalike.collection import Collection, ShardedCollection
from lookalike.errors import (
    CollectionBusyError,
    ImageError,
    LookalikeError,
    NotFoundError,
    ShardsUnavailableError,
    ValidationError,
)
from lookalike.faces import NoFaceError

T = TypeVar("T")


# How old /health's image count may be. A probe never waits for a count of a large
# catalog, and a count a second old is as true as one taken while images are added.
HEALTH_COUNT_TTL_S = 1.0


#: What a split collection answers on the routes it does not serve.
SPLIT = ("a split collection is served for searching and browsing only; change it with "
         "lookalike index and the other commands on its shards")


@dataclass
class ServerState:
    collection: Collection | ShardedCollection
    token: str | None
    max_upload_bytes: int
    concurrency: int
    started: float = field(default_factory=time.time)
    requests: int = 0  # counted in the event loop's thread only
    searches: int = 0
    _counter_lock: threading.Lock = field(default_factory=threading.Lock)
    _count: tuple[float, int] | None = None  # (when, how many images)
    # /health counts in a thread of its own, never behind the requests' pool.
    health_limiter: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(1))

    @property
    def shards(self) -> ShardedCollection | None:
        """The split collection served, if it is one."""
        return self.collection if isinstance(self.collection, ShardedCollection) else None

    @contextmanager
    def using(self) -> Iterator[Collection]:
        """The collection, with library errors turned into HTTP errors; a split collection
        is refused (501) on the routes that need a whole one."""
        if not isinstance(self.collection, Collection):
            raise HTTPException(501, SPLIT)
        with _http_errors():
            yield self.collection

    @contextmanager
    def browsing(self) -> Iterator[Collection | ShardedCollection]:
        """The collection, whole or split (for what both answer alike)."""
        with _http_errors():
            yield self.collection

    def count_search(self) -> None:
        with self._counter_lock:  # searches finish in many threads
            self.searches += 1

    def image_count(self) -> int:
        """The number of indexed images, at most :data:`HEALTH_COUNT_TTL_S` old."""
        now = time.monotonic()
        if self._count is None or now - self._count[0] > HEALTH_COUNT_TTL_S:
            self._count = (now, self.collection.count())
        return self._count[1]

    def guard(self, call: Callable[[], T]) -> T:
        """``call()``, with library errors turned into HTTP errors (:meth:`using` for a
        block)."""
        with _http_errors():
            return call()


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except NoFaceError as error:
        raise HTTPException(422, str(error)) from error
    except NotFoundError as error:
        raise HTTPException(404, str(error)) from error
    except ImageError as error:
        raise HTTPException(_image_status(error.reason), str(error)) from error
    except ValidationError as error:
        raise HTTPException(422, str(error)) from error
    except CollectionBusyError as error:  # another process writes: try again later
        raise HTTPException(409, str(error)) from error
    except ShardsUnavailableError as error:  # a split collection's shard is down
        raise HTTPException(503, str(error)) from error
    except LookalikeError as error:
        raise HTTPException(400, str(error)) from error


def _image_status(reason: str) -> int:
    # Too many pixels and decompression bombs are "too large"; the rest is unreadable.
    return 413 if "pixels" in reason or "bomb" in reason else 422


def get_state(request: Request) -> ServerState:
    """The state :func:`lookalike.server.create_app` left on the application."""
    state: ServerState = request.app.state.lookalike
    return state


async def _state(request: Request) -> ServerState:
    # Async, so that it runs in the event loop: FastAPI runs a plain-function dependency in
    # the thread pool, and /health would then wait for a free worker thread.
    return get_state(request)


State = Annotated[ServerState, Depends(_state)]


async def writer(state: State, authorization: Annotated[str | None, Header()] = None) -> None:
    """Let a write through only with ``Authorization: Bearer <the server's token>``."""
    if state.token is None:
        raise HTTPException(403, "writes are disabled: start the server with --token or "
                                 "LOOKALIKE_TOKEN")
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip()
    # Compared in constant time, so the answer's timing does not leak the token.
    if (scheme.lower() != "bearer" or not given
            or not hmac.compare_digest(given.encode(), state.token.encode())):
        raise HTTPException(401, "expected 'Authorization: Bearer <token>' with the "
                                 "server's token", headers={"WWW-Authenticate": "Bearer"})


# The dependencies of every write route.
WRITE = (Depends(writer),)
