"""What every route shares: the open collection behind one lock, and the token check.

The calls into the collection hold one lock, because the catalog connection and the
channels' lazily synchronised indexes are shared state. Work that needs neither (reading
and decoding an upload, making a thumbnail) runs outside it, in parallel. Routes get the
state through :func:`get_state`, a FastAPI dependency, instead of closing over it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Header, HTTPException, Request

from lookalike.collection import Collection
from lookalike.errors import ImageError, LookalikeError, NotFoundError, ValidationError
from lookalike.faces import NoFaceError

T = TypeVar("T")


@dataclass
class ServerState:
    collection: Collection
    token: str | None
    max_upload_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)
    requests: int = 0
    searches: int = 0

    @contextmanager
    def using(self) -> Iterator[Collection]:
        """The collection, for one call at a time; library errors become HTTP errors."""
        with self.lock, _http_errors():
            yield self.collection

    def guard(self, call: Callable[[], T]) -> T:
        """``call()`` without the lock, with library errors turned into HTTP errors."""
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
    except LookalikeError as error:
        raise HTTPException(400, str(error)) from error


def _image_status(reason: str) -> int:
    # Too many pixels and decompression bombs are "too large"; the rest is unreadable.
    return 413 if "pixels" in reason or "bomb" in reason else 422


def get_state(request: Request) -> ServerState:
    """The state :func:`lookalike.server.create_app` left on the application."""
    state: ServerState = request.app.state.lookalike
    return state


State = Annotated[ServerState, Depends(get_state)]


def writer(state: State, authorization: Annotated[str | None, Header()] = None) -> None:
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
