"""The faces channel: every face in every image, searchable by identity.

Each detected face is one catalog row: its unit identity vector followed by its
box, five landmarks and detection score (float32), so a search result can show
which face matched, and people can be listed without running a model. The
vector index, its cache and its updates are the shared
:class:`~lookalike.collection.vector_index.DerivedVectorIndex`; many rows per image are
folded to the best face per image at search.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from lookalike.collection.channels import VectorChannel
from lookalike.confidence import evidence_confidence
from lookalike.errors import NotFoundError, expect
from lookalike.faces import (
    DETECTORS,
    EMBEDDERS,
    TEMPLATES,
    DetectorConfig,
    Face,
    FaceAnalyzer,
    NoFaceError,
    cluster_threshold,
    distance_from_similarity,
    face_in_box,
    is_face_model_file,
    largest_face,
    verify_threshold,
)
from lookalike.images import Box
from lookalike.index import parse_index_spec
from lookalike.results import FaceEvidence, Hit, PersonRef
from lookalike.storage import Catalog, Transaction

_EXTRA = 4 + 10 + 1  # box, landmarks, score after the vector


@dataclass(frozen=True)
class FacesChannelConfig:
    """Settings of the faces channel. ``min_score``, ``min_face`` and ``detect_side``
    are the detector's (see :class:`lookalike.faces.DetectorConfig`); ``threshold``
    overrides the calibrated same-person cosine similarity of search evidence, and
    ``cluster_threshold`` the stricter one that groups faces into people. Faces smaller
    than ``group_min_face`` pixels or detected below ``group_min_score`` are kept and
    searchable but not grouped into people (a crowd's background faces made junk people),
    and search calls such a face "same person" only at the stricter clustering threshold."""

    detector: str = "centerface"
    embedder: str = "sface"
    min_score: float = 0.5
    min_face: int = 20
    detect_side: int = 640
    index: str = "auto"
    exact_below: int = 50_000
    threshold: float | None = None
    cluster_threshold: float | None = None
    group_min_face: int = 48
    group_min_score: float = 0.8

    def __post_init__(self) -> None:
        expect(self.detector in DETECTORS,
               f"expected a face detector among {sorted(DETECTORS)}, got {self.detector!r}")
        if is_face_model_file(self.embedder):
            # A trained face model's file, recorded absolute so any folder opens it.
            object.__setattr__(self, "embedder", os.path.abspath(self.embedder))
        else:
            expect(self.embedder in EMBEDDERS, f"expected a face embedder among "
                   f"{sorted(EMBEDDERS)} or a face model file (.onnx), got {self.embedder!r}")
        self.detector_config()  # checks the detector's numbers
        expect(isinstance(self.exact_below, int) and self.exact_below >= 1,
               f"expected exact_below >= 1, got {self.exact_below!r}")
        expect(isinstance(self.group_min_face, int) and self.group_min_face >= 0,
               f"expected group_min_face >= 0 pixels, got {self.group_min_face!r}")
        expect(isinstance(self.group_min_score, float | int) and 0 <= self.group_min_score <= 1,
               f"expected group_min_score in [0, 1], got {self.group_min_score!r}")
        for value in (self.threshold, self.cluster_threshold):
            expect(value is None or -1.0 <= value <= 1.0,
                   f"expected a similarity threshold in [-1, 1], got {value!r}")
        if self.index != "auto":
            parse_index_spec(self.index)

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(min_score=self.min_score, min_face=self.min_face,
                              max_side=self.detect_side)

    @property
    def same_person(self) -> float:
        """The cosine similarity above which two faces are taken as one person."""
        if self.threshold is not None:
            return self.threshold
        return verify_threshold(self.detector, self.embedder)

    @property
    def same_person_cluster(self) -> float:
        """The cosine similarity above which clustering puts two faces in one person."""
        if self.cluster_threshold is not None:
            return self.cluster_threshold
        return cluster_threshold(self.detector, self.embedder)

    def stored_settings(self) -> dict[str, Any]:
        return {"detector": self.detector, "embedder": self.embedder,
                "min_score": self.min_score, "min_face": self.min_face,
                "detect_side": self.detect_side, "alignment": alignment_of(self.detector)}


def alignment_of(detector: str) -> dict[str, Any]:
    """The landmark scheme and template a detector's faces are aligned with; a new
    template changes every vector, so it is part of what a collection records."""
    scheme = DETECTORS[detector].scheme
    # None for an unused point: NaN is not JSON, and NaN != NaN would refuse every open.
    template = [[None if np.isnan(v) else round(float(v), 4) for v in point]
                for point in TEMPLATES[scheme]]
    return {"scheme": scheme, "template": template}


@dataclass(frozen=True)
class StoredFace:
    """A face as the catalog holds it; ``face_id`` is its vector id."""

    face_id: int
    image_id: int
    face: Face
    vector: np.ndarray


class FacesChannel(VectorChannel):
    """Faces found by a detector, embedded by a face model, searched by cosine similarity."""

    name = "faces"
    record_extra = _EXTRA

    def __init__(self, config: FacesChannelConfig, *,
                 analyzer: FaceAnalyzer | None = None) -> None:
        self.config = config
        self.analyzer = analyzer or FaceAnalyzer(config.detector, config.embedder,
                                                 config.detector_config())
        super().__init__(index=config.index, exact_below=config.exact_below)

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"embedder_info": self.analyzer.embedder.info.as_dict(),
                "alignment": alignment_of(self.config.detector)}

    @property
    def dim(self) -> int:
        return self.analyzer.embedder.info.dim

    def prepare(self) -> None:
        self.analyzer.load()

    # -- indexing -----------------------------------------------------------------------------

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self._records(found) for found in self.analyzer.faces_batch(images)]

    def _records(self, found: list[Any]) -> np.ndarray:
        rows = np.empty((len(found), self.codec.width), dtype=np.float32)
        for row, item in zip(rows, found, strict=True):
            row[:self.dim] = item.vector
            row[self.dim:self.dim + 4] = item.face.box
            row[self.dim + 4:self.dim + 14] = item.face.landmarks.reshape(-1)
            row[self.dim + 14] = item.face.score
        return rows

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        """Replace the image's faces, carrying each face's person, confirmation,
        rejections and "not a face" over to the new face that is the same person, so that
        re-embedding a changed file (an edited photo, a re-saved JPEG) does not undo the
        user's work."""
        old = catalog.people.of_image(conn, self.name, image_id)
        old_vectors = [self.codec.decode(blob)[:self.dim]
                       for _, blob in catalog.vectors.rows_of_image(conn, self.name, image_id)]
        new_ids = catalog.vectors.replace(conn, self.name, image_id,
                                          self.codec.encode(extracted))
        if not old or not extracted.size:
            return
        pairs = _same_faces(np.stack(old_vectors), extracted[:, :self.dim],
                            self.config.same_person)
        hidden = catalog.people.hidden()
        for old_row, new_row in pairs:
            old_id, person, confirmed, rejected = old[old_row]
            catalog.people.carry(conn, new_ids[new_row], person, confirmed, rejected)
            if old_id in hidden:  # "not a face" stays so
                catalog.people.hide(conn, [new_ids[new_row]])

    def unpack(self, face_id: int, image_id: int, blob: bytes) -> StoredFace:
        row = self.codec.decode(blob)
        d = self.dim
        face = Face(box=tuple(float(v) for v in row[d:d + 4]),  # type: ignore[arg-type]
                    landmarks=row[d + 4:d + 14].reshape(5, 2).copy(), score=float(row[d + 14]),
                    scheme=self.analyzer.detector.scheme)
        return StoredFace(face_id=face_id, image_id=image_id, face=face, vector=row[:d].copy())

    def stored_faces(self, face_ids: list[int]) -> list[StoredFace]:
        return [self.unpack(fid, iid, blob)
                for fid, iid, blob in self.catalog.vectors.blobs(face_ids, channel=self.name)]

    def faces_of_images(self, image_ids: list[int]) -> dict[int, list[StoredFace]]:
        found: dict[int, list[StoredFace]] = {}
        for face in self.stored_faces(self.catalog.vectors.ids_of_images(self.name, image_ids)):
            found.setdefault(face.image_id, []).append(face)
        return found

    # -- searching ------------------------------------------------------------------------------

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        found = self.analyzer.faces(image)
        return (np.stack([item.vector for item in found]) if found
                else np.empty((0, self.dim), dtype=np.float32))

    def query_face(self, image: np.ndarray, box: Box | None = None) -> tuple[Face, np.ndarray]:
        """The face a query means: the one inside ``box``, else the largest."""
        found = self.analyzer.faces(image)
        if not found:
            raise NoFaceError(f"the query: no face found (detector {self.config.detector}, "
                              f"min score {self.config.min_score}, min size "
                              f"{self.config.min_face} px)")
        faces = [item.face for item in found]
        chosen = largest_face(faces) if box is None else face_in_box(faces, box)
        if chosen is None:
            raise NoFaceError(f"the query: no face lies inside the box {list(box or [])}; "
                              f"faces found at {[f.as_dict()['box'] for f in faces]}")
        return found[chosen].face, found[chosen].vector

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return self.search_encoded(self.encode_query(image, box), k)

    def encode_query(self, image: np.ndarray, box: Box | None = None) -> FaceQuery:
        face, vector = self.query_face(image, box)
        frame = box or (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
        side = min(frame[2] - frame[0], frame[3] - frame[1])
        return FaceQuery(face, vector, share=min(1.0, face.size / max(side, 1.0)))

    def search_encoded(self, query: FaceQuery, k: int) -> list[Hit]:
        return self.search_face(query.vector, k, query_face=query.face, share=query.share)

    def search_face(self, vector: np.ndarray, k: int, *, query_face: Face | None = None,
                    share: float | None = None) -> list[Hit]:
        """The ``k`` images whose best face is nearest ``vector``, with that face as evidence."""
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        hidden = frozenset(self.catalog.people.hidden())  # "not a face", for good
        chosen = self.vectors.best_per_image(vector, k, depth=4 * k + 16 + len(hidden),
                                             skip=hidden)
        chosen_faces = [fid for _, _, fid in chosen]
        stored = {face.face_id: face for face in self.stored_faces(chosen_faces)}
        people = self.catalog.people.people_of(chosen_faces)
        return [Hit(image_id, score, self._evidence(score, stored[face_id], query_face,
                                                    people.get(face_id), share))
                for image_id, score, face_id in chosen]

    def _evidence(self, score: float, face: StoredFace, query: Face | None,
                  person: tuple[int, str | None] | None,
                  share: float | None = None) -> FaceEvidence:
        clear = self.clear(face.face) and (query is None or self.clear(query))
        # Weak evidence (a small or unclear face) needs the stricter threshold.
        limit = self.config.same_person if clear else self.config.same_person_cluster
        evidence = FaceEvidence(
            face_id=face.face_id, face_box=face.face.as_dict()["box"],
            similarity=round(score, 6), distance=round(float(distance_from_similarity(score)), 6),
            threshold=round(float(limit), 6),
            query_face_box=None if query is None else query.as_dict()["box"],
            query_face_share=None if share is None else round(share, 4),
            person=None if person is None else PersonRef(*person))
        sure = (evidence_confidence(evidence) or 0.0) >= SAME_PERSON_CONFIDENCE
        return replace(evidence, same_person=bool(score >= limit and sure))

    def clear(self, face: Face) -> bool:
        """Whether a face is large and sure enough to group into people."""
        return bool(self._clear(face.size, face.score))

    def _clear(self, side: Any, score: Any) -> Any:
        """:meth:`clear` on a face's shorter side and detection score (arrays of them too)."""
        return (side >= self.config.group_min_face) & (score >= self.config.group_min_score)

    def grouping_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, (n, dim) unit vectors, whether each face is :meth:`clear`) of every
        stored face, from one read of the channel's rows."""
        ids, blobs = self.catalog.vectors.load_blobs(self.name)
        rows = self.codec.decode_many(blobs)
        d = self.dim
        sides = np.minimum(rows[:, d + 2] - rows[:, d], rows[:, d + 3] - rows[:, d + 1])
        return ids, np.ascontiguousarray(rows[:, :d]), self._clear(sides, rows[:, d + 14])

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "faces": self.catalog.vectors.count(self.name),
                "images_with_faces": self.catalog.vectors.count_images(self.name),
                "embedder_info": self.analyzer.embedder.info.as_dict(),
                "same_person_similarity": self.config.same_person,
                "cluster_similarity": self.config.same_person_cluster}


