"""``lookalike serve``: the HTTP API and the web page over one collection."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from lookalike.cli.common import Commands, collection_option, parse_list
from lookalike.collection import Collection, is_sharded
from lookalike.errors import MissingDependencyError, ValidationError
from lookalike.runtime import set_inference_threads


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("serve", help="serve the HTTP API and the web page")
    collection_option(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=None,
                        help="token for the write endpoints (default: $LOOKALIKE_TOKEN; "
                             "without one, writes are refused)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, metavar="N",
                        help="refuse uploads and images with more pixels (default 40,000,000)")
    parser.add_argument("--cors", default=None, metavar="ORIGINS",
                        help="comma-separated origins allowed to call the API (default: none)")
    parser.add_argument("--concurrency", type=_thread_count, default=0, metavar="N",
                        help="requests worked on at once; the rest wait their turn "
                             "(default 0: two per core)")
    parser.add_argument("--inference-threads", type=_thread_count, default=1, metavar="N",
                        help="cores one model call may use (default 1: concurrent requests "
                             "fill the cores; 0: every core for each call)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="a split collection's shards as actors of this Ray cluster "
                             "('auto': the one `ray start` runs here; 'local': start one); "
                             "default: every shard in this process")
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from lookalike.server import LOCAL_HOSTS, create_app, server_config
    except ImportError as error:
        raise MissingDependencyError("fastapi and uvicorn", "lookalike serve", "server") \
            from error
    if not (Collection.exists(args.collection) or is_sharded(args.collection)):
        raise ValidationError(f"expected a collection at {args.collection}, found none; "
                              "create one with lookalike index")
    token = args.token or os.environ.get("LOOKALIKE_TOKEN") or None
    set_inference_threads(args.inference_threads or None)  # before the models load
    app = create_app(args.collection, token=token,
                     max_upload_bytes=int(args.max_upload_mb * 2**20),
                     max_pixels=args.max_pixels,
                     cors_origins=parse_list(args.cors) if args.cors else None,
                     allowed_hosts=_allowed_hosts(args.host, LOCAL_HOSTS),
                     concurrency=args.concurrency or None, address=args.address)
    writes = ("off (a split collection)" if is_sharded(args.collection)
              else "on (token set)" if token else "off (no --token or LOOKALIKE_TOKEN)")
    listening = _listen(args.host, args.port)  # before announcing: a busy port fails here
    print(f"serving {args.collection} at http://{args.host}:{args.port}/ ; writes {writes}",
          file=sys.stderr)
    uvicorn.Server(server_config(app, host=args.host, port=args.port)).run(sockets=[listening])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a clear error when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise ValidationError(f"cannot serve at {host}:{port}: {error.strerror or error}; "
                              "is another server running there? pick another --port") \
            from error
    listening.set_inheritable(True)
    return listening


def _allowed_hosts(host: str, local: tuple[str, ...]) -> list[str]:
    """Host names the server answers to: this machine's, and the address it binds to; bound
    to every interface, any name (then a token guards the writes, nothing the reads)."""
    return ["*"] if host in ("0.0.0.0", "::") else [*local, host]


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, "
                                         f"got {text!r}")
    return value
