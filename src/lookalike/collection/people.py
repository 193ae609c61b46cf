"""People: faces grouped into persons, by clustering and by the user's decisions.

Clustering proposes, the user decides, and the decisions win:

* a **named** person keeps every face it has when people are re-clustered, and
  keeps its name;
* faces the user placed (by merge, split or assign) are **confirmed** and are
  never moved by clustering;
* "not this person" (:meth:`People.reject`) takes a face out of a person and
  records that it must never be put back there.

:meth:`People.update` runs after new photos are indexed: each face without a
person joins the person of its most similar assigned face when that face is
similar enough (and the user has not rejected that pairing); the faces left are
clustered among themselves into new people. ``reset=True`` first dissolves
every unnamed person's unconfirmed faces, to re-cluster from scratch around the
named people. All of it lives in the catalog, so it is transactional and
survives re-indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.collection.faces_channel import FacesChannel, StoredFace
from lookalike.errors import NotFoundError, ValidationError, expect
from lookalike.faces.cluster import cluster_faces
from lookalike.progress import step
from lookalike.storage import Catalog

_MAX_NAME = 200
_BLOCK_FLOATS = 1 << 26  # similarities held at once (256 MB of float32)


@dataclass(frozen=True)
class FaceRef:
    """One face of a person: where it is, and whether the user placed it there."""

    face_id: int
    image_id: int
    path: str
    box: list[float]
    confirmed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"face_id": self.face_id, "image_id": self.image_id, "path": self.path,
                "box": self.box, "confirmed": self.confirmed}


@dataclass(frozen=True)
class ImageFace:
    """A face found in an image: its box and score in the image's pixels, and its person."""

    face_id: int
    image_id: int
    box: list[float]
    score: float
    person: tuple[int, str | None] | None  # (id, name)

    def as_dict(self) -> dict[str, Any]:
        return {"face_id": self.face_id, "image_id": self.image_id, "box": self.box,
                "score": self.score, "person": None if self.person is None else
                {"id": self.person[0], "name": self.person[1]}}


@dataclass(frozen=True)
class Person:
    id: int
    name: str | None
    faces: int
    cover: FaceRef | None  # the person's most confident face, to show

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "faces": self.faces,
                "cover": self.cover.as_dict() if self.cover else None}


@dataclass(frozen=True)
class UpdateReport:
    joined: int  # faces that joined an existing person
    new_people: int
    clustered: int  # faces clustered into new people
    people: int  # people after the update

    def as_dict(self) -> dict[str, int]:
        return {"joined": self.joined, "new_people": self.new_people,
                "clustered": self.clustered, "people": self.people}


