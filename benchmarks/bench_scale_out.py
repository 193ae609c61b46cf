"""Scale-out simulation: a collection split into S shards served by Ray actors, searched by fan-out.

This backs the plan for a billion images: split the collection into shards, give each
shard to a node (replicated for throughput), send every query to all shards and merge
their top-k. It measures, on one machine, what such a fan-out costs and fits a latency
model to the measurements, then extrapolates that model to 10M, 100M and 1B images.

What runs. Ray starts locally (``ray.init(num_cpus=2)``, no dashboard, bound to
127.0.0.1, logs in a temporary folder). ``max(S)`` shard actors (default 8) each generate
their own rows of one synthetic collection from a seed (rows ``s*N .. (s+1)*N`` of the
mixture of :mod:`bench_ann`: clustered, embedding-like unit vectors; nothing but the
seed crosses the object store; N defaults to 125,000, not 250,000, to keep the run
near 6 minutes on 2 cores: HNSW builds dominate it) and build a ``flat`` (exact) and an
``hnsw`` (M=32, ef_construction=80, ef_search=64) index over them through
``make_index``. Shards are built two at a time (one per core), each with one thread, so
a shard's build time is about its single-core time (CPU seconds are recorded too).
The ids are the global row numbers, so shard ``s`` holds ids ``s*N .. (s+1)*N - 1``
and the first S shards together form the collection of S*N images. For S = 1, 2, 4, 8
the script measures, per query (Q held-out queries, k=10, one query per call, after a
few warm-up queries):

(a) fan-out: the driver calls ``search.remote(spec, query, k)`` on each of the first S
    actors, ``ray.get``s them all and merges by score (top-k of the S*k candidates,
    ties by id). Also recorded: the search time measured inside each actor (the
    slowest of the S is the "max shard" column), the merge time, and the rest, which is
    Ray's share (submit, transport, scheduling, deserialisation);
(b) the single-machine reference: the same searches in the driver process on one
    index of S*N vectors (grown shard by shard), where the memory budget allows and, for
    HNSW, up to ``--single-hnsw-max`` vectors (its build is the slowest part);
(c) Ray's overhead alone: the same fan-out to S actors of a method that does nothing.

Checks: the merged exact (flat) top-k must equal the single flat index's top-k (same
ids in the same order; the count of differing queries is printed, goal 0), and the
recall@10 of the merged HNSW results is measured against the merged exact results.

Threads. Every search runs on one thread (actors and driver; faiss and OpenBLAS), as
one query would on a shard node whose other cores serve other queries. A single
flat query is a matrix-vector product bounded by memory bandwidth: a second BLAS thread
did not make it faster here (7.5 ms on 1 thread, 8.3 ms on 2, 100k x 256).

Caveat: this machine has 2 cores, so S actors time-share them. With S > 2 the shards
of one query do not run in parallel as they would on S nodes, and the slowest shard's
time grows about like S/2 times one shard's. The model below therefore has two forms:
the one for dedicated nodes (the plan) and the one for S shards on this machine,
which is the one compared with the measurements.

Latency model (per query, k results, S shards of n vectors each, fitted to p50s):

    latency(S, n) ~= t_rpc(S) + t_search(n) + t_merge(S*k)              dedicated nodes
    latency(S, n) ~= t_ray_busy(S) + max(1, S/cores) * t_search(n) + t_merge(S*k)   here

    t_rpc(S)        = r0 + r1*S        Ray alone: fitted to the no-op fan-out (c)
    t_ray_busy(S)   = q0 + q1*S        Ray's share of the real fan-outs (a): latency minus
                                       the slowest shard's in-actor time minus the merge
    t_search(n)     = f0 + f1*n        flat: one pass over the vectors, fitted to (b)
    t_search(n)     = h0 + h1*ln(n)    hnsw at fixed ef_search, fitted to (b)
    t_merge(S*k)    = m0 + m1*S*k      fitted to the merge times in (a)

t_ray_busy exceeds t_rpc here because the driver, the raylet and S busy actors share 2
cores; on dedicated nodes the shards' work is elsewhere, so the plan uses t_rpc and
shows the t_ray_busy figure as a pessimistic column. The fitted constants of the run
that wrote the results are printed by the script and saved in
``results/scale_out_simulation.json``.

The figures of the run that wrote ``results/scale_out_simulation.json`` are in
docs/scale-out.md, with the machine's load during it.

Extrapolation (printed from the fitted constants; formula in :func:`extrapolate`).
A node holds ``fill * node_memory`` bytes of shard data; per image that is the
global vector (1280-d int8 + scale: 1,284 B), the regions (6,400 B), the local
features (~12.5 kB) and the index's own overhead per vector measured here (HNSW graph
and id bookkeeping; 8 B of id for flat). Then

    images_per_shard = min(total, fill * node_memory / bytes_per_image)
    shards S         = ceil(total / images_per_shard)   (then rebalanced evenly)
    t_search         = t_search(images_per_shard) * 1280 / dim   (distance cost ∝ dim)
    latency          = t_rpc(S) + t_search + t_merge(S*k)
    replicas         = ceil(target_qps * t_search / node_cores)  (one query per core)
    nodes            = S * replicas

The extrapolation stretches fits made on S <= 8 shards of N vectors at ``dim`` to
hundreds of shards of millions of 1280-d vectors: t_rpc(S) is linear in S from a
driver that issues every call itself; HNSW's ln(n) law holds at fixed ef_search only
while recall is allowed to drop (recall per shard falls as n grows); the index in this
repository keeps float32 vectors in memory (5,120 B at 1280-d, not 1,284), which the
``--global-bytes`` option can model.

    python benchmarks/bench_scale_out.py                         # defaults (~6 minutes)
    python benchmarks/bench_scale_out.py --n 20000 --queries 50  # smoke run (about a minute)

Run from the repository root with ``PYTHONPATH=src:benchmarks``. Prints the build
table, the measurement table, the fitted constants and the extrapolation, and saves
``benchmarks/results/scale_out_simulation.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import ray
from bench_ann import DB_STREAM, QUERY_STREAM, Mixture, MixtureSpec
from common import ROOT, markdown_table, save
from threadpoolctl import threadpool_limits

from lookalike.index import VectorIndex, make_index

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
SearchResult = tuple[FloatArray, IdArray, float]  # scores (k,), ids (k,), seconds in the actor

SPECS = {"flat": "flat", "hnsw": "hnsw:M=32,ef_construction=80,ef_search=64"}
GEN_CHUNK = 50_000  # rows generated and added at once
TARGET_DIM = 1280  # the raw global embedding the plan stores
TOTALS = (10_000_000, 100_000_000, 1_000_000_000)
FLAT_ID_BYTES = 8  # a flat shard's per-vector overhead outside the vectors (an int64 id)


# ---------------------------------------------------------------------- load averages


class LoadLog:
    """Prints and keeps the load average before and after each measurement."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        before = [round(x, 2) for x in os.getloadavg()]
        print(f"  [{what}] load average before: {before}", flush=True)
        started = time.perf_counter()
        try:
            yield
        finally:
            after = [round(x, 2) for x in os.getloadavg()]
            seconds = time.perf_counter() - started
            print(f"  [{what}] load average after:  {after} ({seconds:.1f} s)", flush=True)
            self.entries.append({"what": what, "before": before, "after": after,
                                 "seconds": round(seconds, 2)})


