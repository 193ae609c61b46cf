"""The HTTP API and the web page: a thin adapter over :class:`lookalike.Collection`."""

from lookalike.server.app import LOCAL_HOSTS, create_app
from lookalike.server.slow_clients import server_config

__all__ = ["LOCAL_HOSTS", "create_app", "server_config"]
