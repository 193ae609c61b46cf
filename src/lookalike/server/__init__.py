"""The HTTP API and the web page: a thin adapter over :class:`lookalike.Collection`."""

from lookalike.server.app import create_app

__all__ = ["create_app"]