# ---------------------------------------------------------------------- the shard actor


def shard_rows(data: Mixture, shard: int, n: int) -> Iterator[tuple[IdArray, FloatArray]]:
    """The rows of ``shard`` (global rows shard*n .. (shard+1)*n) in chunks, with their ids."""
    for start in range(shard * n, (shard + 1) * n, GEN_CHUNK):
        stop = min(start + GEN_CHUNK, (shard + 1) * n)
        yield np.arange(start, stop, dtype=np.int64), data.rows(start, stop, DB_STREAM)


class Shard:
    """One shard: builds its indexes from its own rows of the synthetic collection."""

    def __init__(self, shard: int, n: int, dim: int, seed: int, threads: int) -> None:
        faiss.omp_set_num_threads(threads)
        threadpool_limits(limits=threads)  # stays in force for this worker process
        self.shard, self.n, self.dim, self.seed = shard, n, dim, seed
        self.indexes: dict[str, VectorIndex] = {}

    def build(self, specs: dict[str, str]) -> list[dict[str, Any]]:
        """Build every spec over this shard's rows; times only the index's add()."""
        data = Mixture(MixtureSpec(seed=self.seed), self.dim)
        indexes = {name: make_index(spec, self.dim) for name, spec in specs.items()}
        wall = dict.fromkeys(specs, 0.0)
        cpu = dict.fromkeys(specs, 0.0)
        for ids, vectors in shard_rows(data, self.shard, self.n):
            for name, index in indexes.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                index.add(ids, vectors)
                wall[name] += time.perf_counter() - started
                cpu[name] += time.process_time() - started_cpu
        self.indexes = indexes
        return [{"shard": self.shard, "spec": name, "n": len(index), "build_s": wall[name],
                 "build_cpu_s": cpu[name], "build_vec_per_s": len(index) / wall[name],
                 "mem_bytes_per_vec": index.memory_bytes() / len(index), "pid": os.getpid()}
                for name, index in indexes.items()]

    def search(self, name: str, query: FloatArray, k: int) -> SearchResult:
        started = time.perf_counter()
        scores, ids = self.indexes[name].search(query, k)
        return scores[0], ids[0], time.perf_counter() - started

    def noop(self) -> None:
        return None


