"""Query latency of the vector index backends as the collection grows: flat versus faiss.

For 1,000, 100,000 and 1,000,000 vectors it builds each backend through the
:class:`~lookalike.index.VectorIndex` contract (``make_index``, ``train``, ``add``,
``search``, ``memory_bytes``, ``save``) and measures, per (size, dim, backend, params):

* build time (train + add, s) and build throughput (vectors/s); data generation
  is not timed;
* latency of single queries (k=10, one query per ``search`` call, after a few
  warm-up queries): p50 and p99 in ms, and the speed-up versus flat at the same
  size and dim (flat p50 / backend p50; above 1 is faster than flat);
* recall@10 against ``flat``, the exact reference: |approx top-10 ∩ flat top-10| / 10,
  averaged over the queries;
* bytes per vector in memory (``memory_bytes() / n``) and on disk (``save()`` file / n).

Backends: ``flat``; ``hnsw`` (M=32, ef_construction=80) searched with ef_search=64
(the default) and 128; ``ivfpq`` (nlist ≈ 4·sqrt(n), m=64 sub-quantisers of 8 bits
for 1280-d, i.e. 64-byte codes) trained on the first min(n, 100,000) vectors and
searched with nprobe=16 (the default) and 64. The search-time parameter
(``ef_search`` / ``nprobe``) is changed on the one built index rather than
building it twice, so those two rows share one build (same build time).

Data. No real collection of a million images is at hand, so every size uses
synthetic vectors built to resemble image embeddings rather than isotropic noise
(isotropic Gaussians are a pathological worst case for approximate search: all
points are nearly equidistant). A seeded mixture of Gaussians lives in a 64-d latent
space with a decaying (power-law) spectrum: 4,096 centres with log-normal
(uneven) cluster weights, points = centre + within-cluster noise (half the spread
of the centres), projected to ``dim`` by a fixed random matrix, plus a shared mean
vector (real embeddings share a strong common component) and a little isotropic
ambient noise, then L2-normalised. Queries are held-out draws from the same
mixture, not database members. Vectors are generated in float32 blocks of
10,000, each from its own seed, so any range can be regenerated on demand and
the whole database never has to sit in memory beside the index. The 1k database
is a prefix of the 100k one, which is a prefix of the 1M one; the queries are the
same at every size. The 256-d vectors share the latent points of the 1280-d ones
(another projection of the same collection).

Dimension. 1280 (the raw EfficientNet-Lite0 embedding) everywhere it is feasible.
HNSW construction at 1M x 1280 on 2 cores may not be: before each size the script
extrapolates the HNSW build time from the add() timings of the largest smaller
size (per-vector cost growing with log n, see :func:`extrapolate_build_s`) and,
when the estimate exceeds ``--hnsw-budget-s`` (15 minutes), runs HNSW at that size
at dim 256 (the PCA-whitened size Lookalike supports) together with flat at 256 as
its recall and speed reference. The ``dim`` column says which; the ``note`` column
says why. (On the 2-core AMD EPYC this was written on, the estimate for 1M x 1280
was 600-700 s and the build took about 390 s, so every size ran at 1280.)
A case whose estimated peak memory exceeds ``--memory-gib`` (14 GiB) is skipped with a
note, and so is the ``save()`` of a faiss index too big to serialise within it: faiss
serialises through two extra in-memory copies of the index, so the 5.5 GB HNSW
graph at 1M x 1280 would peak at about 16 GiB; its disk size is then left blank
(on disk an index takes about its in-memory size less the ~100-byte id dict entry,
as the smaller sizes show).

Memory. ``FlatIndex`` grows its array by doubling, and ``memory_bytes`` counts the
capacity; flat is therefore filled with a first batch of half the vectors and then
batches of 50,000, which makes the capacity exactly n (and bounds the peak), as
a bulk load of the whole collection would. The other backends are filled in
batches of 50,000.

faiss runs with its default thread count (recorded in the settings; 2 here);
single-query HNSW and IVF-PQ searches use one thread, flat's matrix-vector
product uses numpy's BLAS threads.

    python benchmarks/bench_ann.py                       # 1k, 100k, 1M (~15-20 minutes)
    python benchmarks/bench_ann.py --sizes 1000,20000    # smoke run (about a minute)

Run from the repository root with ``PYTHONPATH=src:benchmarks``. Prints each row as
it finishes, then a markdown table, and saves ``benchmarks/results/ann.json``.
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from common import markdown_table, save

from lookalike.index import HNSWIndex, IVFPQIndex, VectorIndex, make_index

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

K = 10
GEN_BLOCK = 10_000  # rows generated from one seed
ADD_CHUNK = 50_000  # rows per add() call
DB_STREAM, QUERY_STREAM = 0, 1
FULL_DIM = 1280  # raw EfficientNet-Lite0 embedding
SMALL_DIM = 256  # PCA-whitened size
HNSW_BUILD = {"M": 32, "ef_construction": 80}
HNSW_EF_SEARCH = (64, 128)
IVFPQ_NPROBE = (16, 64)
IVFPQ_TRAIN_MAX = 100_000
IVFPQ_NBITS = 8
DICT_ENTRY_BYTES = 100  # rough cost of an id -> row dict entry


@dataclass(frozen=True)
class MixtureSpec:
    """Parameters of the synthetic embedding distribution (see the module docstring)."""

    seed: int = 0
    n_centres: int = 4096
    latent_dim: int = 64
    spectrum_power: float = 1.0  # latent variance of dimension j ∝ (j + 1) ** -power
    within: float = 0.5  # within-cluster spread relative to the spread of the centres
    weight_sigma: float = 1.0  # cluster weights are log-normal(0, weight_sigma)
    mean_norm: float = 0.8  # shared mean vector, relative to the signal's norm
    ambient: float = 0.3  # isotropic ambient noise norm, relative to the signal's norm


class Mixture:
    """Deterministic generator of unit vectors of one dimension from a :class:`MixtureSpec`."""

    def __init__(self, spec: MixtureSpec, dim: int) -> None:
        self.spec, self.dim = spec, dim
        rng = np.random.default_rng([spec.seed, 0])  # latent model: shared by every dim
        r = spec.latent_dim
        scales = (np.arange(r) + 1.0) ** (-spec.spectrum_power / 2)
        self.scales = scales / np.linalg.norm(scales)  # total latent variance 1
        self.centres = rng.standard_normal((spec.n_centres, r)) * self.scales
        weights = rng.lognormal(0.0, spec.weight_sigma, spec.n_centres)
        self.cumulative = np.cumsum(weights) / weights.sum()
        signal = math.sqrt(1.0 + spec.within**2)  # expected norm of a latent point
        prng = np.random.default_rng([spec.seed, 1, dim])  # the projection to dim
        self.projection = (prng.standard_normal((r, dim)) / math.sqrt(dim)).astype(np.float32)
        mean = prng.standard_normal(dim)
        self.mean = (mean * spec.mean_norm * signal / np.linalg.norm(mean)).astype(np.float32)
        self.ambient_std = np.float32(spec.ambient * signal / math.sqrt(dim))

    def block(self, stream: int, index: int) -> FloatArray:
        """Block ``index`` (GEN_BLOCK rows) of ``stream``, L2-normalised float32."""
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 2, stream, index])
        labels = np.minimum(
            np.searchsorted(self.cumulative, rng.random(GEN_BLOCK)), spec.n_centres - 1
        )
        noise = rng.standard_normal((GEN_BLOCK, spec.latent_dim)) * (spec.within * self.scales)
        latent = (self.centres[labels] + noise).astype(np.float32)
        x: FloatArray = latent @ self.projection
        x += self.mean
        ambient = np.random.default_rng([spec.seed, 3, stream, index, self.dim]).standard_normal(
            (GEN_BLOCK, self.dim), dtype=np.float32
        )
        ambient *= self.ambient_std
        x += ambient
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def rows(self, start: int, stop: int, stream: int = DB_STREAM) -> FloatArray:
        """Rows ``start:stop`` of ``stream``, generated block by block into one array."""
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        for b in range(start // GEN_BLOCK, (stop - 1) // GEN_BLOCK + 1):
            lo, hi = max(start, b * GEN_BLOCK), min(stop, (b + 1) * GEN_BLOCK)
            offset = b * GEN_BLOCK
            out[lo - start : hi - start] = self.block(stream, b)[lo - offset : hi - offset]
        return out


# ---------------------------------------------------------------------- building


def add_schedule(n: int, backend: str) -> list[tuple[int, int]]:
    """Row ranges for the add() calls; flat gets half first so its capacity ends at n."""
    first = math.ceil(n / 2) if backend == "flat" else min(n, ADD_CHUNK)
    ranges = [(0, first)]
    ranges += [(s, min(s + ADD_CHUNK, n)) for s in range(first, n, ADD_CHUNK)]
    return ranges


def ivfpq_params(n: int, dim: int) -> dict[str, int]:
    """nlist ≈ 4·sqrt(n), 64 sub-quantisers for 1280-d (20 dims each), 8-bit codes."""
    m = 64 if dim >= 512 and dim % 64 == 0 else 32 if dim % 32 == 0 else 0  # 0: backend default
    return {"nlist": max(1, round(4 * math.sqrt(n))), "m": m, "nbits": IVFPQ_NBITS}


def spec_string(backend: str, params: dict[str, int]) -> str:
    return backend + ("" if not params else ":" + ",".join(f"{k}={v}" for k, v in params.items()))


AddLog = list[tuple[int, int, float]]  # (start row, stop row, seconds) of each add() call


def build(spec: str, data: Mixture, n: int) -> tuple[VectorIndex, float, AddLog]:
    """Build the index over rows 0..n of ``data``.

    Returns it, the seconds spent in the index (train + add) and the add() timings.
    """
    index = make_index(spec, data.dim)
    seconds = 0.0
    add_log: AddLog = []
    if index.needs_training:
        sample = data.rows(0, min(n, IVFPQ_TRAIN_MAX))
        started = time.perf_counter()
        index.train(sample)
        seconds += time.perf_counter() - started
        del sample
    for start, stop in add_schedule(n, spec.split(":")[0]):
        vectors = data.rows(start, stop)
        ids = np.arange(start, stop, dtype=np.int64)
        started = time.perf_counter()
        index.add(ids, vectors)
        elapsed = time.perf_counter() - started
        seconds += elapsed
        add_log.append((start, stop, elapsed))
        del vectors
        gc.collect()
    return index, seconds, add_log


def extrapolate_build_s(add_log: AddLog, n: int) -> float:
    """Seconds to add n vectors, extrapolated from the add() timings of a smaller build.

    Two models of the cost per vector at graph size x, the larger estimate wins:
    ``a + b·ln x`` fitted to the batches (when it grows), and the last batch's cost
    scaled by ``ln x / ln x_last`` (HNSW insertion visits O(log n) nodes).
    """
    mids = np.array([(start + stop) / 2 for start, stop, _ in add_log])
    costs = np.array([seconds / (stop - start) for start, stop, seconds in add_log])
    starts = np.arange(0, n, ADD_CHUNK)
    sizes = np.minimum(ADD_CHUNK, n - starts)
    points = np.maximum(starts + sizes / 2, 2.0)
    scaled = costs[-1] * np.log(points) / math.log(max(mids[-1], 2))
    estimate = float((scaled * sizes).sum())
    if len(add_log) >= 2:
        slope, intercept = np.polyfit(np.log(mids), costs, 1)
        if slope > 0:
            estimate = max(estimate, float(((intercept + slope * np.log(points)) * sizes).sum()))
    return estimate


def set_search_param(index: VectorIndex, value: int) -> None:
    """Change the search-time parameter of a built index in place (ef_search / nprobe).

    The contract has no setter for it and rebuilding would double the build cost, so
    this reaches into the backend (and fails loudly if its internals change).
    """
    inner = index._index  # type: ignore[attr-defined]
    if isinstance(index, HNSWIndex):
        inner.hnsw.efSearch = value
        index._params["ef_search"] = value
    elif isinstance(index, IVFPQIndex):
        inner.nprobe = value
        index._params["nprobe"] = value
    else:  # pragma: no cover
        raise TypeError(f"no search-time parameter for {index!r}")


# ---------------------------------------------------------------------- measuring


def time_queries(
    index: VectorIndex, queries: FloatArray, warmup: FloatArray
) -> tuple[npt.NDArray[np.float64], IdArray]:
    """Latency in ms of each single-query search, and the (m, K) ids found."""
    for i in range(len(warmup)):
        index.search(warmup[i : i + 1], K)
    latencies = np.empty(len(queries))
    found = np.empty((len(queries), K), dtype=np.int64)
    for i in range(len(queries)):
        started = time.perf_counter()
        _, ids = index.search(queries[i : i + 1], K)
        latencies[i] = 1e3 * (time.perf_counter() - started)
        found[i] = ids[0]
    return latencies, found


def recall_at_k(found: IdArray, truth: IdArray) -> float:
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist()))
            for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / K)


def disk_bytes(index: VectorIndex, scratch: Path) -> tuple[int, float]:
    """Size of the saved file and the seconds save() took; the file is deleted."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        path = Path(folder) / "index.lookalike"
        started = time.perf_counter()
        index.save(path)
        seconds = time.perf_counter() - started
        size = path.stat().st_size
    return size, seconds


