"""The people's texts about images (captions, tags, categories) and the categories in use."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.server import schemas
from lookalike.server.errors import WRITES, errors
from lookalike.server.inputs import Id
from lookalike.server.outputs import annotation_out
from lookalike.server.state import WRITE, State

router = APIRouter()


@router.get("/categories", responses=errors())
def categories(state: State) -> list[schemas.Category]:
    if state.shards is not None:
        return []  # a split collection is not searched by category (yet)
    with state.using() as collection:
        return [schemas.Category(name=name, images=count)
                for name, count in collection.annotations.categories()]


@router.put("/images/{image_id}/annotations", dependencies=WRITE,
            responses=errors(*WRITES, 404, 413, 422))
def set_annotations(state: State, image_id: Id,
                    body: schemas.AnnotationsIn) -> list[schemas.AnnotationOut]:
    with state.using() as collection:
        notes = collection.annotations.set(image_id, captions=body.captions,
                                           tags=body.tags, categories=body.categories)
    return [annotation_out(note) for note in notes]


@router.post("/images/{image_id}/annotations", dependencies=WRITE,
             responses=errors(*WRITES, 404, 413, 422))
def add_annotation(state: State, image_id: Id,
                   body: schemas.AnnotationIn) -> schemas.AnnotationOut:
    with state.using() as collection:
        note = collection.annotations.add(image_id, body.kind, body.text)
    return annotation_out(note)


@router.delete("/annotations/{annotation_id}", dependencies=WRITE,
               responses=errors(*WRITES, 404, 422))
def delete_annotation(state: State, annotation_id: Id) -> schemas.AnnotationOut:
    with state.using() as collection:
        note = collection.annotations.remove(annotation_id)
    return annotation_out(note)
