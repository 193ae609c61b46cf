"""Faces grouped into people: list and look, and (with the token) cluster, name, merge,
split and reject; and a face's picture."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from lookalike.collection import MAX_ID
from lookalike.server import schemas
from lookalike.server.errors import WHOLE, WRITES, errors
from lookalike.server.inputs import Id
from lookalike.server.outputs import JPEG, jpeg, person_out
from lookalike.server.state import WRITE, State

router = APIRouter()


# The routes answer 404 in a collection without a faces channel.
@router.get("/people", responses=errors(404, 422, WHOLE))
def people(state: State,
           min_faces: Annotated[int, Query(ge=0, le=MAX_ID)] = 1) -> schemas.PeopleList:
    with state.using() as collection:
        found = collection.people
        return schemas.PeopleList(people=[person_out(p) for p in found.all(min_faces)],
                                  unassigned_faces=found.unassigned())


@router.get("/people/{person_id}/faces", responses=errors(404, 422, WHOLE))
def person_faces(state: State, person_id: Id) -> schemas.PersonFaces:
    with state.using() as collection:
        found = collection.people
        return schemas.PersonFaces(
            person=person_out(found.get(person_id)),
            faces=[schemas.FaceRefOut(**face.as_dict()) for face in found.faces(person_id)])


@router.post("/people/update", dependencies=WRITE, responses=errors(*WRITES, 404, 413, 422))
def update(state: State, body: schemas.UpdateIn) -> dict[str, int]:
    with state.using() as collection:
        return collection.people.update(reset=body.reset).as_dict()


@router.post("/people/merge", dependencies=WRITE, responses=errors(*WRITES, 404, 413, 422))
def merge(state: State, body: schemas.MergeIn) -> schemas.PersonOut:
    with state.using() as collection:
        return person_out(collection.people.merge(body.people))


@router.post("/people/{person_id}/name", dependencies=WRITE,
             responses=errors(*WRITES, 404, 413, 422))
def name(state: State, person_id: Id, body: schemas.NameIn) -> schemas.PersonOut:
    with state.using() as collection:
        return person_out(collection.people.name(person_id, (body.name or "").strip() or None))


@router.post("/people/{person_id}/split", dependencies=WRITE,
             responses=errors(*WRITES, 404, 413, 422))
def split(state: State, person_id: Id, body: schemas.FacesIn) -> schemas.PersonOut:
    with state.using() as collection:
        return person_out(collection.people.split(person_id, body.faces))


@router.post("/faces/reject", dependencies=WRITE, responses=errors(*WRITES, 404, 413, 422))
def reject(state: State, body: schemas.FacesIn) -> dict[str, list[dict[str, int]]]:
    with state.using() as collection:
        left = collection.people.reject(body.faces)
    return {"rejected": [{"face_id": f, "person_id": p} for f, p in left.items()]}


@router.post("/faces/hide", dependencies=WRITE, responses=errors(*WRITES, 404, 413, 422))
def hide(state: State, body: schemas.FacesIn) -> dict[str, list[int]]:
    """Not a face: the faces leave their people and face search for good."""
    with state.using() as collection:
        collection.people.hide(body.faces)
    return {"hidden": list(dict.fromkeys(body.faces))}


@router.get("/faces/{face_id}/thumbnail", response_class=Response,
            responses={**errors(404, 422, WHOLE), **JPEG})
def face_thumbnail(state: State, face_id: Id,
                   size: Annotated[int, Query(ge=16, le=512)] = 160) -> Response:
    with state.using() as collection:
        face = collection.face(face_id)
        record = collection.image(face.image_id)
        x0, y0, x1, y1 = face.box
        return jpeg(collection.media.face_crop(face_id, record.path, (x0, y0, x1, y1), size))
