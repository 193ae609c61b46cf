"""The channel contract: one kind of evidence that a collection stores and searches.

A channel is four small parts, each replaceable on its own:

* the **model**: :meth:`Channel.extract` turns a batch of decoded images into what the
  channel keeps of each (vectors, keypoints, labels), after an optional
  :meth:`Channel.train` on a sample (a vocabulary tree);
* the **records**: its :class:`RecordCodec` turns that into catalog rows;
* **persistence**: :meth:`Channel.store` writes the rows (and whatever else the channel
  owns: annotations, the people of re-embedded faces) through the catalog's repositories,
  inside the batch's transaction, never with SQL of its own;
* **derived structures** and **search**: :meth:`Channel.attach` ties the channel to the
  catalog, whose rows it indexes (a vector index, inverted files, a full-text index) and
  keeps in step (:meth:`Channel.mark_stale`, :meth:`Channel.save_cache`), and
  :meth:`Channel.search` answers a query with :class:`~lookalike.results.Hit` objects
  carrying the channel's typed evidence.

:class:`VectorChannel` is the contract for channels whose rows start with a unit vector;
:class:`~lookalike.collection.vector_index.DerivedVectorIndex` does their indexing.
Channels are declared once, by a :class:`~lookalike.collection.registry.ChannelSpec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from lookalike.collection.vector_index import (
    DerivedVectorIndex,
    Layout,
    RowLayoutError,
    Whitening,
)
from lookalike.errors import CollectionError, ValidationError
from lookalike.images import Box
from lookalike.regions import Region
from lookalike.results import Hit
from lookalike.storage import Catalog, Transaction


class RecordCodec(Protocol):
    """How one image's extracted records become catalog rows."""

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        """One blob per catalog row (none for an image with nothing to store)."""

    def is_blank(self, extracted: np.ndarray) -> bool:
        """True when an image gave nothing searchable and should be reported as failed."""


STORAGES = ("float32", "int8")


def check_storage(storage: object) -> None:
    """Raise unless ``storage`` names a way :class:`FloatRows` keeps vectors."""
    if storage not in STORAGES:
        raise ValidationError(f"expected a vector storage among {STORAGES}, got {storage!r}")


class FloatRows:
    """Rows of a unit vector of ``dim`` first, then ``extra`` float32 values (a face's box
    and landmarks, a region's box and label).

    ``storage`` is how the vector is kept: ``float32``, or ``int8``, a quarter of the bytes:
    each vector scaled so its largest component is 127 and rounded, its scale kept as one
    float32 before it (a 1280-d unit vector keeps its direction to a cosine above 0.9995;
    BENCHMARKS.md measures what it does to search). Rows decode to float32 either way."""

    def __init__(self, dim: int, extra: int = 0, storage: str = "float32") -> None:
        check_storage(storage)
        self.dim = dim
        self.extra = extra
        self.storage = storage

    @property
    def width(self) -> int:
        return self.dim + self.extra

    @property
    def row_bytes(self) -> int:
        if self.storage == "int8":
            return 4 + self.dim + 4 * self.extra
        return 4 * self.width

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        if not extracted.size:
            return []
        return [self._encode_row(row)
                for row in np.atleast_2d(np.asarray(extracted, dtype=np.float32))]

    def _encode_row(self, row: np.ndarray) -> bytes:
        if self.storage == "float32":
            return np.ascontiguousarray(row, dtype=np.float32).tobytes()
        vector = row[:self.dim]
        peak = float(np.max(np.abs(vector))) if self.dim else 0.0
        scale = np.float32(peak / 127.0 if peak > 0 else 1.0)
        quantised = np.clip(np.rint(vector / scale), -127, 127).astype(np.int8)
        return (scale.tobytes() + quantised.tobytes()
                + np.ascontiguousarray(row[self.dim:], dtype=np.float32).tobytes())

    def is_blank(self, extracted: np.ndarray) -> bool:
        # A uniform image can embed to all zeros: it matches nothing and would poison a
        # cosine index; so would any value that is not finite, in any row. Zeros are
        # judged on the first row's vector (the whole image, for regions; a face box is
        # never zero, so it must not count).
        rows = np.atleast_2d(extracted)
        return bool(rows.size) and (not np.all(np.isfinite(rows))
                                    or not np.any(rows[:1, :self.dim]))

    def decode(self, blob: bytes) -> np.ndarray:
        row: np.ndarray = self.decode_many([blob])[0]
        return row

    def decode_many(self, blobs: Sequence[bytes]) -> np.ndarray:
        """(n, width) float32 rows of ``blobs``."""
        wrong = next((len(blob) for blob in blobs if len(blob) != self.row_bytes), None)
        if wrong is not None:
            raise RowLayoutError(f"expected catalog rows of {self.row_bytes} bytes, got one of "
                                 f"{wrong}; the channel's rows changed layout, search again")
        if self.storage == "float32":
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
            return matrix.reshape(len(blobs), self.width).copy()
        raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), self.row_bytes)
        scales = raw[:, :4].copy().view(np.float32)
        rows = np.empty((len(blobs), self.width), dtype=np.float32)
        rows[:, :self.dim] = raw[:, 4:4 + self.dim].view(np.int8) * scales
        rows[:, self.dim:] = raw[:, 4 + self.dim:].copy().view(np.float32)
        return rows


