"""POST /search (by an upload, an indexed image, a text, or an image and a text) and
POST /clicks (which result of a logged search was opened)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from lookalike.collection import MAX_ID, SearchFilter
from lookalike.fusion import FUSIONS
from lookalike.images import Box, load_image
from lookalike.server import schemas
from lookalike.server.errors import SHARDS, WHOLE, errors
from lookalike.server.inputs import BOX_PATTERN, IMAGE, parse_box, parse_date, read_upload
from lookalike.server.outputs import result_out
from lookalike.server.query import one_value_per_form_field
from lookalike.server.state import ServerState, State

router = APIRouter()

# What the form's fields cannot say one by one: a query is an image (an upload or an
# indexed image's id, not both), a text with a word in it, or both.
_ONE_QUERY = {
    "anyOf": [{"required": ["image"]}, {"required": ["image_id"]},
              {"required": ["text"], "properties": {"text": {"pattern": schemas.NOT_SPACE}}}],
    "not": {"required": ["image", "image_id"]},
}
SEARCH_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": _ONE_QUERY, "encoding": {"image": {"contentType": "image/*"}}}}}}
Category = Annotated[str, Form(max_length=200)]
# An empty field is a field left out (HTML forms send them).
_BOX = {"pattern": f"^$|{BOX_PATTERN}"}
_DATE = {"oneOf": [{"format": "date"}, {"maxLength": 0}]}


@router.post("/search", responses=errors(404, 409, 413, 415, 422, SHARDS),
             openapi_extra=SEARCH_FORM, dependencies=[Depends(one_value_per_form_field)])
def search(state: State,
           image: Annotated[UploadFile | None, File(json_schema_extra=IMAGE)] = None,
           image_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
           text: Annotated[str | None, Form(max_length=1000)] = None,
           box: Annotated[str | None, Form(max_length=200,
                                           json_schema_extra=_BOX)] = None,
           channel: Annotated[str, Form(max_length=100)] = "auto",
           fusion: Annotated[str, Form(json_schema_extra={"enum": list(FUSIONS)})] = "auto",
           k: Annotated[int, Form(ge=1, le=200)] = 24,
           offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
           folder: Annotated[str | None, Form(max_length=4096,
                                              json_schema_extra={"pattern": "^(/|$)"})] = None,
           category: Annotated[list[Category] | None, Form(max_length=200)] = None,
           date_from: Annotated[str | None, Form(max_length=10, json_schema_extra=_DATE)] = None,
           date_to: Annotated[str | None, Form(max_length=10, json_schema_extra=_DATE)] = None,
           log: Annotated[bool, Form()] = False,
           ) -> schemas.SearchResponse:
    text = (text or "").strip() or None
    _check_query(image, image_id, text, folder)
    started = time.perf_counter()
    region = parse_box(box)
    filters = state.guard(lambda: SearchFilter(
        categories=tuple(c for c in (category or []) if c.strip()), folder=folder or None,
        date_from=parse_date(date_from), date_to=parse_date(date_to)))
    if state.shards is not None:
        return _search_shards(state, image, image_id, text, filters, region, channel, fusion,
                              k, offset, started)
    pixels = _query_pixels(state, image, image_id, channel, region)
    with state.using() as collection:
        found, rankings = collection.search_with_rankings(
            pixels, text=text, k=offset + k, channel=channel, box=region,
            filters=filters, fusion=fusion)
        page = found[offset:offset + k]
        # Logged only when asked (the page asks, so its clicks can train the ranker). Shown:
        # this page and the ones before it, which the user paged past, so that a click's
        # rank is the one on the page and the results above it count as seen.
        query_id = collection.feedback.log_search(
            rankings, [result.image_id for result in found[:offset + k]]) if log else None
        state.count_search()
    return schemas.SearchResponse(
        channel=channel, k=k, offset=offset, text=text, fusion=fusion,
        filters=filters.as_dict(), query_id=query_id,
        took_ms=round(1000 * (time.perf_counter() - started), 2),
        query=None if pixels is None else schemas.QueryOut(
            image_id=image_id, width=pixels.shape[1], height=pixels.shape[0],
            box=list(region) if region else None),
        results=[result_out(result) for result in page])


def _search_shards(state: ServerState, image: UploadFile | None, image_id: int | None,
                   text: str | None, filters: SearchFilter, region: Box | None, channel: str,
                   fusion: str, k: int, offset: int, started: float) -> schemas.SearchResponse:
    """A split collection: the query's bytes go to the shards, which decode them as the one
    collection would. Searches are not logged (clicks train a whole collection's ranker)."""
    if filters.active:
        raise HTTPException(422, "expected no filters: a split collection does not filter "
                                 "its searches yet")
    shards = state.shards
    if shards is None:
        raise HTTPException(422, "expected a split collection")
    data, size = None, None
    with state.browsing():
        if image is not None or image_id is not None:
            data = (read_upload(image, state.max_upload_bytes) if image is not None
                    else shards.image_bytes(int(image_id or 0)))
            # Decoded here too, to refuse a bad image up front and to give its size.
            size = load_image(data, max_pixels=shards.max_pixels,
                              name=image.filename if image else None).shape[:2]
        found = shards.search(data, text=text, k=offset + k, channel=channel, box=region,
                              fusion=fusion)
        state.count_search()
    return schemas.SearchResponse(
        channel=channel, k=k, offset=offset, text=text, fusion=fusion,
        filters=filters.as_dict(), took_ms=round(1000 * (time.perf_counter() - started), 2),
        query=None if size is None else schemas.QueryOut(
            image_id=image_id, width=size[1], height=size[0],
            box=list(region) if region else None),
        results=[result_out(result) for result in found.results[offset:offset + k]],
        partial=found.partial, missing_shards=found.missing)


@router.post("/clicks", responses=errors(404, 409, 413, 422, WHOLE))
def click(state: State, body: schemas.ClickIn) -> dict[str, int]:
    """Log that a result was opened; clicks train the learned ranker (no token needed:
    the owner decides when to train on them)."""
    with state.using() as collection:
        return {"rank": collection.feedback.log_click(body.query_id, body.image_id)}


def _check_query(image: UploadFile | None, image_id: int | None, text: str | None,
                 folder: str | None) -> None:
    if folder and not Path(folder).is_absolute():
        raise HTTPException(422, f"expected an absolute folder, got {folder!r}")
    if image is not None and image_id is not None:
        raise HTTPException(422, "expected an uploaded 'image' or an 'image_id', not both")
    if image is None and image_id is None and text is None:
        raise HTTPException(422, "expected an uploaded 'image', an 'image_id', a 'text', "
                                 "or an image and a text, as fields of a multipart/form-data "
                                 "body")


def _query_pixels(state: ServerState, image: UploadFile | None, image_id: int | None,
                  channel: str, region: Box | None) -> np.ndarray | None:
    """The query image decoded, or None for a search by text alone."""
    if image is None and image_id is None:
        return None
    name = None
    if image is not None:
        source: bytes | str = read_upload(image, state.max_upload_bytes)
        name = image.filename or "upload"
    else:
        source = _indexed_path(state, int(image_id or 0))
    with state.using() as collection:
        return collection.decode_query(source, channel=channel, box=region, name=name)


def _indexed_path(state: ServerState, image_id: int) -> str:
    with state.using() as collection:
        return str(collection.image_file(image_id))  # 404 when the file is gone, as elsewhere
