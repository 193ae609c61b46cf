"""BM25 full-text search over image annotations, stored in a tantivy index in one folder.

Ranking is Okapi BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework:
BM25 and Beyond", 2009) summed over the annotation fields, each with its own boost.
Every field is indexed twice: as written (lower-cased words) and through tantivy's
English Porter stemmer (``<field>_stem``, at half the field's boost), so "cats" finds
"cat" while an exact match still ranks above a stemmed one.

The index is derived data: the catalog is the source of truth. :meth:`FullTextIndex.write`
commits a batch of upserts and deletes atomically (tantivy swaps ``meta.json``), then
records the caller's ``state`` (which catalog revision the index reflects) in
``lookalike_state.json``. A crash between the two leaves the old state with the new
documents; since a write deletes every id it touches before adding, replaying the same
batch gives the same index. Only one process may write at a time (tantivy's lock file);
any number may search.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from lookalike.errors import CollectionError, MissingDependencyError, ValidationError, expect
from lookalike.paths import atomic_write_bytes

FIELDS = ("caption", "tags", "categories", "labels", "objects", "keywords", "description")
DEFAULT_BOOSTS: Mapping[str, float] = MappingProxyType({
    "caption": 1.0, "tags": 1.5, "categories": 1.5, "labels": 1.0, "objects": 1.0,
    "keywords": 1.5, "description": 1.0})
STEM_SUFFIX = "_stem"
STEM_WEIGHT = 0.5
STATE_FILE = "lookalike_state.json"

_HEAP_BYTES = 32_000_000  # tantivy's writer buffer; the batches here are small
_MAX_ID = 2**64 - 1
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class TextDocument:
    """The searchable text of one image, by field name (one of :data:`FIELDS`)."""

    image_id: int
    fields: Mapping[str, str]

    def __post_init__(self) -> None:
        expect(isinstance(self.image_id, int) and not isinstance(self.image_id, bool)
               and 0 <= self.image_id <= _MAX_ID,
               f"expected an image id between 0 and 2**64-1, got {self.image_id!r}")
        expect(isinstance(self.fields, Mapping),
               f"expected a mapping of field name to text, got {type(self.fields).__name__}")
        for name, text in self.fields.items():
            expect(name in FIELDS, f"expected a field among {FIELDS}, got {name!r}")
            expect(isinstance(text, str),
                   f"expected the text of field {name!r} as a str, got {type(text).__name__}")
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


class FullTextIndex:
    """A tantivy index of :class:`TextDocument` rows in ``folder``; see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._index: Any = None
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one tantivy writer per folder, even per process

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> FullTextIndex:
        """Create the index, or reopen the one in ``folder``; a no-op when already open."""
        with self._open_lock:
            if self._index is None:
                self._index = self._open_index()
        return self

    def _open_index(self) -> Any:
        tantivy = _import_tantivy()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return tantivy.Index(_schema(tantivy), path=str(self.folder), reuse=True)
        except (OSError, ValueError) as error:
            raise CollectionError(
                f"{self.folder}: expected a Lookalike text index, got one that cannot be "
                f"opened ({error}); delete this folder to rebuild it from the catalog"
            ) from error

    def close(self) -> None:
        """Drop the index handles; :meth:`open` reopens it."""
        self._index = None

    def __enter__(self) -> FullTextIndex:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def write(self, upserts: Sequence[TextDocument], deletes: Sequence[int],
              state: dict[str, Any]) -> None:
        """Replace the documents of ``upserts``, remove ``deletes``, commit, then record
        ``state``. Replaying a batch after a crash is harmless (see the module docstring)."""
        touched = _check_batch(upserts, deletes)
        payload = _encode_state(state)
        index = self._require()
        tantivy = _import_tantivy()
        with self._write_lock:
            writer = self._writer(index)
            try:
                for image_id in touched:
                    # delete_documents_by_term silently misses u64 fields (tantivy 0.27).
                    writer.delete_documents_by_query(
                        tantivy.Query.term_query(index.schema, "id", image_id))
                for document in upserts:
                    writer.add_document(_tantivy_document(tantivy, document))
                writer.commit()
                writer.wait_merging_threads()  # no merge thread outlives the writer
            finally:
                # Releases the lock file at once, even when the commit failed (a traceback
                # would otherwise keep the writer alive); hence no helper holds it either.
                del writer
            index.reload()
            atomic_write_bytes(self.folder / STATE_FILE, payload)

    def clear(self) -> None:
        """Delete every document and the recorded state (first, so that a crash midway
        leaves no state claiming documents the index has lost)."""
        index = self._require()
        with self._write_lock:
            (self.folder / STATE_FILE).unlink(missing_ok=True)
            writer = self._writer(index)
            try:
                writer.delete_all_documents()
                writer.commit()
                writer.wait_merging_threads()
            finally:
                del writer
            index.reload()

    def state(self) -> dict[str, Any] | None:
        """The ``state`` of the last completed :meth:`write`; None if none or unreadable."""
        try:
            state = json.loads((self.folder / STATE_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    # -- reading ----------------------------------------------------------------------------

    def count(self) -> int:
        """How many documents the index holds."""
        index = self._require()
        index.reload()
        return int(index.searcher().num_docs)

    def search(self, text: str, k: int, *,
               boosts: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
        """The ``k`` best (image id, BM25 score) pairs for ``text``, best first.

        ``text`` may use tantivy's query syntax (``tags:cat``, ``"red dress"``, ``-dog``);
        text that does not parse as a query, or cannot run, is searched as its plain
        words, so user input never raises. ``boosts`` overrides :data:`DEFAULT_BOOSTS`.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"expected a non-empty query text, got {text!r}")
        expect(isinstance(k, int) and not isinstance(k, bool) and k >= 1,
               f"expected k to be a positive integer, got {k!r}")
        weights = _field_boosts(boosts)
        index = self._require()
        if not has_words(text):
            return []  # no word to match: tantivy's ``*`` would match every image alike
        index.reload()  # cheap (tens of µs); shows commits made by another process
        searcher = index.searcher()
        for query in _queries(index, text, weights):
            try:
                hits = searcher.search(query, k, count=False).hits
            except ValueError:  # parsed, yet not runnable here (``caption:*`` needs a fast field)
                continue
            ids = searcher.fast_field_values("id", [address for _, address in hits])
            return [(int(image_id), float(score))
                    for (score, _), image_id in zip(hits, ids, strict=True)]
        return []

    # -- helpers ----------------------------------------------------------------------------

    def _require(self) -> Any:
        if self._index is None:
            raise CollectionError(f"{self.folder}: the text index is not open; call open() first")
        return self._index

    def _writer(self, index: Any) -> Any:
        try:
            return index.writer(heap_size=_HEAP_BYTES, num_threads=1)
        except ValueError as error:
            if "LockBusy" in str(error):
                raise CollectionError(
                    f"{self.folder}: another process is writing the text index; try again "
                    f"when it has finished (or let the server make the change)") from error
            raise CollectionError(f"{self.folder}: cannot write the text index ({error})") \
                from error


def _import_tantivy() -> Any:
    try:
        import tantivy
    except ImportError as error:
        raise MissingDependencyError("tantivy", "full-text search", "text") from error
    return tantivy


def _schema(tantivy: Any) -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    for name in FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="default")
        builder.add_text_field(name + STEM_SUFFIX, stored=False, tokenizer_name="en_stem")
    return builder.build()


def _tantivy_document(tantivy: Any, document: TextDocument) -> Any:
    row = tantivy.Document()
    row.add_unsigned("id", document.image_id)
    for name, text in document.fields.items():
        clean = utf8_safe(text)
        row.add_text(name, clean)
        row.add_text(name + STEM_SUFFIX, clean)
    return row


def utf8_safe(text: str) -> str:
    """``text`` with lone surrogates (from bytes decoded with surrogateescape, as EXIF
    strings can be) replaced by "?": tantivy and tokenizers take UTF-8 only, and one such
    string would otherwise fail its whole batch."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _check_batch(upserts: Sequence[TextDocument], deletes: Sequence[int]) -> list[int]:
    """Every id the batch touches, sorted; an id may appear once, in one of the lists."""
    for document in upserts:
        expect(isinstance(document, TextDocument),
               f"expected TextDocument upserts, got {type(document).__name__}")
    for image_id in deletes:
        expect(isinstance(image_id, int) and not isinstance(image_id, bool)
               and 0 <= image_id <= _MAX_ID,
               f"expected image ids between 0 and 2**64-1 to delete, got {image_id!r}")
    ids = [document.image_id for document in upserts] + list(deletes)
    touched = sorted(set(ids))
    if len(touched) != len(ids):
        repeated = sorted({image_id for image_id in ids if ids.count(image_id) > 1})
        raise ValidationError(f"expected each image id once in a write, got {repeated[:10]} "
                              "more than once (in upserts or deletes)")
    return touched


def _encode_state(state: dict[str, Any]) -> bytes:
    """The state as JSON, checked before the commit so a bad state cannot follow one."""
    expect(isinstance(state, dict), f"expected the state as a dict, got {type(state).__name__}")
    try:
        return json.dumps(state, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise ValidationError(f"expected a JSON-serialisable state, got {error}") from error


def _field_boosts(boosts: Mapping[str, float] | None) -> dict[str, float]:
    """Boost per tantivy field: the given or default boost, and half of it for the
    stemmed copy."""
    merged = dict(DEFAULT_BOOSTS)
    for name, boost in (boosts or {}).items():
        expect(name in FIELDS, f"expected boosts for fields among {FIELDS}, got {name!r}")
        expect(isinstance(boost, int | float) and math.isfinite(boost) and boost >= 0,
               f"expected a finite boost >= 0 for {name!r}, got {boost!r}")
        merged[name] = float(boost)
    weights = {}
    for name, boost in merged.items():
        weights[name] = boost
        weights[name + STEM_SUFFIX] = boost * STEM_WEIGHT
    return weights


def has_words(text: str) -> bool:
    """Whether ``text`` holds a word (letters or digits) to search by: ``*`` or ``?`` do not,
    and match nothing, by their words or by their meaning."""
    return _WORD.search(text) is not None


def _queries(index: Any, text: str, weights: dict[str, float]) -> Iterator[Any]:
    """Queries for ``text`` to try in turn: as tantivy query syntax, then as its words.

    Text that is not a valid query (an unbalanced quote, an unknown field, a bare
    ``AND``) or whose query cannot run is searched as its lower-cased words, each quoted
    so that none is an operator; the words are OR-ed, as the parser does.
    """
    fields = list(weights)
    parsed = _parse(index, text, fields, weights)
    if parsed is not None:
        yield parsed
    words = _WORD.findall(text.lower())
    if words:
        fallback = _parse(index, " ".join(f'"{word}"' for word in words), fields, weights)
        if fallback is not None:
            yield fallback


def _parse(index: Any, text: str, fields: list[str], weights: dict[str, float]) -> Any:
    try:
        return index.parse_query(text, fields, field_boosts=weights)
    except ValueError:
        return None