# ---------------------------------------------------------------------- merging, timing


def merge(results: list[tuple[FloatArray, IdArray]], k: int) -> tuple[FloatArray, IdArray]:
    """Top-k over the union of the shards' results: by score descending, ties by id."""
    scores = np.concatenate([r[0] for r in results])
    ids = np.concatenate([r[1] for r in results])
    keep = ids >= 0
    scores, ids = scores[keep], ids[keep]
    order = np.lexsort((ids, -scores))[:k]
    out_scores = np.full(k, -np.inf, dtype=np.float32)
    out_ids = np.full(k, -1, dtype=np.int64)
    out_scores[: len(order)], out_ids[: len(order)] = scores[order], ids[order]
    return out_scores, out_ids


def ms(seconds: list[float] | npt.NDArray[np.float64]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    array = 1e3 * np.asarray(seconds, dtype=np.float64)
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def _fmt(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.3f}"


def recall(found: IdArray, truth: IdArray) -> float:
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist()))
            for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / truth.shape[1])


def fan_out(actors: list[Any], name: str, queries: FloatArray, warmup: FloatArray,
            k: int) -> dict[str, Any]:
    """(a): per query, search.remote on every actor, ray.get all, merge."""
    for q in warmup:
        ray.get([a.search.remote(name, q[None, :], k) for a in actors])
    total, shard_max, merge_s, rpc = [], [], [], []
    found = np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        started = time.perf_counter()
        results: list[SearchResult] = ray.get(
            [a.search.remote(name, q[None, :], k) for a in actors])
        got = time.perf_counter()
        _, ids = merge([(r[0], r[1]) for r in results], k)
        done = time.perf_counter()
        found[i] = ids
        slowest = max(r[2] for r in results)
        total.append(done - started)
        merge_s.append(done - got)
        shard_max.append(slowest)
        rpc.append(got - started - slowest)
    return {"total": total, "shard_max": shard_max, "merge": merge_s, "rpc": rpc, "ids": found}


def noop_fan_out(actors: list[Any], repeats: int, warmup: int) -> list[float]:
    """(c): the same fan-out to a method that does nothing."""
    for _ in range(warmup):
        ray.get([a.noop.remote() for a in actors])
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        ray.get([a.noop.remote() for a in actors])
        seconds.append(time.perf_counter() - started)
    return seconds