class NoRows:
    """A channel that keeps nothing in the vectors table (its data are annotations)."""

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        return []

    def is_blank(self, extracted: np.ndarray) -> bool:
        return False


@runtime_checkable
class TextSearching(Protocol):
    """A channel that also answers a query given as text (the text channel)."""

    def search_text(self, text: str, k: int) -> list[Hit]:
        """The ``k`` images whose text best matches ``text``, best first."""


@runtime_checkable
class FindsObjects(Protocol):
    """A channel that names the objects in an image (the regions channel): what a user may
    search by, one object at a time."""

    def objects(self, image: np.ndarray) -> list[Region]:
        """The objects found in ``image``, surest first, boxes in its pixels."""


class Channel(ABC):
    """Template for a channel: extract at index time, store, search at query time."""

    name: ClassVar[str]
    codec: RecordCodec
    #: Whether the channel's derived structures follow the images' annotations (the text
    #: channel's); only those are marked stale when a caption or tag is edited.
    reads_annotations: ClassVar[bool] = False

    # -- identity ---------------------------------------------------------------------------

    @abstractmethod
    def manifest(self) -> dict[str, Any]:
        """The settings that shape stored rows; recorded at creation, checked on open."""

    def model_info(self) -> dict[str, Any]:
        """The manifest entries that identify the models in use; checked on every open,
        so a collection is never searched with another model than the one that filled it."""
        return {}

    # -- the model --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load models now, so that one-off start-up cost is not billed to the first batch."""

    def share_models(self, channels: Mapping[str, Channel]) -> None:
        """Take models from the collection's other channels instead of running a second
        copy (the text channel labels images from the global channel's pass). Optional."""

    @abstractmethod
    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """For each image, what the channel keeps: (m, dim) float32 vectors (m may be 0),
        or a packed record its :attr:`codec` turns into rows."""

    @property
    def min_image_side(self) -> int | None:
        """The shorter side this channel needs; None means full resolution.

        Lets the decoder skip detail that the channel's model would throw away.
        """
        return None

    @property
    def query_min_side(self) -> int | None:
        """Like :attr:`min_image_side`, for queries (whose evidence is in their own pixels)."""
        return self.min_image_side

    @property
    def needs_training(self) -> bool:
        """True when the channel must learn from the collection before it can extract."""
        return False

    @property
    def training_images(self) -> int:
        """How many images :meth:`train` wants to see at most."""
        return 0

    def trains_on_images(self, run: int) -> bool:
        """Whether :meth:`train` learns from the images of a first run of ``run`` images;
        False when it only adopts what it was given: then indexing trains it before the
        first pass, which reads each image once for every channel."""
        return self.training_images > 0

    def train(self, images: Iterable[np.ndarray], count: int, run: int | None = None) -> None:
        """Learn what extraction needs (a vocabulary) from ``count`` sample images of a
        first run of ``run`` images (``count`` when not given)."""

    def extraction_state(self) -> object:
        """What :meth:`extract` needs that the settings do not give (what :meth:`train`
        learned), picklable, so that another process can build the channel from its
        registry entry and extract as this one does (the Ray engine's workers)."""
        return None

    def adopt_extraction_state(self, state: object) -> None:
        """Take :meth:`extraction_state` from a channel of another process."""

    # -- persistence ------------------------------------------------------------------------

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        """Make ``extracted`` the image's rows, inside the batch's transaction ``conn``."""
        catalog.vectors.replace(conn, self.name, image_id, self.codec.encode(extracted))

    def after_write(self, catalog: Catalog, conn: Transaction) -> None:
        """Called once a batch's images are stored, inside the same transaction: learn what
        needs the collection's own rows (the regions channel's projection). Optional."""

    # -- derived structures -----------------------------------------------------------------

    @abstractmethod
    def attach(self, catalog: Catalog, root: Path) -> Self:
        """Attach to the collection in ``root``; derived structures follow its catalog."""

    def mark_stale(self) -> None:
        """The catalog changed underneath; resynchronise before the next search."""

    def save_cache(self) -> None:
        """Persist derived structures so the next open is fast. Optional."""

    # -- search -----------------------------------------------------------------------------

    @abstractmethod
    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        """The k best images for a decoded query image, best first, with typed evidence.

        ``box`` = (x0, y0, x1, y1) in the image's pixels limits the query to that region.
        """

    def encode_query(self, image: np.ndarray, box: Box | None = None) -> object:
        """What :meth:`search_encoded` needs of a query: its vector, for a channel that has
        one (the image and box by default). A split collection makes it once, in one
        shard, and every shard searches by it."""
        return image, box

    def search_encoded(self, query: Any, k: int) -> list[Hit]:
        """:meth:`search` for a query made by :meth:`encode_query`."""
        image, box = query
        return self.search(image, k, box)

    def stats(self) -> dict[str, Any]:
        """What ``lookalike info`` shows of the channel."""
        return {}


