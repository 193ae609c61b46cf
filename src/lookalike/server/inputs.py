"""What requests carry, checked at the boundary: ids, uploads, boxes and dates.

Each check answers with the HTTP error a client can act on ("expected X, got Y") before
the library is called.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Annotated

from fastapi import HTTPException, UploadFile
from fastapi import Path as Path_

from lookalike.collection import MAX_ID
from lookalike.images import Box

# An id in a path: beyond SQLite's integers it could name nothing, so it is refused up front.
Id = Annotated[int, Path_(ge=1, le=MAX_ID)]


def check_ids(ids: Iterable[int], what: str) -> None:
    """Refuse ids that do not fit SQLite's 64-bit integers (they would fail deep in it);
    an id that fits and names nothing is the library's to refuse."""
    for value in ids:
        if not -MAX_ID - 1 <= value <= MAX_ID:
            raise HTTPException(422, f"expected {what} ids that fit in 64 bits, got {value}")


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
    return x0, y0, x1, y1