# The threshold calibrated on LFW's pairs (half of them the same person) says "same person"
# to too many faces of an album, where few are: just above it, 2-13% of the faces were
# (LFW and ORL albums). Search says so only when the calibrated confidence is at least even
# (BENCHMARKS.md, "Calibrated confidence"); grouping into people keeps its own threshold.
SAME_PERSON_CONFIDENCE = 0.5


@dataclass(frozen=True)
class FaceQuery:
    """The face a query means, its embedding, and how much of the query it fills: its
    shorter side over the query's (or the query box's)."""

    face: Face
    vector: np.ndarray
    share: float


def _same_faces(old: np.ndarray, new: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(old row, new row) pairs that are the same face: most similar first, each row used
    once, and only above the same-person threshold."""
    similarity = old @ new.T
    pairs: list[tuple[int, int]] = []
    used_old: set[int] = set()
    used_new: set[int] = set()
    for flat in np.argsort(-similarity, axis=None):
        i, j = divmod(int(flat), similarity.shape[1])
        if similarity[i, j] < threshold:
            break
        if i not in used_old and j not in used_new:
            pairs.append((i, j))
            used_old.add(i)
            used_new.add(j)
    return pairs


def check_faces_channel(channel: object) -> FacesChannel:
    if not isinstance(channel, FacesChannel):
        raise NotFoundError("expected a collection with a 'faces' channel, got none; create "
                            "it with channels including 'faces'")
    return channel


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a faces channel, from its manifest entry and :meth:`stats`."""
    return (f"{stats['detector']} detector + {stats['embedder_info']['name']} "
            f"({stats['embedder_info']['dim']}-d), {stats['faces']} faces in "
            f"{stats['images_with_faces']} images, index {stats['index']}")
