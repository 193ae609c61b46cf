"""HTTP API load: latency and throughput of POST /search at 1, 8 and 32 concurrent clients.

    python benchmarks/bench_server.py [--data ../shared/data] [--seconds 15]

Two collections of the same 1,004 images (504 Oxford-subset photos and 500 LFW faces):
"global+faces" (so ``auto`` fuses global and faces, as on the page) and
"global+local+faces" (for the local channel, and ``auto`` over all three). The server is
`lookalike serve` in its own process; the load comes from another process on loopback
(this script), with one HTTP connection per client thread, each uploading a query image
and waiting for the answer before sending the next (a closed loop). Queries: Oxford
photos for global, local and auto; LFW faces for faces. While 32 clients search, a probe
asks GET /health five times a second; its latency is reported beside the searches.
Side by side in the same run: the server as shipped (one thread per model call, two
requests at once per core) and with the libraries' defaults (``--inference-threads 0``:
every core for each call; ``--concurrency 40``: AnyIO's default thread pool). Also
measured: cold start (process start to the first /health answer, models loaded) and peak
resident memory.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import DEFAULT_DATA, ROOT, markdown_table, save

from lookalike import Collection
from lookalike.eval import metrics
from lookalike.paths import cache_dir

CLIENTS = (1, 8, 32)
SHIPPED = "shipped"
LIBRARY_DEFAULTS = "library defaults"
SETTINGS = {SHIPPED: [], LIBRARY_DEFAULTS: ["--inference-threads", "0", "--concurrency", "40"]}
# (collection channels, searched channels, server settings)
PLAN = (
    (("global", "faces"), ("global", "faces", "auto"), (SHIPPED, LIBRARY_DEFAULTS)),
    (("global", "local", "faces"), ("local", "auto"), (SHIPPED,)),
)
HEALTH_EVERY_S = 0.2


def build(data: Path, channels: tuple[str, ...]) -> tuple[Path, list[Path], list[Path]]:
    oxford = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[::2]
    faces = sorted((data / "lfw" / "lfw").glob("*/*_0001.jpg"))[:500]
    root = cache_dir() / "bench" / ("server-1k-" + "-".join(channels))
    with Collection(root, channels=list(channels)).open() as collection:
        report = collection.index([*oxford, *faces])
        print(f"collection {'+'.join(channels)}: {collection.info()['images']} images "
              f"({report.added} indexed now)", flush=True)
    return root, oxford, faces


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(root: Path, port: int, settings: str) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli", "serve", "--collection", str(root),
         "--port", str(port), *SETTINGS[settings]],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError(server.stderr.read().decode() if server.stderr else "")
        time.sleep(0.05)


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe_health(url: str, until: threading.Event) -> list[float]:
    """GET /health every :data:`HEALTH_EVERY_S` until ``until`` is set; the latencies
    (a failed or non-200 answer counts as infinitely slow)."""
    latencies: list[float] = []
    with httpx.Client(timeout=30) as session:
        while not until.wait(HEALTH_EVERY_S):
            begin = time.perf_counter()
            try:
                ok = session.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - begin if ok else float("inf"))
    return latencies


def load(url: str, queries: list[bytes], channel: str, clients: int,
         seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    probing = threading.Event()
    health: list[float] = []
    prober = threading.Thread(target=lambda: health.extend(probe_health(url, probing)))

    def client(number: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=120) as session:
            i = number
            while time.perf_counter() < deadline:
                data = queries[i % len(queries)]
                i += clients
                begin = time.perf_counter()
                answer = session.post(f"{url}/search", data={"channel": channel, "k": "24"},
                                      files={"image": ("q.jpg", data, "image/jpeg")})
                took = time.perf_counter() - begin
                with lock:
                    if answer.status_code == 200:
                        latencies.append(took)
                    else:
                        errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if clients == max(CLIENTS):
        prober.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    probing.set()
    if prober.is_alive():
        prober.join()
    percentiles = metrics.latency_percentiles(latencies)
    row = {"channel": channel, "clients": clients, "requests": len(latencies),
           "errors": errors, "throughput_rps": len(latencies) / wall,
           "p50_ms": percentiles["p50_ms"], "p99_ms": percentiles["p99_ms"]}
    if health:
        probes = metrics.latency_percentiles([t for t in health if t != float("inf")])
        row.update(health_probes=len(health),
                   health_failed=sum(t == float("inf") for t in health),
                   health_p50_ms=probes["p50_ms"], health_max_ms=probes["max_ms"])
    return row


def measure(root: Path, searched: tuple[str, ...], settings: str, photos: list[bytes],
            portraits: list[bytes], seconds: float, label: str) -> tuple[list[dict[str, Any]],
                                                                        dict[str, Any]]:
    """Every client count for each searched channel, on one server; its rows and facts."""
    port = free_port()
    server, cold = start_server(root, port, settings)
    rows: list[dict[str, Any]] = []
    try:
        url = f"http://127.0.0.1:{port}"
        for channel in searched:
            queries = portraits if channel == "faces" else photos
            load(url, queries[:2], channel, 1, 2.0)  # warm the channel's index
            for clients in CLIENTS:
                row = {"collection": label, "server": settings,
                       **load(url, queries, channel, clients, seconds)}
                rows.append(row)
                print(row, flush=True)
        memory = peak_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows, {"collection": label, "server": settings,
                  "cold_start_s": round(cold, 2), "server_peak_rss_mb": round(memory, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    servers: list[dict[str, Any]] = []
    for channels, searched, choices in PLAN:
        root, oxford, faces = build(args.data, channels)
        photos = [path.read_bytes() for path in oxford[1::25]]
        portraits = [path.read_bytes() for path in faces[::25]]
        for settings in choices:
            found, facts = measure(root, searched, settings, photos, portraits, args.seconds,
                                   "+".join(channels))
            rows += found
            servers.append(facts)
    summary = {"images": 1004, "seconds_per_run": args.seconds, "clients": list(CLIENTS),
               "health_probe_every_s": HEALTH_EVERY_S, "servers": servers}
    print(summary)
    save("server_load", summary, rows)
    print(markdown_table(rows, ["collection", "server", "channel", "clients",
                                "requests", "errors", "throughput_rps", "p50_ms", "p99_ms",
                                "health_p50_ms", "health_max_ms"]))


if __name__ == "__main__":
    main()
