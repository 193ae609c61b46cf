"""The indexed images: list them, serve a file, a thumbnail or what is known of one; add
an upload and delete an image (with the token)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import FileResponse, Response

from lookalike.collection import MAX_ID, Collection
from lookalike.server import schemas
from lookalike.server.errors import SHARDS, WRITES, errors
from lookalike.server.inputs import IMAGE, Id, read_upload
from lookalike.server.outputs import BINARY, JPEG, annotation_out, face_out, image_out, jpeg
from lookalike.server.query import one_value_per_form_field
from lookalike.server.state import WRITE, State

router = APIRouter()

# The file as it is: its own image type (served only for images the collection indexed).
IMAGE_FILE: dict[int | str, dict[str, Any]] = {
    200: {"description": "the image file, with its own type", "content": {"image/*": BINARY}}}
UPLOAD_FORM = {"requestBody": {"content": {"multipart/form-data": {
    "encoding": {"image": {"contentType": "image/*"}}}}}}


@router.get("/images", responses=errors(422, SHARDS))
def images(state: State, offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
           limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.ImageList:
    with state.browsing() as collection:
        everything = collection.images()
    return schemas.ImageList(total=len(everything),
                             images=[image_out(r) for r in everything[offset:offset + limit]])


@router.get("/images/{image_id}", response_class=Response,
            responses={**errors(404, 422, SHARDS), **IMAGE_FILE})
def image_file(state: State, image_id: Id) -> Response:
    # Only a catalogued id reaches the file system: the path is the catalog's, never the
    # client's.
    with state.browsing() as collection:
        if isinstance(collection, Collection):
            path = collection.image_file(image_id)
            return FileResponse(path, media_type=image_type(path.name))
        # A shard's files may be on another machine: its shard reads them there.
        record = collection.image(image_id)
        return Response(collection.image_bytes(image_id), media_type=image_type(record.path))


@router.get("/images/{image_id}/thumbnail", response_class=Response,
            responses={**errors(404, 422, SHARDS), **JPEG})
def thumbnail(state: State, image_id: Id,
              size: Annotated[int, Query(ge=16, le=1024)] = 256) -> Response:
    with state.browsing() as collection:
        return jpeg(collection.thumbnail(image_id, size))


@router.get("/images/{image_id}/info", responses=errors(404, 422, SHARDS))
def image_info(state: State, image_id: Id) -> schemas.ImageInfo:
    with state.browsing() as collection:
        record = collection.image(image_id)
        if isinstance(collection, Collection):
            faces, notes = collection.faces_of(image_id), collection.annotations.of(image_id)
        else:
            faces, notes = collection.details(image_id)
    return schemas.ImageInfo(**image_out(record).model_dump(),
                             faces=[face_out(face) for face in faces],
                             annotations=[annotation_out(note) for note in notes])


@router.post("/images", dependencies=[*WRITE, Depends(one_value_per_form_field)],
             openapi_extra=UPLOAD_FORM,
             responses=errors(*WRITES, 413, 415, 422))
def add_image(state: State,
              image: Annotated[UploadFile, File(json_schema_extra=IMAGE)]) -> schemas.Added:
    # Read and checked before the collection is touched; a refused upload costs no write.
    data = read_upload(image, state.max_upload_bytes)
    name = image.filename or "upload"
    with state.using() as collection:
        path = collection.store_upload(data, name)
        record, report = collection.index_upload(path, name)
    return schemas.Added(image_id=record.id, path=record.path, report=report.as_dict())


@router.delete("/images/{image_id}", dependencies=WRITE, responses=errors(*WRITES, 404, 422))
def delete_image(state: State, image_id: Id) -> dict[str, int]:
    with state.using() as collection:
        return {"removed": collection.delete_image(image_id)}


# Image types Python's table may lack (it varies with the version and the system).
_IMAGE_TYPES = {".avif": "image/avif", ".heic": "image/heic", ".heif": "image/heif",
                ".jxl": "image/jxl", ".webp": "image/webp", ".jfif": "image/jpeg"}


def image_type(name: str) -> str:
    """The Content-Type of an indexed image: an image/... type, whatever its suffix."""
    guessed = mimetypes.guess_type(name)[0]
    if guessed and guessed.startswith("image/"):
        return guessed
    return _IMAGE_TYPES.get(Path(name).suffix.lower(), "image/" + (
        Path(name).suffix.lower().lstrip(".") or "unknown"))
