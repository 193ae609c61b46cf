"""Contract tests for the vector index backends, with FlatIndex as the oracle."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.errors import (
    LookalikeError,
    ManifestMismatchError,
    MissingDependencyError,
    ValidationError,
)
from lookalike.index import (
    INDEXES,
    FlatIndex,
    HNSWIndex,
    IVFPQIndex,
    VectorIndex,
    available_indexes,
    choose_index_spec,
    get_index_class,
    load_index,
    make_index,
    parse_index_spec,
    register_index,
    registered_indexes,
)

DIM = 64
N = 3000

# Small, fast settings for each backend. Every registered backend must appear here,
# so a new backend cannot slip past the contract tests.
SPECS = {
    "flat": "flat",
    "hnsw": "hnsw:M=16,ef_construction=40,ef_search=64",
    "ivfpq": "ivfpq:nlist=16,m=64,nbits=4,nprobe=8",
}
# recall@10 against FlatIndex; random ids score about 0.003 on this data.
MIN_RECALL = {"flat": 1.0, "hnsw": 0.9, "ivfpq": 0.5}
# How far a returned score may be from the exact cosine of the returned vector.
SCORE_TOLERANCE = {"flat": 1e-5, "hnsw": 1e-5, "ivfpq": 0.25}

BACKENDS = available_indexes()

Factory = Callable[[], VectorIndex]
Data = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]


@pytest.fixture(scope="module", autouse=True)
def _faiss_single_threaded() -> Iterator[None]:
    """Run faiss on one thread here, restoring the setting afterwards.

    faiss's OpenMP k-means slows down by 10x or more when its threads compete with
    other processes for a small machine's cores; one thread keeps these tests fast
    and their timing steady. The library itself leaves faiss's settings alone.
    """
    try:
        import faiss
    except ImportError:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _unit(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(
        np.float32
    )
    return unit


@pytest.fixture(scope="module")
def data() -> Data:
    """Clustered unit vectors (so approximate search is meaningful), ids and queries."""
    rng = np.random.default_rng(1234)
    centers = rng.standard_normal((30, DIM))
    vectors = _unit(centers[rng.integers(0, 30, N)] + 0.35 * rng.standard_normal((N, DIM)))
    ids = (np.arange(N, dtype=np.int64) * 7 + 1000).astype(np.int64)
    picks = rng.choice(N, 100, replace=False)
    queries = _unit(vectors[picks] + 0.1 * rng.standard_normal((100, DIM)))
    return ids, vectors, queries


@pytest.fixture(scope="module")
def trained_ivfpq(
    tmp_path_factory: pytest.TempPathFactory,
    data: Data,
) -> Path:
    """An empty IVF-PQ index trained once on the data, saved so tests can load copies."""
    index = make_index(SPECS["ivfpq"], DIM)
    index.train(data[1][:1000])
    path = tmp_path_factory.mktemp("ivfpq") / "trained.idx"
    index.save(path)
    return path


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest, trained_ivfpq: Path) -> Factory:
    """Builds fresh, empty, ready-to-add indexes of one backend."""
    name: str = request.param
    if name == "ivfpq":
        return lambda: load_index(trained_ivfpq)
    return lambda: make_index(SPECS[name], DIM)


@pytest.fixture(scope="module")
def flat_full(
    data: Data,
) -> FlatIndex:
    index = FlatIndex(DIM)
    index.add(data[0], data[1])
    return index


def _recall(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    hits = [
        len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist()))
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.sum(hits) / np.sum(truth >= 0))


def _full(factory: Factory, data: Data) -> VectorIndex:
    index = factory()
    index.add(data[0], data[1])
    return index


# ---------------------------------------------------------------------- registry


def test_every_backend_is_covered() -> None:
    assert set(registered_indexes()) == set(SPECS)
    assert set(BACKENDS) == set(SPECS), "faiss-cpu should be installed for the tests"
    assert available_indexes() == sorted(available_indexes())


def test_make_index_parses_specs() -> None:
    flat = make_index("flat", DIM)
    assert isinstance(flat, FlatIndex) and flat.dim == DIM and flat.params == {}
    hnsw = make_index(" HNSW : M=16 , ef_search=128 ", 32)
    assert isinstance(hnsw, HNSWIndex)
    assert hnsw.params == {"M": 16, "ef_construction": 80, "ef_search": 128}
    ivfpq = make_index("ivfpq:nlist=256,m=32", DIM)
    assert isinstance(ivfpq, IVFPQIndex)
    assert ivfpq.params == {"nlist": 256, "m": 32, "nbits": 8, "nprobe": 16}
    assert make_index("hnsw:", DIM).params == HNSWIndex.default_params
    # The spec property round-trips.
    again = make_index(hnsw.spec, 32)
    assert type(again) is HNSWIndex and again.params == hnsw.params
    assert parse_index_spec("hnsw:M=8") == ("hnsw", {"M": 8})
    assert get_index_class("ivfpq") is IVFPQIndex


def test_ivfpq_picks_m_automatically() -> None:
    assert make_index("ivfpq", 64).params["m"] == 32
    assert make_index("ivfpq", 100).params["m"] == 25
    assert make_index("ivfpq", 1280).params["m"] == 32


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("annoy", ["expected an index backend among", "got 'annoy'", "flat", "hnsw", "ivfpq"]),
        ("hnsw:efsearch=3", ["unknown parameter 'efsearch'", "M", "ef_construction", "ef_search"]),
        ("flat:M=3", ["unknown parameter 'M'", "(none)"]),
        ("hnsw:M", ["expected key=value"]),
        ("hnsw:M=16,", ["expected key=value"]),
        ("hnsw:M=abc", ["expected a number"]),
        ("hnsw:M=1.5", ["expected an integer"]),
        ("hnsw:M=8,M=9", ["given twice"]),
        ("hnsw:M=1", ["M: expected an integer >= 2"]),
        ("hnsw:ef_search=0", ["ef_search: expected an integer >= 1"]),
        ("ivfpq:m=7", ["m: expected a divisor of dim 64"]),
        ("ivfpq:nbits=0", ["nbits"]),
        ("ivfpq:nlist=0", ["nlist"]),
    ],
)
def test_make_index_rejects_bad_specs(spec: str, fragments: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        make_index(spec, DIM)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("dim", [0, -3, 2.5, True, "64"])
def test_make_index_rejects_bad_dim(dim: object) -> None:
    with pytest.raises(ValidationError, match="dim: expected a positive integer"):
        make_index("flat", dim)  # type: ignore[arg-type]


def test_constructor_rejects_unknown_and_mistyped_params() -> None:
    with pytest.raises(TypeError):
        HNSWIndex(DIM, ef=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="expected an integer"):
        HNSWIndex(DIM, M=2.5)  # type: ignore[arg-type]


def test_choose_index_spec() -> None:
    assert choose_index_spec(0) == "flat"
    assert choose_index_spec(49_999) == "flat"
    assert choose_index_spec(50_000) == "hnsw"
    assert choose_index_spec(10**9) == "hnsw"
    assert choose_index_spec(100, exact_below=100) == "hnsw"
    assert choose_index_spec(99, exact_below=100) == "flat"
    with pytest.raises(ValidationError, match="expected a non-negative integer"):
        choose_index_spec(-1)
    with pytest.raises(ValidationError):
        choose_index_spec(10, exact_below=-5)


def test_register_index() -> None:
    @register_index
    class Exact2(FlatIndex):
        name = "exact2"

    try:
        assert "exact2" in available_indexes()
        assert isinstance(make_index("exact2", 4), Exact2)
        assert register_index(Exact2) is Exact2  # registering the same class again is harmless
    finally:
        INDEXES.remove("exact2")
    assert "exact2" not in available_indexes()

    class Impostor(FlatIndex):
        name = "flat"

    with pytest.raises(ValidationError, match="already registered"):
        register_index(Impostor)

    class BadName(FlatIndex):
        name = "Bad Name"

    with pytest.raises(ValidationError, match="lowercase identifier"):
        register_index(BadName)


def test_missing_faiss_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    assert available_indexes() == ["flat"]
    with pytest.raises(MissingDependencyError, match=r"faiss-cpu.*lookalike\[faiss\]"):
        make_index("hnsw", DIM)
    index = HNSWIndex(DIM)  # constructing only stores parameters
    with pytest.raises(MissingDependencyError, match="the hnsw index"):
        index.add([1], np.ones((1, DIM)))
    with pytest.raises(MissingDependencyError, match="the ivfpq index"):
        IVFPQIndex(DIM).train(np.ones((300, DIM)))


# ---------------------------------------------------------------------- flat oracle


def test_flat_equals_brute_force(
    flat_full: FlatIndex,
    data: Data,
) -> None:
    ids, vectors, queries = data
    sims = queries @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :25]
    scores, found = flat_full.search(queries, 25)
    np.testing.assert_array_equal(found, ids[order])
    np.testing.assert_allclose(scores, np.take_along_axis(sims, order, axis=1), atol=1e-6)
    # k above the count returns everything, ordered, then padding.
    small = FlatIndex(DIM)
    small.add(ids[:5], vectors[:5])
    scores, found = small.search(queries[:3], 8)
    expect_order = np.argsort(-(queries[:3] @ vectors[:5].T), axis=1)
    np.testing.assert_array_equal(found[:, :5], ids[:5][expect_order])
    assert (found[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()


def test_flat_normalises_vectors_and_queries() -> None:
    index = FlatIndex(3)
    index.add([10, 11], [[3.0, 0, 0], [0, 0, 0.5]])
    scores, found = index.search([0, 0, 7], 2)
    np.testing.assert_array_equal(found, [[11, 10]])
    np.testing.assert_allclose(scores, [[1.0, 0.0]], atol=1e-6)


# ---------------------------------------------------------------------- contract


def test_search_agrees_with_flat(
    factory: Factory,
    flat_full: FlatIndex,
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = _full(factory, data)
    assert len(index) == N
    np.testing.assert_array_equal(index.ids(), ids)
    scores, found = index.search(queries, 10)
    assert scores.shape == found.shape == (len(queries), 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    _, truth = flat_full.search(queries, 10)
    assert _recall(found, truth) >= MIN_RECALL[index.name]
    # Scores descend, and are the cosine of the returned vectors.
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert np.isin(found, ids).all()
    rows = np.searchsorted(ids, found)
    exact = np.einsum("md,mkd->mk", queries, vectors[rows])
    assert np.abs(scores - exact).max() <= SCORE_TOLERANCE[index.name]
    # One query as a 1-D array is a batch of one.
    one_scores, one_found = index.search(queries[0], 10)
    assert one_found.shape == (1, 10)
    np.testing.assert_array_equal(one_found[0], found[0])
    np.testing.assert_allclose(one_scores[0], scores[0], atol=1e-6)
    # A stored vector finds itself first.
    _, self_found = index.search(vectors[:20], 1)
    assert np.mean(self_found[:, 0] == ids[:20]) >= 0.9


def test_remove(
    factory: Factory,
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = _full(factory, data)
    gone = ids[::4]
    assert index.remove(np.concatenate([gone, [5, -1, 10**12]])) == len(gone)
    assert len(index) == N - len(gone)
    live = np.setdiff1d(ids, gone)
    np.testing.assert_array_equal(index.ids(), live)
    # Querying with the removed vectors themselves never returns them.
    for q in (queries, vectors[::4][:100]):
        _, found = index.search(q, 10)
        assert not np.isin(found, gone).any()
        assert (found >= 0).mean() > 0.9
    assert index.remove(gone) == 0  # removing again is a no-op
    assert index.remove([]) == 0
    assert len(index) == N - len(gone)
    # Compare with the oracle built from the survivors.
    oracle = FlatIndex(DIM)
    oracle.add(live, vectors[np.isin(ids, live)])
    _, truth = oracle.search(queries, 10)
    _, found = index.search(queries, 10)
    assert _recall(found, truth) >= MIN_RECALL[index.name]


def test_add_after_remove(
    factory: Factory,
    data: Data,
) -> None:
    ids, vectors, _ = data
    index = factory()
    index.add(ids[:2000], vectors[:2000])
    index.remove(ids[:500])
    # Fresh ids, and a removed id coming back with another vector.
    new_ids = np.concatenate([ids[2000:2400], ids[:1]])
    new_vectors = vectors[2000:2401]
    index.add(new_ids, new_vectors)
    assert len(index) == 2000 - 500 + 401
    assert set(index.ids().tolist()) == set(ids[500:2400].tolist()) | {int(ids[0])}
    _, found = index.search(new_vectors, 5)
    assert np.mean([new_ids[i] in found[i] for i in range(len(new_ids))]) >= 0.95
    assert not np.isin(found, ids[1:500]).any()


def test_duplicate_ids_rejected(
    factory: Factory,
    data: Data,
) -> None:
    ids, vectors, _ = data
    index = factory()
    index.add(ids[:300], vectors[:300])
    with pytest.raises(ValidationError, match="already in") as info:
        index.add(ids[295:305], vectors[295:305])
    assert all(str(i) in str(info.value) for i in ids[295:300])
    with pytest.raises(ValidationError, match=f"repeat within the batch: \\[{ids[400]}\\]"):
        index.add(ids[[400, 401, 400]], vectors[400:403])
    assert len(index) == 300  # a rejected batch leaves the index unchanged
    np.testing.assert_array_equal(index.ids(), ids[:300])


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1, 2], np.ones((2, DIM - 1)), r"expected a \(n, 64\) float32-convertible array"),
        ([1, 2], np.ones((2, DIM, 1)), "expected"),
        ([1], np.ones(DIM), "expected"),
        ([1, 2], np.array([["a"] * DIM] * 2), "expected"),
        ([1, 2], np.ones((2, DIM), dtype=complex), "expected"),
        ([1, 2], np.ones((3, DIM)), "expected as many ids as vectors"),
        ([[1, 2]], np.ones((2, DIM)), "expected a 1-D array"),
        ([1.0, 2.0], np.ones((2, DIM)), "expected a 1-D array of non-negative int64 ids"),
        ([1, -2], np.ones((2, DIM)), "expected.*negative ids"),
        ([1, 2], np.full((2, DIM), np.nan), "expected.*finite"),
        ([1, 2], np.zeros((2, DIM)), "expected.*non-zero"),
    ],
)
def test_add_rejects_bad_input(
    factory: Factory, ids: object, vectors: npt.NDArray[np.generic], message: str
) -> None:
    index = factory()
    with pytest.raises(ValidationError, match=message):
        index.add(ids, vectors)  # type: ignore[arg-type]
    assert len(index) == 0


def test_search_rejects_bad_input(
    factory: Factory,
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = factory()
    index.add(ids[:300], vectors[:300])
    for k in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValidationError, match="k: expected an integer >= 1"):
            index.search(queries, k)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"queries: expected a \(n, 64\)"):
        index.search(queries[:, :10], 3)
    with pytest.raises(ValidationError, match="expected"):
        index.search(np.ones((2, 3, DIM)), 3)
    with pytest.raises(ValidationError, match="expected"):
        index.remove([[1, 2]])
    scores, found = index.search(np.empty((0, DIM)), 4)
    assert scores.shape == found.shape == (0, 4)
    assert index.search(queries[:2], np.int64(3))[1].shape == (2, 3)


def test_k_larger_than_len_pads(
    factory: Factory,
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = factory()
    scores, found = index.search(queries[:3], 4)  # empty index
    assert (found == -1).all() and np.isneginf(scores).all()
    assert scores.dtype == np.float32 and found.dtype == np.int64
    index.add(ids[:5], vectors[:5])
    scores, found = index.search(queries[:3], 12)
    assert found.shape == (3, 12)
    assert (found[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()
    # IVF-PQ only scans nprobe lists, so it may find fewer than the 5 stored.
    for row_scores, row_found in zip(scores, found, strict=True):
        real = row_found >= 0
        assert set(row_found[real].tolist()) <= set(ids[:5].tolist())
        assert np.isfinite(row_scores[real]).all()
        assert index.name == "ivfpq" or real.sum() == 5
    index.remove(ids[:5])
    assert len(index) == 0
    assert (index.search(queries[:2], 3)[1] == -1).all()


def test_save_load_round_trip(
    factory: Factory,
    tmp_path: Path,
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = factory()
    index.add(ids[:1500], vectors[:1500])
    index.remove(ids[:1500:3])  # leaves tombstones in HNSW
    path = tmp_path / "sub" / "my.index"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["my.index"]  # no temp file left
    for loaded in (load_index(path), VectorIndex.load(path), type(index).load(path)):
        assert type(loaded) is type(index)
        assert loaded.dim == DIM and loaded.params == index.params and len(loaded) == len(index)
        np.testing.assert_array_equal(loaded.ids(), index.ids())
        for k in (10, 2000):
            expected = index.search(queries, k)
            got = loaded.search(queries, k)
            np.testing.assert_array_equal(got[1], expected[1])
            np.testing.assert_array_equal(got[0], expected[0])
        assert 0 < loaded.memory_bytes() <= index.memory_bytes()
    # The loaded index keeps working, and saving over an existing file works.
    loaded = load_index(path)
    loaded.remove(ids[1:30])
    loaded.add(ids[1500:1600], vectors[1500:1600])
    loaded.save(path)
    again = load_index(path)
    np.testing.assert_array_equal(again.ids(), loaded.ids())
    np.testing.assert_array_equal(again.search(queries, 5)[1], loaded.search(queries, 5)[1])


def test_save_load_empty(factory: Factory, tmp_path: Path) -> None:
    index = factory()
    index.save(tmp_path / "empty.idx")
    loaded = load_index(tmp_path / "empty.idx")
    assert type(loaded) is type(index) and len(loaded) == 0
    assert loaded.needs_training == index.needs_training


def test_load_as_the_wrong_backend(tmp_path: Path) -> None:
    index = FlatIndex(DIM)
    index.add([1], np.ones((1, DIM)))
    path = tmp_path / "flat.idx"
    index.save(path)
    with pytest.raises(ManifestMismatchError, match=r"holds a 'flat' index, expected a 'hnsw'"):
        HNSWIndex.load(path)


@pytest.fixture
def saved_hnsw(
    tmp_path: Path,
    data: Data,
) -> Iterator[Path]:
    index = make_index(SPECS["hnsw"], DIM)
    index.add(data[0][:200], data[1][:200])
    path = tmp_path / "hnsw.idx"
    index.save(path)
    yield path


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip_payload", "garbage", "empty", "bad_header", "future_version"],
)
def test_corrupt_file_gives_a_clear_error(saved_hnsw: Path, damage: str) -> None:
    blob = bytearray(saved_hnsw.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) - 100]
    elif damage == "flip_payload":
        blob[-50] ^= 0xFF
    elif damage == "garbage":
        blob = bytearray(b"not an index at all" * 10)
    elif damage == "empty":
        blob = bytearray()
    elif damage == "bad_header":
        blob[30] = ord("}")
    elif damage == "future_version":
        blob = blob.replace(b'"version": 1', b'"version": 9')
    saved_hnsw.write_bytes(bytes(blob))
    expected = ManifestMismatchError if damage == "future_version" else LookalikeError
    with pytest.raises(expected) as info:
        load_index(saved_hnsw)
    assert str(saved_hnsw) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LookalikeError, match="cannot read index file"):
        load_index(tmp_path / "nope.idx")


def test_memory_bytes(
    data: Data,
    trained_ivfpq: Path,
) -> None:
    ids, vectors, _ = data
    sizes = {}
    for name in BACKENDS:
        index = load_index(trained_ivfpq) if name == "ivfpq" else make_index(SPECS[name], DIM)
        before = index.memory_bytes()
        index.add(ids, vectors)
        sizes[name] = index.memory_bytes()
        assert sizes[name] > before >= 0
    raw = vectors.nbytes
    assert raw <= sizes["flat"] < 3 * raw
    assert sizes["hnsw"] > raw
    assert sizes["ivfpq"] < raw / 2


# ---------------------------------------------------------------------- backend specifics


def test_hnsw_tombstones_and_compaction(
    data: Data,
) -> None:
    ids, vectors, queries = data
    index = make_index(SPECS["hnsw"], DIM)
    assert isinstance(index, HNSWIndex)
    index.add(ids[:1000], vectors[:1000])
    index.remove(ids[:400])
    assert index.n_tombstones == 400 and len(index) == 600
    _, found = index.search(vectors[:50], 10)  # removed vectors as queries
    assert not np.isin(found, ids[:400]).any() and (found >= 0).all()
    # Removing past half of the graph rebuilds it without tombstones.
    index.remove(ids[400:700])
    assert index.n_tombstones == 0 and len(index) == 300
    np.testing.assert_array_equal(index.ids(), ids[700:1000])
    oracle = FlatIndex(DIM)
    oracle.add(ids[700:1000], vectors[700:1000])
    _, found = index.search(queries, 10)
    assert _recall(found, oracle.search(queries, 10)[1]) >= 0.9
    _, self_found = index.search(vectors[700:800], 1)
    assert np.mean(self_found[:, 0] == ids[700:800]) >= 0.95
    index.remove(ids[700:1000])
    assert len(index) == 0 and index.n_tombstones == 0


def test_ivfpq_training(
    data: Data,
) -> None:
    ids, vectors, _ = data
    index = make_index("ivfpq:nlist=8,m=16,nbits=4", DIM)
    assert isinstance(index, IVFPQIndex)
    assert index.needs_training and index.min_training_vectors == 16
    assert (index.search(vectors[:2], 3)[1] == -1).all()  # untrained and empty
    with pytest.raises(ValidationError, match="at least 16 vectors") as info:
        index.add(ids[:10], vectors[:10])
    assert "got 10" in str(info.value)
    with pytest.raises(ValidationError, match="expected at least 16 vectors, got 5"):
        index.train(vectors[:5])
    assert index.needs_training and len(index) == 0
    index.add(ids[:200], vectors[:200])  # trains on the first batch
    assert not index.needs_training and len(index) == 200
    index.add(ids[200:205], vectors[200:205])  # later small batches are fine
    assert len(index) == 205
    with pytest.raises(ValidationError, match="cannot retrain"):
        index.train(vectors[:100])
    # train() returns the index, so it chains.
    other = make_index("ivfpq:nlist=8,m=16,nbits=4", DIM).train(vectors[:100])
    assert not other.needs_training


def test_flat_and_hnsw_need_no_training(
    data: Data,
) -> None:
    for name in ("flat", "hnsw"):
        index = make_index(SPECS[name], DIM)
        assert not index.needs_training
        assert index.train(data[1][:10]) is index
        assert len(index) == 0
