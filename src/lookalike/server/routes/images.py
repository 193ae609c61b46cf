"""The indexed images: list them, serve a file, a thumbnail or what is known of one; add
an upload and delete an image (with the token)."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse, Response

from lookalike.server import schemas
from lookalike.server.inputs import Id, read_upload
from lookalike.server.outputs import annotation_out, face_out, image_out, jpeg
from lookalike.server.state import WRITE, State

router = APIRouter()


@router.get("/images")
def images(state: State, offset: Annotated[int, Query(ge=0)] = 0,
           limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.ImageList:
    with state.using() as collection:
        everything = collection.images()
    return schemas.ImageList(total=len(everything),
                             images=[image_out(r) for r in everything[offset:offset + limit]])


@router.get("/images/{image_id}")
def image_file(state: State, image_id: Id) -> FileResponse:
    # Only a catalogued id reaches the file system: the path is the catalog's, never the
    # client's.
    with state.using() as collection:
        path = collection.image_file(image_id)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media)


@router.get("/images/{image_id}/thumbnail")
def thumbnail(state: State, image_id: Id,
              size: Annotated[int, Query(ge=16, le=1024)] = 256) -> Response:
    with state.using() as collection:
        record = collection.image(image_id)
    # Made (or read from the collection's cache) outside the lock: a page of results asks
    # for all its thumbnails at once, and none of them needs the catalog.
    return jpeg(state.guard(lambda: state.collection.media.thumbnail(
        record.id, record.path, record.sha256, size)))


@router.get("/images/{image_id}/info")
def image_info(state: State, image_id: Id) -> schemas.ImageInfo:
    with state.using() as collection:
        record = collection.image(image_id)
        faces = collection.faces_of(image_id)
        notes = collection.annotations.of(image_id)
    return schemas.ImageInfo(**image_out(record).model_dump(),
                             faces=[face_out(face) for face in faces],
                             annotations=[annotation_out(note) for note in notes])


@router.post("/images", dependencies=WRITE)
def add_image(state: State, image: Annotated[UploadFile, File()]) -> schemas.Added:
    # Read, checked, decoded and kept outside the lock; only indexing needs the collection.
    data = read_upload(image, state.max_upload_bytes)
    name = image.filename or "upload"
    path = state.guard(lambda: state.collection.store_upload(data, name))
    with state.using() as collection:
        record, report = collection.index_upload(path, name)
    return schemas.Added(image_id=record.id, path=record.path, report=report.as_dict())


@router.delete("/images/{image_id}", dependencies=WRITE)
def delete_image(state: State, image_id: Id) -> dict[str, int]:
    with state.using() as collection:
        return {"removed": collection.delete_image(image_id)}