def in_process(index: VectorIndex, queries: FloatArray, warmup: FloatArray,
               k: int) -> tuple[list[float], IdArray]:
    """(b): the same single-query searches on one index in this process."""
    for q in warmup:
        index.search(q[None, :], k)
    seconds = []
    found = np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        started = time.perf_counter()
        scores, ids = index.search(q[None, :], k)
        seconds.append(time.perf_counter() - started)
        found[i] = merge([(scores[0], ids[0])], k)[1]  # same tie order as the merge
    return seconds, found


# ---------------------------------------------------------------------- the model


def fit_line(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares intercept and slope; slope 0 (intercept = mean) with fewer than 2 x."""
    if len(set(x)) < 2:
        return (float(np.mean(y)) if y else math.nan), 0.0
    slope, intercept = np.polyfit(np.asarray(x), np.asarray(y), 1)
    return float(intercept), float(slope)


def t_search(model: dict[str, float], spec: str, n: float) -> float:
    """Seconds for one single-thread query over n vectors at the measured dim."""
    if spec == "flat":
        return model["f0"] + model["f1"] * n
    return model["h0"] + model["h1"] * math.log(n)


def t_rpc(model: dict[str, float], shards: float) -> float:
    return model["r0"] + model["r1"] * shards


def t_merge(model: dict[str, float], candidates: float) -> float:
    return model["m0"] + model["m1"] * candidates


def t_ray_busy(model: dict[str, float], shards: float) -> float:
    """Ray's share of a real fan-out (latency - slowest shard - merge), fitted like t_rpc."""
    return model["q0"] + model["q1"] * shards


def predict(model: dict[str, float], spec: str, shards: int, n: float, k: int,
            cores: float | None = None) -> float:
    """Seconds per query.

    Dedicated nodes (``cores`` None): t_rpc(S) + t_search(n) + t_merge(S*k).
    S shards on ``cores`` cores: t_ray_busy(S) + max(1, S/cores) * t_search(n) + t_merge(S*k).
    """
    if cores is None:
        return t_rpc(model, shards) + t_search(model, spec, n) + t_merge(model, shards * k)
    return (t_ray_busy(model, shards) + max(1.0, shards / cores) * t_search(model, spec, n)
            + t_merge(model, shards * k))


def extrapolate(model: dict[str, float], overhead: dict[str, float], args: argparse.Namespace,
                dim: int) -> list[dict[str, Any]]:
    """Shards, replicas, nodes, memory per node and predicted latency for 10M, 100M and 1B."""
    rows = []
    usable = args.fill * args.node_memory_gib * 2**30
    for total in TOTALS:
        for spec in SPECS:
            per_image = (args.global_bytes + args.regions_bytes + args.local_bytes
                         + overhead[spec])
            per_shard = min(total, math.floor(usable / per_image))
            shards = math.ceil(total / per_shard)
            per_shard = math.ceil(total / shards)  # rebalance evenly
            search_s = t_search(model, spec, per_shard) * TARGET_DIM / dim
            latency_s = t_rpc(model, shards) + search_s + t_merge(model, shards * args.k)
            busy_s = t_ray_busy(model, shards) + search_s + t_merge(model, shards * args.k)
            replicas = max(1, math.ceil(args.target_qps * search_s / args.node_cores))
            rows.append({
                "images": total, "spec": spec, "shards": shards, "images_per_shard": per_shard,
                "replicas": replicas, "nodes": shards * replicas,
                "node_mem_gib": per_shard * per_image / 2**30,
                "global_gib": per_shard * args.global_bytes / 2**30,
                "regions_gib": per_shard * args.regions_bytes / 2**30,
                "local_gib": per_shard * args.local_bytes / 2**30,
                "index_overhead_gib": per_shard * overhead[spec] / 2**30,
                "t_rpc_ms": 1e3 * t_rpc(model, shards), "t_search_ms": 1e3 * search_s,
                "t_merge_ms": 1e3 * t_merge(model, shards * args.k),
                "latency_ms": 1e3 * latency_s, "latency_busy_ms": 1e3 * busy_s,
                "qps_per_replica": args.node_cores / search_s,
            })
    return rows


# ---------------------------------------------------------------------- the run


def single_budget_ok(spec: str, vectors: int, args: argparse.Namespace) -> bool:
    """Whether the in-process reference index of ``vectors`` fits the budgets."""
    row = 4 * args.dim
    if spec == "flat":  # the old and the doubled array side by side, plus the id dict
        peak = 1.5 * vectors * row + 100 * vectors
    else:
        peak = vectors * (row + 2 * 32 * 4 * 1.1 + 100 + 9)
        if vectors > args.single_hnsw_max:
            return False
    return bool(peak / 2**30 <= args.memory_gib)


def run(args: argparse.Namespace, load: LoadLog) -> None:
    sizes = sorted(int(s) for s in args.shards.split(","))
    k, dim, n = args.k, args.dim, args.n
    started_all = time.perf_counter()
    data = Mixture(MixtureSpec(seed=args.seed), dim)
    with threadpool_limits(limits=args.threads):
        all_queries = data.rows(0, args.queries + args.warmup, QUERY_STREAM)
    queries, warmup = all_queries[: args.queries], all_queries[args.queries :]

    # --- 1. the shard actors build their indexes, one per core at a time
    actor_class: Any = ray.remote(Shard)
    actors = [actor_class.options(num_cpus=0).remote(s, n, dim, args.seed, args.threads)
              for s in range(max(sizes))]
    ray.get([a.noop.remote() for a in actors])  # every worker process is up
    build_rows: list[dict[str, Any]] = []
    with load(f"build {len(actors)} shards x {n:,} ({', '.join(SPECS)})"):
        for wave in range(0, len(actors), args.cpus):
            batch = actors[wave : wave + args.cpus]
            for built in ray.get([a.build.remote(SPECS) for a in batch]):
                build_rows += built
                for b in built:
                    print(f"  shard {b['shard']} {b['spec']:<5} build {b['build_s']:7.1f} s "
                          f"(cpu {b['build_cpu_s']:7.1f} s, {b['build_vec_per_s']:9,.0f} vec/s,"
                          f" {b['mem_bytes_per_vec']:6.0f} B/vec)", flush=True)
    overhead = {"flat": float(FLAT_ID_BYTES)}
    hnsw_mem = np.mean([r["mem_bytes_per_vec"] for r in build_rows if r["spec"] == "hnsw"])
    overhead["hnsw"] = float(hnsw_mem) - 4 * dim  # graph + labels + id dict, beyond the vectors

    # --- 2. per S: (c) no-op fan-out, (a) fan-out per spec, (b) single index in-process
    single: dict[str, VectorIndex | None] = {name: make_index(spec, dim)
                                             for name, spec in SPECS.items()}
    single_build: list[dict[str, Any]] = []
    grown = 0
    rows: list[dict[str, Any]] = []
    for shards in sizes:
        total_n = shards * n
        print(f"S={shards}: {total_n:,} vectors", flush=True)
        # Grow the in-process references to S*N (vectors generated exactly as the actors do).
        for name in SPECS:
            if single[name] is not None and not single_budget_ok(name, total_n, args):
                print(f"  single {name} at {total_n:,}: skipped (over --memory-gib "
                      f"{args.memory_gib:g} or --single-hnsw-max {args.single_hnsw_max:,})")
                single[name] = None
        if any(index is not None for index in single.values()):
            with load(f"S={shards} grow single indexes to {total_n:,}"):
                faiss.omp_set_num_threads(args.cpus)  # build on every core
                seconds = dict.fromkeys(SPECS, 0.0)
                for s in range(grown, shards):
                    with threadpool_limits(limits=args.threads):
                        chunks = list(shard_rows(data, s, n))
                    for name, index in single.items():
                        if index is None:
                            continue
                        for ids, vectors in chunks:
                            started = time.perf_counter()
                            index.add(ids, vectors)
                            seconds[name] += time.perf_counter() - started
                    del chunks
                faiss.omp_set_num_threads(args.threads)
                for name, index in single.items():
                    if index is not None:
                        single_build.append({"spec": name, "from": grown * n, "to": total_n,
                                             "add_s": seconds[name], "threads": args.cpus})
                        print(f"  single {name} +{total_n - grown * n:,} added in "
                              f"{seconds[name]:.1f} s", flush=True)
        grown = shards
        active = actors[:shards]
        with load(f"S={shards} no-op fan-out"):
            noop = noop_fan_out(active, args.queries, args.warmup)
        noop_p50, noop_p99 = ms(noop)
        exact_ids: IdArray | None = None
        for name in SPECS:
            with load(f"S={shards} {name} fan-out"):
                fan = fan_out(active, name, queries, warmup, k)
            if name == "flat":
                exact_ids = fan["ids"]
            row: dict[str, Any] = {
                "S": shards, "spec": name, "n_per_shard": n, "n_total": total_n,
                "fanout_p50_ms": ms(fan["total"])[0], "fanout_p99_ms": ms(fan["total"])[1],
                "shard_max_p50_ms": ms(fan["shard_max"])[0],
                "rpc_p50_ms": ms(fan["rpc"])[0], "merge_p50_ms": ms(fan["merge"])[0],
                "merge_p99_ms": ms(fan["merge"])[1],
                "noop_p50_ms": noop_p50, "noop_p99_ms": noop_p99,
                "single_p50_ms": None, "single_p99_ms": None,
                f"recall@{k}": None, f"single_recall@{k}": None, "flat_mismatch_queries": None,
                "flat_mismatch_ids": None,
            }
            if name != "flat" and exact_ids is not None:
                row[f"recall@{k}"] = recall(fan["ids"], exact_ids)
            index = single[name]
            if index is not None:
                with load(f"S={shards} {name} single index in-process"):
                    seconds_single, found = in_process(index, queries, warmup, k)
                row["single_p50_ms"], row["single_p99_ms"] = ms(seconds_single)
                if name == "flat":
                    differ = (found != fan["ids"]).any(axis=1)
                    row["flat_mismatch_queries"] = int(differ.sum())
                    row["flat_mismatch_ids"] = int(sum(
                        len(set(a.tolist()) - set(b.tolist()))
                        for a, b in zip(found, fan["ids"], strict=True)))
                    print(f"  flat merged vs single exact top-{k}: "
                          f"{row['flat_mismatch_queries']} queries differ "
                          f"({row['flat_mismatch_ids']} ids) of {len(queries)}", flush=True)
                elif exact_ids is not None:
                    row[f"single_recall@{k}"] = recall(found, exact_ids)
            rows.append(row)
            print(f"  {name:<5} fan-out p50 {row['fanout_p50_ms']:8.3f} ms p99 "
                  f"{row['fanout_p99_ms']:8.3f} ms | max shard {row['shard_max_p50_ms']:8.3f} "
                  f"| ray {row['rpc_p50_ms']:6.3f} | merge {row['merge_p50_ms']:6.3f} | no-op "
                  f"{noop_p50:6.3f} | single {_fmt(row['single_p50_ms'])} ms | recall "
                  f"{'-' if row[f'recall@{k}'] is None else format(row[f'recall@{k}'], '.3f')}",
                  flush=True)

    # --- 3. fit the model
    noop_by_s = {r["S"]: r["noop_p50_ms"] / 1e3 for r in rows}
    r0, r1 = fit_line([float(s) for s in noop_by_s], list(noop_by_s.values()))
    q0, q1 = fit_line([float(r["S"]) for r in rows], [r["rpc_p50_ms"] / 1e3 for r in rows])
    m0, m1 = fit_line([float(r["S"] * k) for r in rows], [r["merge_p50_ms"] / 1e3 for r in rows])
    flat_pts = [(float(r["n_total"]), r["single_p50_ms"] / 1e3) for r in rows
                if r["spec"] == "flat" and r["single_p50_ms"] is not None]
    hnsw_pts = [(math.log(r["n_total"]), r["single_p50_ms"] / 1e3) for r in rows
                if r["spec"] == "hnsw" and r["single_p50_ms"] is not None]
    # Fall back to the in-actor time of the S=1 shard when the single reference was skipped.
    for name, pts, transform in (("flat", flat_pts, float), ("hnsw", hnsw_pts, math.log)):
        if not pts:
            one = [r for r in rows if r["spec"] == name and r["S"] == 1]
            if one:
                pts.append((transform(n), one[0]["shard_max_p50_ms"] / 1e3))
    f0, f1 = fit_line([p[0] for p in flat_pts], [p[1] for p in flat_pts])
    h0, h1 = fit_line([p[0] for p in hnsw_pts], [p[1] for p in hnsw_pts])
    model = {"r0": r0, "r1": r1, "q0": q0, "q1": q1, "m0": m0, "m1": m1,
             "f0": f0, "f1": f1, "h0": h0, "h1": h1}
    for row in rows:
        row["model_dedicated_ms"] = 1e3 * predict(model, row["spec"], row["S"], n, k)
        row["model_here_ms"] = 1e3 * predict(model, row["spec"], row["S"], n, k, args.cpus)
    extrapolation = extrapolate(model, overhead, args, dim)
    # The same with the global vectors held as float32 in the index, as VectorIndex does now.
    as_float32 = argparse.Namespace(**{**vars(args), "global_bytes": 4 * TARGET_DIM})
    extrapolation_f32 = [r for r in extrapolate(model, overhead, as_float32, dim)
                         if r["spec"] == "hnsw"]
    runtime = time.perf_counter() - started_all

    # --- 4. print and save
    print("\nBuild, per shard actor (1 thread, 2 shards at a time):")
    print(markdown_table(build_rows, ["shard", "spec", "n", "build_s", "build_cpu_s",
                                      "build_vec_per_s", "mem_bytes_per_vec"]))
    if single_build:
        print(f"\nIn-process single indexes, grown shard by shard ({args.cpus} threads):")
        print(markdown_table(single_build, ["spec", "from", "to", "add_s", "threads"]))
    print(f"\nQuery latency, Q={len(queries)} single queries, k={k}, N={n:,} per shard, "
          f"dim={dim} (ms, p50 unless marked):")
    print(markdown_table(rows, [
        "S", "spec", "n_total", "fanout_p50_ms", "fanout_p99_ms", "shard_max_p50_ms",
        "rpc_p50_ms", "merge_p50_ms", "noop_p50_ms", "noop_p99_ms", "single_p50_ms",
        "single_p99_ms", f"recall@{k}", f"single_recall@{k}", "flat_mismatch_queries",
        "model_here_ms", "model_dedicated_ms"]))
    print("\nFitted constants (seconds, p50s):")
    print(f"  t_rpc(S)      = {r0 * 1e3:.4f} ms + {r1 * 1e3:.4f} ms * S   (no-op fan-out)")
    print(f"  t_ray_busy(S) = {q0 * 1e3:.4f} ms + {q1 * 1e3:.4f} ms * S   (Ray's share of the "
          f"search fan-outs: latency - slowest shard - merge)")
    print(f"  t_merge(S*k)  = {m0 * 1e3:.4f} ms + {m1 * 1e6:.4f} us * S*k")
    print(f"  t_search flat = {f0 * 1e3:.4f} ms + {f1 * 1e9:.4f} ns * n   "
          f"({f1 * 1e9 / dim:.5f} ns per vector-dimension; {len(flat_pts)} points)")
    print(f"  t_search hnsw = {h0 * 1e3:.4f} ms + {h1 * 1e3:.4f} ms * ln(n)   "
          f"({len(hnsw_pts)} points)")
    print(f"  index overhead per vector beyond the float32 vector: hnsw {overhead['hnsw']:.0f} B"
          f" (measured, includes ~100 B of Python id dict), flat {FLAT_ID_BYTES} B (assumed)")
    print(f"\nExtrapolation: nodes of {args.node_memory_gib:g} GiB ({args.fill:.0%} for shard "
          f"data), {args.node_cores} cores, {args.target_qps:g} queries/s; per image "
          f"{args.global_bytes:,} B global + {args.regions_bytes:,} B regions + "
          f"{args.local_bytes:,} B local + index overhead; search scaled x{TARGET_DIM / dim:g} "
          f"to {TARGET_DIM}-d:")
    print(markdown_table(extrapolation, [
        "images", "spec", "shards", "images_per_shard", "replicas", "nodes", "node_mem_gib",
        "global_gib", "regions_gib", "local_gib", "index_overhead_gib", "t_rpc_ms",
        "t_search_ms", "t_merge_ms", "latency_ms", "latency_busy_ms", "qps_per_replica"]))
    print(f"\nThe same for hnsw with the global vectors as float32 in the index "
          f"({4 * TARGET_DIM:,} B/image, as VectorIndex holds them today):")
    print(markdown_table(extrapolation_f32, [
        "images", "spec", "shards", "images_per_shard", "replicas", "nodes", "node_mem_gib",
        "global_gib", "latency_ms", "latency_busy_ms"]))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ntotal {runtime:,.0f} s, driver peak RSS {peak_gib:.1f} GiB")
    settings = {
        "S": sizes, "N": n, "dim": dim, "Q": len(queries), "k": k, "warmup": args.warmup,
        "specs": SPECS, "seed": args.seed, "ray_num_cpus": args.cpus,
        "threads_per_search": args.threads, "ray": ray.__version__,
        "data": "bench_ann mixture (clustered, embedding-like unit vectors); shard s holds "
                "global rows s*N..(s+1)*N-1, generated inside its actor; queries held out",
        "single_reference": {"memory_gib": args.memory_gib, "hnsw_max": args.single_hnsw_max,
                             "build_threads": args.cpus, "build": single_build},
        "model": {"formula": "t_rpc(S) + max(1, S/cores)*t_search(n) + t_merge(S*k); "
                             "dedicated nodes: cores = S", **model},
        "overhead_bytes_per_vector": overhead,
        "extrapolation_assumptions": {
            "node_memory_gib": args.node_memory_gib, "fill": args.fill,
            "node_cores": args.node_cores, "target_qps": args.target_qps,
            "global_bytes": args.global_bytes, "regions_bytes": args.regions_bytes,
            "local_bytes": args.local_bytes, "target_dim": TARGET_DIM},
        "extrapolation": extrapolation, "extrapolation_hnsw_float32_global": extrapolation_f32,
        "build": build_rows,
        "load_averages": load.entries, "total_runtime_s": round(runtime, 1),
        "driver_peak_rss_gib": round(peak_gib, 2),
    }
    print(f"saved {save(args.name, settings, rows)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", default="1,2,4,8", help="shard counts S (%(default)s)")
    parser.add_argument("--n", type=int, default=125_000, help="vectors per shard")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("-k", "--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=2, help="ray.init(num_cpus=...)")
    parser.add_argument("--threads", type=int, default=1, help="threads per search")
    parser.add_argument("--memory-gib", type=float, default=6.0,
                        help="largest in-process reference index (estimated peak)")
    parser.add_argument("--single-hnsw-max", type=int, default=500_000,
                        help="largest in-process HNSW reference (its build is the slow part)")
    parser.add_argument("--node-memory-gib", type=float, default=256.0)
    parser.add_argument("--fill", type=float, default=0.75, help="share of node memory for data")
    parser.add_argument("--node-cores", type=int, default=32)
    parser.add_argument("--target-qps", type=float, default=100.0)
    parser.add_argument("--global-bytes", type=int, default=1_284)
    parser.add_argument("--regions-bytes", type=int, default=6_400)
    parser.add_argument("--local-bytes", type=int, default=12_500)
    parser.add_argument("--name", default="scale_out_simulation", help="results file name")
    args = parser.parse_args()
    # The actors import bench_ann and lookalike: make sure their processes find them.
    paths = [str(ROOT / "benchmarks"), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    load = LoadLog()
    with tempfile.TemporaryDirectory(prefix="ray", ignore_cleanup_errors=True) as temp:
        try:
            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
                     object_store_memory=200 * 2**20, _node_ip_address="127.0.0.1",
                     _temp_dir=str(Path(temp)))
            run(args, load)
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
