"""What requests carry, checked at the boundary: ids, uploads, boxes and dates.

Each check answers with the HTTP error a client can act on ("expected X, got Y") before
the library is called. The patterns here are also the OpenAPI document's, so what the
document allows is what the server takes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated

from fastapi import HTTPException, UploadFile
from fastapi import Path as Path_

from lookalike.collection import MAX_ID
from lookalike.images import Box

# An id in a path: beyond SQLite's integers it could name nothing, so it is refused up front.
Id = Annotated[int, Path_(ge=1, le=MAX_ID)]

_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?"
# "x0,y0,x1,y1": four finite decimal numbers (an exponent of at most two digits keeps them
# finite), spaces allowed around each.
BOX_PATTERN = rf"^ *{_NUMBER} *, *{_NUMBER} *, *{_NUMBER} *, *{_NUMBER} *$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_BOX = re.compile(BOX_PATTERN)
_DATE = re.compile(DATE_PATTERN)


# An uploaded image, as the document describes it (what :func:`read_upload` takes).
IMAGE = {"minLength": 1, "description": "an image file (JPEG, PNG, WebP, ...) sent with an "
                                        "image/... Content-Type, within the server's limits "
                                        "on bytes and pixels"}


def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refused when it does not claim to be an image or is too large."""
    kind = (upload.content_type or "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        raise HTTPException(415, f"{upload.filename or 'upload'}: expected an image content "
                                 f"type (image/...), got '{kind or 'none'}'")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{upload.filename or 'upload'}: expected at most "
                                 f"{limit:,} bytes, got more")
    if not data:
        raise HTTPException(422, f"{upload.filename or 'upload'}: empty upload (0 bytes)")
    return data


def parse_date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise HTTPException(422, f"expected a date YYYY-MM-DD, got {text!r}") from error


def parse_box(text: str | None) -> Box | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (float(part) for part in text.split(","))
    except ValueError as error:
        raise HTTPException(422, f"expected box as 'x0,y0,x1,y1', got '{text[:80]}'") from error
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise HTTPException(422, f"expected a box of finite numbers, got '{text[:80]}'")
    if not _BOX.fullmatch(text):
        raise HTTPException(422, f"expected box as 'x0,y0,x1,y1' in decimal numbers, got "
                                 f"'{text[:80]}'")
    return x0, y0, x1, y1
