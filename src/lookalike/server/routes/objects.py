"""POST /objects: the objects in an image (an upload or an indexed image), each a box a
search may be narrowed to, as a visual search app suggests them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from lookalike.collection import MAX_ID
from lookalike.images import load_image
from lookalike.server import schemas
from lookalike.server.errors import WHOLE, errors
from lookalike.server.inputs import IMAGE, read_upload
from lookalike.server.query import one_value_per_form_field
from lookalike.server.state import State

router = APIRouter()

OBJECTS_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"oneOf": [{"required": ["image"]}, {"required": ["image_id"]}]},
    "encoding": {"image": {"contentType": "image/*"}}}}}}


@router.post("/objects", responses=errors(404, 413, 415, 422, WHOLE),
             openapi_extra=OBJECTS_FORM, dependencies=[Depends(one_value_per_form_field)])
def objects(state: State,
            image: Annotated[UploadFile | None, File(json_schema_extra=IMAGE)] = None,
            image_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
            ) -> schemas.ObjectsResponse:
    if (image is None) == (image_id is None):
        raise HTTPException(422, "expected an image or an image_id, got "
                                 f"{'both' if image is not None else 'neither'}")
    data = read_upload(image, state.max_upload_bytes) if image is not None else None
    with state.using() as collection:
        source = data if data is not None else str(collection.image_file(int(image_id or 0)))
        pixels = load_image(source, max_pixels=collection.max_pixels,
                            name=image.filename if image is not None else None)
        found = collection.searcher().objects_in(pixels)
    return schemas.ObjectsResponse(
        width=pixels.shape[1], height=pixels.shape[0],
        objects=[schemas.ObjectOut(label=item.label, score=round(item.score, 4),
                                   box=[round(float(v), 1) for v in item.box])
                 for item in found])
