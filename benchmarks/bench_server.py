"""HTTP API load: latency and throughput of POST /search at 1, 8 and 32 concurrent clients.

    python benchmarks/bench_server.py [--data ../shared/data] [--seconds 15]

The collection: 504 Oxford-subset photos and 500 LFW faces (1,004 images), with the
global, local and faces channels. The server is `lookalike serve` in its own process;
the load comes from another process on loopback (this script), with one HTTP
connection per client thread, each uploading a query image and waiting for the answer
before sending the next (a closed loop). Queries: Oxford photos for global, local and
auto; LFW faces for faces. Also measured: cold start (process start to the first
/health answer, models loaded) and the server's resident memory (peak).
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
CHANNELS = ("global", "local", "faces", "auto")


def build(data: Path) -> tuple[Path, list[Path], list[Path]]:
    oxford = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[::2]
    faces = sorted((data / "lfw" / "lfw").glob("*/*_0001.jpg"))[:500]
    root = cache_dir() / "bench" / "server-1k"
    with Collection(root, channels=["global", "local", "faces"]).open() as collection:
        report = collection.index([*oxford, *faces])
        print(f"collection: {collection.info()['images']} images "
              f"({report.added} indexed now)", flush=True)
    return root, oxford, faces


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(root: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli", "serve", "--collection", str(root),
         "--port", str(port)], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
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


def load(url: str, queries: list[bytes], channel: str, clients: int,
         seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

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
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    percentiles = metrics.latency_percentiles(latencies)
    return {"channel": channel, "clients": clients, "requests": len(latencies),
            "errors": errors, "throughput_rps": len(latencies) / wall,
            "p50_ms": percentiles["p50_ms"], "p99_ms": percentiles["p99_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    root, oxford, faces = build(args.data)
    port = free_port()
    server, cold = start_server(root, port)
    rows: list[dict[str, Any]] = []
    try:
        url = f"http://127.0.0.1:{port}"
        photos = [path.read_bytes() for path in oxford[1::25]]
        portraits = [path.read_bytes() for path in faces[::25]]
        for channel in CHANNELS:
            queries = portraits if channel == "faces" else photos
            load(url, queries[:2], channel, 1, 2.0)  # warm the channel's index
            for clients in CLIENTS:
                rows.append(load(url, queries, channel, clients, args.seconds))
                print(rows[-1], flush=True)
        memory = peak_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {"cold_start_s": round(cold, 2), "server_peak_rss_mb": round(memory, 1),
               "images": len(oxford) + len(faces), "seconds_per_run": args.seconds}
    print(summary)
    save("server_load", summary, rows)
    print(markdown_table(rows, ["channel", "clients", "requests", "errors", "throughput_rps",
                                "p50_ms", "p99_ms"]))


if __name__ == "__main__":
    main()