class People:
    """The people of a collection with a faces channel (``Collection.people``)."""

    def __init__(self, catalog: Catalog, channel: FacesChannel) -> None:
        self.catalog = catalog
        self.channel = channel

    # -- reading ------------------------------------------------------------------------------

    def all(self, min_faces: int = 1) -> list[Person]:
        """Every named person, and the unnamed ones with at least ``min_faces`` faces:
        named first, then by size. A named person stays listed with no faces left, so
        the name is not lost from sight."""
        expect(isinstance(min_faces, int) and not isinstance(min_faces, bool)
               and min_faces >= 0, f"expected min_faces >= 0, got {min_faces!r}")
        rows = self.catalog.people.listing(min_faces)
        covers = self._covers([row[0] for row in rows])
        return [Person(id=pid, name=name, faces=n, cover=covers.get(pid))
                for pid, name, n in rows]

    def get(self, person_id: int) -> Person:
        _ids([person_id], "person")
        found = self.catalog.people.get(person_id)
        if found is None:
            raise NotFoundError(f"expected an existing person id, got {person_id}")
        return Person(id=person_id, name=found[0], faces=found[1],
                      cover=self._covers([person_id]).get(person_id))

    def faces(self, person_id: int) -> list[FaceRef]:
        """Every face of a person, confirmed ones first."""
        self._check_person(person_id)
        return self._refs(self.catalog.people.faces_of(person_id))

    def person_of(self, face_ids: list[int]) -> dict[int, tuple[int, str | None]]:
        """face id -> (person id, name) for the faces that have a person."""
        return self.catalog.people.people_of(face_ids)

    def faces_of_image(self, image_id: int) -> list[ImageFace]:
        """The faces found in one image, with their people."""
        stored = self.channel.faces_of_images([image_id]).get(image_id, [])
        return self._image_faces(stored)

    def face(self, face_id: int) -> ImageFace:
        """One face by id; a :class:`NotFoundError` when there is none."""
        self._check_face(face_id)
        return self._image_faces(self.channel.stored_faces([face_id]))[0]

    def _image_faces(self, stored: list[StoredFace]) -> list[ImageFace]:
        people = self.catalog.people.people_of([face.face_id for face in stored])
        return [ImageFace(face_id=face.face_id, image_id=face.image_id,
                          box=face.face.as_dict()["box"], score=face.face.score,
                          person=people.get(face.face_id)) for face in stored]

    def unassigned(self) -> int:
        """Faces with no person yet (new since the last update, or rejected)."""
        return self.catalog.people.unassigned(self.channel.name)

    def _covers(self, person_ids: list[int]) -> dict[int, FaceRef]:
        covers: dict[int, FaceRef] = {}
        for pid in person_ids:
            refs = self._refs(self.catalog.people.faces_of(pid, limit=8))
            if refs:
                covers[pid] = max(refs, key=lambda ref: (ref.box[2] - ref.box[0]))
        return covers

    def _refs(self, faces: list[tuple[int, bool]]) -> list[FaceRef]:
        stored = {face.face_id: face for face in self.channel.stored_faces([f for f, _ in faces])}
        paths = {record.id: record.path for record in self.catalog.images.by_id(
            {face.image_id for face in stored.values()}).values()}
        return [FaceRef(face_id=face_id, image_id=stored[face_id].image_id,
                        path=paths.get(stored[face_id].image_id, ""),
                        box=stored[face_id].face.as_dict()["box"], confirmed=confirmed)
                for face_id, confirmed in faces if face_id in stored]

    # -- user decisions -----------------------------------------------------------------------

    def name(self, person_id: int, name: str | None) -> Person:
        """Name a person (or clear the name with None). A named person keeps its faces."""
        if name is not None:
            expect(isinstance(name, str), f"expected a name as text, got {type(name).__name__}")
            name = " ".join(name.split())
            expect(0 < len(name) <= _MAX_NAME,
                   f"expected a name of 1 to {_MAX_NAME} characters, got {len(name)}")
        self._check_person(person_id)
        with self.catalog.transaction() as conn:
            self.catalog.people.rename(conn, person_id, name)
        return self.get(person_id)

    def merge(self, person_ids: list[int]) -> Person:
        """Merge people into the first one; it keeps its name, or takes the first other name.
        Every face of the result counts as placed by the user."""
        ids = list(dict.fromkeys(_ids(person_ids, "person")))
        expect(len(ids) >= 2, f"expected at least two different people to merge, got {ids}")
        for pid in ids:
            self._check_person(pid)
        target, others = ids[0], ids[1:]
        names = self.catalog.people.names(ids)
        name = names[target] or next((names[p] for p in others if names[p]), None)
        with self.catalog.transaction() as conn:
            # The user put these faces together; a rejection between them no longer holds.
            self.catalog.people.merge(conn, target, others, name)
        return self.get(target)

    def split(self, person_id: int, face_ids: list[int]) -> Person:
        """Move some faces of a person into a new (unnamed) person."""
        self._check_person(person_id)
        wanted = list(dict.fromkeys(_ids(face_ids, "face")))
        expect(bool(wanted), "expected at least one face to split off, got none")
        theirs = {face_id for face_id, _ in self.catalog.people.faces_of(person_id)}
        stray = [f for f in wanted if f not in theirs]
        expect(not stray, f"expected faces of person {person_id}, got faces {stray} that are not")
        expect(len(wanted) < len(theirs),
               f"expected some of person {person_id}'s faces, got all {len(theirs)} of them "
               "(a split would leave the person empty; reject them, or rename the person)")
        with self.catalog.transaction() as conn:
            new_id = self.catalog.people.new_person(conn)
            self.catalog.people.move(conn, wanted, new_id)
            # Both halves are the user's decision now; re-clustering must not rejoin them.
            self.catalog.people.confirm_all(conn, [person_id])
        return self.get(new_id)

    def assign(self, face_id: int, person_id: int) -> Person:
        """Put a face into a person (a user decision: confirmed)."""
        self._check_person(person_id)
        self._check_face(face_id)
        with self.catalog.transaction() as conn:
            self.catalog.people.assign(conn, face_id, person_id)
        return self.get(person_id)

    def reject(self, face_ids: list[int]) -> dict[int, int]:
        """"Not this person": take faces out of their people for good, in one transaction.

        Returns face id -> the person it left. The faces that stay with that person
        count as confirmed from then on, so re-clustering keeps the person (and with it
        the rejection) instead of dissolving it.
        """
        wanted = list(dict.fromkeys(_ids(face_ids, "face")))
        expect(bool(wanted), "expected at least one face to reject, got none")
        left: dict[int, int] = {}
        for face_id in wanted:
            self._check_face(face_id)
            person = self.catalog.people.person_of_face(face_id)
            expect(person is not None, f"expected a face that belongs to a person, got face "
                                       f"{face_id}, which has none")
            left[face_id] = int(person or 0)
        with self.catalog.transaction() as conn:
            self.catalog.people.reject(conn, left)
            self.catalog.people.confirm_all(conn, set(left.values()))
        return left

    # -- clustering ---------------------------------------------------------------------------

    def update(self, *, reset: bool = False, algorithm: str = "chinese-whispers",
               threshold: float | None = None) -> UpdateReport:
        """Give every face a person; see the module docstring for what is kept.

        ``threshold`` (cosine similarity) defaults to the channel's clustering threshold,
        stricter than the verification one: clusters chain faces together.
        """
        limit = self.channel.config.same_person_cluster if threshold is None else threshold
        expect(-1.0 <= limit <= 1.0, f"expected a similarity threshold in [-1, 1], got {limit!r}")
        step("grouping faces into people", 0, 1)
        face_ids, vectors, clear = self.channel.grouping_rows()
        repository = self.catalog.people
        with self.catalog.transaction() as conn:
            if reset:
                repository.dissolve_unconfirmed(conn)
            repository.drop_empty(conn)
            assigned = repository.assignments(conn)
            rejected = repository.rejections(conn)
            is_free = np.array([int(f) not in assigned for f in face_ids], dtype=bool)
            # Small and unclear, hidden and once-rejected faces wait for the user instead.
            is_free &= clear & self._not_kept_out(face_ids, set(rejected))
            joins = self._join_existing(face_ids, vectors, is_free, assigned, rejected, limit)
            repository.add_faces(conn, joins.items())
            left = np.array([free and int(f) not in joins
                             for f, free in zip(face_ids, is_free, strict=True)], dtype=bool)
            labels = cluster_faces(vectors[left], limit, algorithm)
            clusters = int(labels.max()) + 1 if len(labels) else 0
            new_ids = [repository.new_person(conn) for _ in range(clusters)]
            repository.add_faces(conn, [(int(f), new_ids[label]) for f, label
                                        in zip(face_ids[left], labels, strict=True)])
            people = repository.count(conn)
        step("grouping faces into people", 1, 1)
        return UpdateReport(joined=len(joins), new_people=clusters, clustered=int(left.sum()),
                            people=people)

    def _not_kept_out(self, face_ids: np.ndarray, rejected: set[int]) -> np.ndarray:
        """Faces the user did not mark "not a face" nor reject from a person: clustering
        may place them."""
        kept_out = self.catalog.people.hidden() | rejected
        return np.array([int(f) not in kept_out for f in face_ids], dtype=bool)

    def hide(self, face_ids: list[int]) -> int:
        """"Not a face": take faces out of their people, people listings and face search
        for good; returns how many."""
        wanted = list(dict.fromkeys(_ids(face_ids, "face")))
        for face_id in wanted:
            self._check_face(face_id)
        with self.catalog.transaction() as conn:
            self.catalog.people.hide(conn, wanted)
            self.catalog.people.drop_empty(conn)
        return len(wanted)

    @staticmethod
    def _join_existing(face_ids: np.ndarray, vectors: np.ndarray, is_free: np.ndarray,
                       assigned: dict[int, int], rejected: dict[int, set[int]],
                       limit: float) -> dict[int, int]:
        """free face id -> person of its most similar assigned face (outside the people the
        user rejected it from), when that face is similar enough."""
        members = np.flatnonzero([int(f) in assigned for f in face_ids])
        free = np.flatnonzero(is_free)
        if not len(members) or not len(free):
            return {}
        member_vectors = vectors[members]
        member_people = np.array([assigned[int(face_ids[i])] for i in members])
        block = max(1, min(1024, _BLOCK_FLOATS // len(members)))  # bounded memory
        joins: dict[int, int] = {}
        for start in range(0, len(free), block):
            rows = free[start:start + block]
            similarity = vectors[rows] @ member_vectors.T
            for row, sims in zip(rows, similarity, strict=True):
                face_id = int(face_ids[row])
                banned = rejected.get(face_id)
                if banned:
                    sims = np.where(np.isin(member_people, list(banned)), -np.inf, sims)
                best = int(np.argmax(sims))
                if sims[best] >= limit:
                    joins[face_id] = int(member_people[best])
        return joins

    # -- checks -------------------------------------------------------------------------------

    def _check_person(self, person_id: int) -> None:
        _ids([person_id], "person")
        if not self.catalog.people.exists(person_id):
            raise NotFoundError(f"expected an existing person id, got {person_id}")

    def _check_face(self, face_id: int) -> None:
        _ids([face_id], "face")
        if not self.catalog.vectors.exists(face_id, self.channel.name):
            raise NotFoundError(f"expected an existing face id, got {face_id}")


def _ids(values: object, what: str) -> list[int]:
    """Integer ids from the caller, refused with a clear message otherwise (a float or a
    string would otherwise be truncated or raise deep in SQLite)."""
    if not isinstance(values, list | tuple):
        raise ValidationError(f"expected a list of {what} ids, got {type(values).__name__}")
    for value in values:
        expect(isinstance(value, int | np.integer) and not isinstance(value, bool),
               f"expected {what} ids as integers, got {value!r}")
    return [int(value) for value in values]