def peak_estimate_gib(backend: str, n: int, dim: int) -> float:
    """Rough peak memory of building ``backend`` over n x dim vectors (the data included)."""
    row = 4 * dim
    chunk = 3 * min(n, ADD_CHUNK) * row  # generated batch, its normalised copy, temporaries
    if backend == "flat":  # half batch + copy + array, then array + its doubled successor
        peak = max(3 * math.ceil(n / 2) * row, 1.5 * n * row + chunk) + DICT_ENTRY_BYTES * n
    elif backend == "hnsw":
        peak = n * (row + 2 * HNSW_BUILD["M"] * 4 * 1.1 + DICT_ENTRY_BYTES + 9) + chunk
    else:
        peak = 3 * min(n, IVFPQ_TRAIN_MAX) * row + n * (64 + 8 + 8) + chunk
    return peak / 2**30


@dataclass
class Case:
    size: int
    dim: int
    backend: str
    note: str = ""


def plan_groups(
    n: int, args: argparse.Namespace, hnsw_logs: dict[int, AddLog]
) -> list[Case]:
    """The cases to run at size n, with HNSW moved to dim 256 when its build would take too long."""
    cases = [Case(n, FULL_DIM, "flat"), Case(n, FULL_DIM, "ivfpq")]
    hnsw_dim, note = FULL_DIM, ""
    if FULL_DIM in hnsw_logs:
        add_log = hnsw_logs[FULL_DIM]
        measured_n = add_log[-1][1]
        rate = measured_n / sum(seconds for _, _, seconds in add_log)
        estimate = extrapolate_build_s(add_log, n)
        print(f"HNSW {n:,}x{FULL_DIM} build estimate {estimate:,.0f} s (from {rate:,.0f} vec/s "
              f"at {measured_n:,}); budget {args.hnsw_budget_s:,.0f} s", flush=True)
        if estimate > args.hnsw_budget_s:
            hnsw_dim = SMALL_DIM
            note = (f"HNSW {n:,}x{FULL_DIM} build est. {estimate:,.0f} s (from {rate:,.0f} vec/s "
                    f"at {measured_n:,}) > {args.hnsw_budget_s:,.0f} s: run at dim {SMALL_DIM}")
    elif n > 200_000:
        hnsw_dim = SMALL_DIM
        note = (f"no HNSW {FULL_DIM}-d timing at a smaller size to extrapolate: "
                f"run at dim {SMALL_DIM}")
    if hnsw_dim == FULL_DIM:
        cases.insert(1, Case(n, FULL_DIM, "hnsw"))
    else:
        cases += [Case(n, SMALL_DIM, "flat", f"recall reference for HNSW at {SMALL_DIM}"),
                  Case(n, SMALL_DIM, "hnsw", note)]
    for case in cases:
        estimate = peak_estimate_gib(case.backend, case.size, case.dim)
        if estimate > args.memory_gib:
            case.note = f"skipped: estimated peak {estimate:.1f} GiB > {args.memory_gib} GiB"
    return cases


