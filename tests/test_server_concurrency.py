"""The server under concurrent requests, over a real socket: searches run side by side,
/health answers while every worker thread is busy, and searches mixed with writes give
the answers they give alone, with nothing lost and no 5xx."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx
from conftest import THUMBNAIL, pattern, png_bytes, serving, write_images

from lookalike import Collection
from lookalike.server import create_app

TOKEN = "a-long-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Long enough for a loaded CI machine; a request that waits on a lock never comes back
# before the test releases it, so the limit only bounds a failing run.
PATIENCE_S = 30.0
CONCURRENCY = 3


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    folder = write_images(tmp_path / "photos", range(8))[0].parent
    collection_root = tmp_path / "c"
    with Collection(collection_root, configs={"global": THUMBNAIL}) as collection:
        assert collection.index([folder]).added == 8
    return collection_root


@pytest.fixture()
def url(root: Path) -> Iterator[str]:
    """The server as `lookalike serve` runs it, in a thread; its address."""
    with serving(create_app(root, token=TOKEN, concurrency=CONCURRENCY)) as port:
        yield f"http://127.0.0.1:{port}"


def search(client: Any, base: str, image: bytes) -> Any:
    return client.post(f"{base}/search", data={"k": "5"},
                       files={"image": ("q.png", image, "image/png")})


def test_searches_run_side_by_side(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each search waits until another has started too: with one search at a time (a
    # server-wide lock), the barrier breaks and the searches fail.
    barrier = threading.Barrier(2, timeout=PATIENCE_S)
    real = Collection.search_with_rankings

    def meeting(self: Collection, *args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "search_with_rankings", meeting)
    query = png_bytes(pattern(3))
    with ThreadPoolExecutor(2) as pool, httpx.Client(timeout=PATIENCE_S * 2) as client:
        answers = list(pool.map(lambda _: search(client, url, query), range(2)))
    assert [answer.status_code for answer in answers] == [200, 200]


def test_health_answers_while_every_worker_is_busy(url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # More searches than the server works on at once, each held until /health has
    # answered: a /health that needed a worker thread would wait for them. The searches
    # beyond the server's concurrency wait their turn.
    release = threading.Event()
    started = threading.Semaphore(0)
    inside, most = 0, 0
    counting = threading.Lock()
    real = Collection.search_with_rankings

    def held(self: Collection, *args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most
        with counting:
            inside += 1
            most = max(most, inside)
        started.release()
        release.wait(PATIENCE_S * 2)
        try:
            return real(self, *args, **kwargs)
        finally:
            with counting:
                inside -= 1

    monkeypatch.setattr(Collection, "search_with_rankings", held)
    query = png_bytes(pattern(3))
    with ThreadPoolExecutor(8) as pool, httpx.Client(timeout=PATIENCE_S * 3) as client:
        pending = [pool.submit(search, client, url, query) for _ in range(8)]
        try:
            for _ in range(CONCURRENCY):  # every worker thread is inside a search
                assert started.acquire(timeout=PATIENCE_S)
            # The searches are held until this answers (or times out, failing the test).
            health = httpx.get(f"{url}/health", timeout=PATIENCE_S / 3)
        finally:
            release.set()
        codes = [future.result().status_code for future in pending]
    assert health.status_code == 200 and health.json()["images"] == 8
    assert codes == [200] * 8
    assert most == CONCURRENCY


def test_searches_beside_writes_answer_as_alone(url: str) -> None:
    queries = [png_bytes(pattern(i)) for i in range(4)]
    with httpx.Client(timeout=PATIENCE_S) as client:
        alone = [search(client, url, query).json()["results"] for query in queries]

    def searcher(number: int) -> list[Any]:
        with httpx.Client(timeout=PATIENCE_S) as client:
            return [(i % 4, search(client, url, queries[i % 4]))
                    for i in range(number, number + 12)]

    def writer(number: int) -> list[Any]:
        with httpx.Client(timeout=PATIENCE_S, headers=AUTH) as client:
            answers = []
            for i in range(3):
                image = png_bytes(pattern(100 + 10 * number + i))
                answers.append(client.post(f"{url}/images", files={
                    "image": (f"new{number}-{i}.png", image, "image/png")}))
                answers.append(client.put(f"{url}/images/1/annotations",
                                          json={"tags": [f"w{number}-{i}"]}))
            return answers

    with ThreadPoolExecutor(8) as pool:
        searches = [pool.submit(searcher, n) for n in range(6)]
        writes = [pool.submit(writer, n) for n in range(2)]
        searched = [pair for future in searches for pair in future.result()]
        written = [answer for future in writes for answer in future.result()]
    assert all(answer.status_code in (200, 201) for answer in written), \
        [(answer.status_code, answer.text) for answer in written]
    assert all(answer.status_code == 200 for _, answer in searched)
    # New images may enter a result list; each original image keeps its place and score
    # relative to the other originals.
    originals = {result["image_id"] for results in alone for result in results}
    for which, answer in searched:
        kept = [(result["image_id"], result["fused_score"])
                for result in answer.json()["results"] if result["image_id"] in originals]
        expected = [(result["image_id"], result["fused_score"]) for result in alone[which]]
        assert [i for i, _ in kept] == [i for i, _ in expected][:len(kept)]
        assert [s for _, s in kept] == pytest.approx([s for _, s in expected][:len(kept)],
                                                     abs=1e-5)
    with httpx.Client(timeout=PATIENCE_S) as client:
        listing = client.get(f"{url}/images", params={"limit": 500}).json()["images"]
    added = {answer.json()["image_id"] for answer in written if "image_id" in answer.json()}
    assert len(added) == 6
    assert added <= {image["id"] for image in listing} and len(listing) == 14
