"""The library's records shaped as the API's answers (:mod:`lookalike.server.schemas`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import Response

from lookalike.collection import (
    AnnotationRecord,
    ImageFace,
    ImageRecord,
    Person,
    SearchResult,
)
from lookalike.server import schemas


def image_out(record: ImageRecord) -> schemas.ImageOut:
    return schemas.ImageOut(id=record.id, path=record.path, name=Path(record.path).name,
                            width=record.width, height=record.height,
                            thumbnail=f"/images/{record.id}/thumbnail")


def result_out(result: SearchResult) -> schemas.ResultOut:
    """A result with its image's size, so the page can lay it out, and its reasons."""
    return schemas.ResultOut(
        rank=result.rank, image_id=result.image_id, path=result.path,
        name=Path(result.path).name, score=result.score, fused_score=result.fused_score,
        width=result.width, height=result.height,
        thumbnail=f"/images/{result.image_id}/thumbnail",
        reason=result.reason, evidence=result.evidence.as_dict())


def face_out(face: ImageFace) -> schemas.FaceOut:
    shown = face.as_dict()
    return schemas.FaceOut(face_id=shown["face_id"], box=shown["box"], score=shown["score"],
                           person=shown["person"])


def annotation_out(note: AnnotationRecord) -> schemas.AnnotationOut:
    return schemas.AnnotationOut(**note.as_dict())


def person_out(person: Person) -> schemas.PersonOut:
    return schemas.PersonOut(**person.as_dict())


BINARY = {"schema": {"type": "string", "format": "binary"}}
# The documented answer of a route that answers with :func:`jpeg`.
JPEG: dict[int | str, dict[str, Any]] = {
    200: {"description": "a JPEG", "content": {"image/jpeg": BINARY}}}


def jpeg(data: bytes) -> Response:
    """A thumbnail or face crop; it changes only with the photo, so browsers may keep it."""
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