class VectorChannel(Channel):
    """A channel whose catalog rows start with a unit vector, searched by cosine similarity
    through a :class:`DerivedVectorIndex`. Subclasses make the vectors (:meth:`extract`,
    :meth:`embed_query`) and say how wide their rows are (:attr:`record_extra`)."""

    record_extra: ClassVar[int] = 0  # float32 values after the vector in each row
    codec: FloatRows

    def __init__(self, *, index: str = "auto", exact_below: int = 50_000,
                 whitening: Whitening | None = None, storage: str = "float32") -> None:
        self.codec = FloatRows(self.dim, self.record_extra, storage)
        self.vectors = DerivedVectorIndex(Layout(self.name, self.dim, self.codec.width,
                                                 self.codec.decode_many),
                                          index=index, exact_below=exact_below,
                                          whitening=whitening)

    @property
    @abstractmethod
    def dim(self) -> int:
        """The length of the vectors this channel stores."""

    @abstractmethod
    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's (m, dim) vectors, in the space the channel's index holds."""

    def attach(self, catalog: Catalog, root: Path) -> Self:
        self.vectors.attach(catalog, root)
        return self

    @property
    def catalog(self) -> Catalog:
        return self.vectors.catalog

    def mark_stale(self) -> None:
        self.vectors.mark_stale()

    def save_cache(self) -> None:
        self.vectors.save()

    def check_settings(self) -> None:
        """Refuse a bad index setting before anything is indexed."""
        self.vectors.check_settings()

    def stats(self) -> dict[str, Any]:
        return self.vectors.stats()

    def one_vector_each(self, image_ids: Mapping[str, int]) -> np.ndarray:
        """The stored vector of each image (``name -> image id``), one row each, in order;
        an image without exactly one row is a :class:`CollectionError` naming it."""
        if self.codec.extra:
            # Faces and regions keep many rows per image, each with more than its vector.
            raise ValidationError(f"expected a channel that stores vectors, one per image "
                                  f"('global'), got '{self.name}'")
        by_image = self.catalog.vectors.of_images(self.name, list(image_ids.values()))
        rows = []
        for name, image_id in image_ids.items():
            blobs = by_image.get(image_id, [])
            if len(blobs) != 1:
                raise CollectionError(f"{name}: expected one '{self.name}' vector, got "
                                      f"{len(blobs)}")
            rows.append(self.codec.decode(blobs[0])[:self.dim])
        return np.stack(rows) if rows else np.empty((0, self.dim), dtype=np.float32)