def run_case(
    case: Case,
    data: Mixture,
    queries: FloatArray,
    warmup: FloatArray,
    truth: dict[int, tuple[IdArray, float]],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], AddLog]:
    """Build one backend, measure it at each search-time setting; returns rows and build s."""
    n, dim = case.size, case.dim
    if case.backend == "flat":
        build_params: dict[str, int] = {}
        search_values: tuple[int, ...] = (0,)
    elif case.backend == "hnsw":
        build_params = {**HNSW_BUILD, "ef_search": HNSW_EF_SEARCH[0]}
        search_values = HNSW_EF_SEARCH
    else:
        build_params = {**ivfpq_params(n, dim), "nprobe": IVFPQ_NPROBE[0]}
        search_values = IVFPQ_NPROBE
    index, build_s, add_log = build(spec_string(case.backend, build_params), data, n)
    assert len(index) == n
    memory = index.memory_bytes()
    # faiss's serialize_index() (used by save()) holds the whole index twice more: a
    # std::vector and the numpy copy of it. Skip save() where that would break the budget.
    save_peak_gib = (3 * memory if case.backend != "flat" else memory) / 2**30 + 1.0
    note = case.note
    size_on_disk: int | None = None
    save_s: float | None = None
    if save_peak_gib <= args.memory_gib:
        size_on_disk, save_s = disk_bytes(index, args.scratch)
    else:
        note = "; ".join(filter(None, [note, (
            f"save() not measured: faiss serialisation keeps 2 extra copies of the index "
            f"(est. peak {save_peak_gib:.1f} GiB > {args.memory_gib:g} GiB)")]))
    rows = []
    for value in search_values:
        if value:
            set_search_param(index, value)
        latencies, found = time_queries(index, queries, warmup)
        p50 = float(np.percentile(latencies, 50))
        if case.backend == "flat":
            truth[dim] = (found, p50)
        reference, flat_p50 = truth[dim]
        rows.append({
            "size": n, "dim": dim, "backend": case.backend, "spec": index.spec,
            "build_s": build_s, "build_vec_per_s": n / build_s,
            "p50_ms": p50, "p99_ms": float(np.percentile(latencies, 99)),
            "mean_ms": float(latencies.mean()),
            "speedup_vs_flat": flat_p50 / p50, f"recall@{K}": recall_at_k(found, reference),
            "mem_bytes_per_vec": memory / n,
            "disk_bytes_per_vec": None if size_on_disk is None else size_on_disk / n,
            "save_s": save_s, "queries": len(queries), "note": note,
        })
    del index
    gc.collect()
    return rows, add_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000",
                        help="comma-separated collection sizes (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries up to 100k")
    parser.add_argument("--queries-large", type=int, default=100, help="timed queries above 100k")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries before each run")
    parser.add_argument("--hnsw-budget-s", type=float, default=900.0,
                        help="largest extrapolated HNSW build at 1280-d before using 256-d")
    parser.add_argument("--memory-gib", type=float, default=14.0,
                        help="skip cases whose estimated peak memory exceeds this")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()),
                        help="folder for the temporary saved indexes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    mixture = MixtureSpec(seed=args.seed)
    started = time.perf_counter()
    datasets: dict[int, Mixture] = {}
    hnsw_logs: dict[int, AddLog] = {}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    n_queries_max = max(args.queries, args.queries_large)
    query_sets: dict[int, FloatArray] = {}
    for n in sizes:
        m = args.queries if n <= 100_000 else args.queries_large
        truth: dict[int, tuple[IdArray, float]] = {}
        for case in plan_groups(n, args, hnsw_logs):
            if case.note.startswith("skipped"):
                print(f"{n:>9,} {case.dim:>5} {case.backend:<6} {case.note}", flush=True)
                skipped.append(f"{case.backend} {n:,}x{case.dim}: {case.note}")
                continue
            if case.dim not in datasets:
                datasets[case.dim] = Mixture(mixture, case.dim)
                all_queries = datasets[case.dim].rows(0, n_queries_max + args.warmup, QUERY_STREAM)
                query_sets[case.dim] = all_queries
            data = datasets[case.dim]
            queries = query_sets[case.dim][:m]
            warmup = query_sets[case.dim][n_queries_max : n_queries_max + args.warmup]
            if case.backend != "flat" and case.dim not in truth:
                raise RuntimeError(f"no flat reference at {n:,}x{case.dim}")
            case_rows, add_log = run_case(case, data, queries, warmup, truth, args)
            if case.backend == "hnsw":
                hnsw_logs[case.dim] = add_log
            for row in case_rows:
                rows.append(row)
                print(f"{row['size']:>9,} {row['dim']:>5} {row['spec']:<48} "
                      f"build {row['build_s']:8.1f} s  p50 {row['p50_ms']:8.3f} ms  "
                      f"p99 {row['p99_ms']:8.3f} ms  recall {row[f'recall@{K}']:.3f}  "
                      f"mem {row['mem_bytes_per_vec']:7.0f} B  "
                      f"disk {row['disk_bytes_per_vec'] or 0:7.0f} B"
                      f"  [{time.perf_counter() - started:6.0f} s]  {row['note']}", flush=True)
    total = time.perf_counter() - started
    columns = ["size", "dim", "spec", "build_s", "build_vec_per_s", "p50_ms", "p99_ms",
               "speedup_vs_flat", f"recall@{K}", "mem_bytes_per_vec", "disk_bytes_per_vec", "note"]
    print(markdown_table(rows, columns))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"total {total:,.0f} s, peak RSS {peak_gib:.1f} GiB")
    settings = {
        "sizes": sizes, "k": K, "queries": args.queries, "queries_large": args.queries_large,
        "warmup": args.warmup, "single_query_calls": True,
        "data": {"kind": "synthetic mixture of Gaussians in a latent space, projected, "
                         "L2-normalised; queries are held-out draws", **asdict(mixture),
                 "generation_block": GEN_BLOCK},
        "add_chunk": ADD_CHUNK, "flat_first_batch": "half of n (capacity ends at n)",
        "hnsw_build": HNSW_BUILD, "hnsw_ef_search": list(HNSW_EF_SEARCH),
        "ivfpq": {"nlist": "round(4*sqrt(n))", "m": "64 at 1280-d, 32 at 256-d",
                  "nbits": IVFPQ_NBITS, "train_max": IVFPQ_TRAIN_MAX,
                  "nprobe": list(IVFPQ_NPROBE)},
        "search_param_variants_share_one_build": True,
        "hnsw_budget_s": args.hnsw_budget_s, "memory_budget_gib": args.memory_gib,
        "hnsw_dims_used": sorted({r["dim"] for r in rows if r["backend"] == "hnsw"}),
        "skipped": skipped,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "total_runtime_s": round(total, 1), "peak_rss_gib": round(peak_gib, 2),
    }
    print(f"saved {save('ann', settings, rows)}")


if __name__ == "__main__":
    main()
