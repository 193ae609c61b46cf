"""uvicorn, configured against slow clients (docs/http-api.md, "Exposing the server").

uvicorn times out only an idle connection between requests, so a client that sends its
headers or its body a byte at a time would hold a connection for ever; the protocol here
closes it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

HEADER_TIMEOUT_S = 10.0  # the request line and headers, from the connection or last answer
BODY_TIMEOUT_S = 30.0  # the longest pause while a request body arrives
KEEP_ALIVE_S = 5  # an idle connection between requests (uvicorn's timeout_keep_alive)
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers (h11_max_incomplete_event_size)


def server_config(app: Any, *, host: str, port: int, header_timeout: float = HEADER_TIMEOUT_S,
                  body_timeout: float = BODY_TIMEOUT_S) -> uvicorn.Config:
    """uvicorn's configuration for ``app``, with the read timeouts for slow clients."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          http=_timed_h11(header_timeout, body_timeout),
                          timeout_keep_alive=KEEP_ALIVE_S,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES)


def _timed_h11(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose client is too slow: headers
    not complete ``header_timeout`` s after the connection (or the last answer) opened
    them, or a body that pauses for ``body_timeout`` s."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._wait(header_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.SEND_BODY:
                self._wait(body_timeout)  # each arrival of the body restarts the wait
            elif self.conn.their_state is not h11.IDLE:  # the request is in: the app's turn
                self._stop()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._wait(header_timeout)  # the next request's headers

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop()
            super().connection_lost(exc)

        def _wait(self, seconds: float) -> None:
            self._stop()
            self._deadline = self.loop.call_later(seconds, self._expired, seconds)

        def _stop(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self, seconds: float) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE,
                                                                            h11.SEND_BODY):
                return
            if self.flow.read_paused:  # the app has not read what came: not the client's fault
                self._wait(seconds)
                return
            self.transport.close()

    return TimedH11Protocol
