"""Every error answer has one shape, ``{"detail": "reason"}``, and every route documents the
error statuses it can answer with (:func:`errors`).

FastAPI's own answers are brought to that shape here: a request that does not match the
OpenAPI document (FastAPI's ``RequestValidationError``, a list of pydantic errors) becomes
one 422 line that names the field and what was expected, and a 405 lists in ``Allow``
every method of the path, not only those of the first route that matched it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorOut(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="why the request was refused, in one line")


# What each status means in this API, as the OpenAPI document says it.
REASONS = {
    400: "the request cannot be read (a malformed body, or a Host this server does not "
         "answer), or the collection cannot do it (no learned ranker for fusion=learned)",
    401: "a write without 'Authorization: Bearer <token>' and the server's token",
    403: "writes are disabled: the server was started without a token",
    404: "no such image, annotation, person, face or logged search, or the collection has "
         "no faces channel",
    413: "the request body, the upload or its pixels are over the server's limits",
    409: "another process is writing to the collection (indexing it, or editing it) and did "
         "not finish in time: try again later",
    415: "the upload does not say it is an image (its part's Content-Type is not image/...)",
    422: "a field is missing, malformed or out of its bounds, or the request cannot be "
         "served as asked (a box outside the image, no face in the query, ...)",
    501: "the server serves a split collection, which it searches and shows but does not "
         "change or group into people",
    503: "the server serves a split collection and shards it needs did not answer",
}
# Any request can be refused for its Host or a body that cannot be parsed.
ALWAYS = (400,)
# What a write adds: the token, another process writing to the collection, and a split
# collection (served read-only).
WRITES = (401, 403, 409, 501)
# What a read of a whole collection's own records (people, faces) adds.
WHOLE = 501
# What a read of a split collection adds: a shard down.
SHARDS = 503


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that can answer ``statuses`` (and 400, as any route)."""
    return {status: {"model": ErrorOut, "description": REASONS[status]}
            for status in sorted({*ALWAYS, *statuses})}


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    """A request FastAPI refused against the document: one line, ``{"detail": "..."}``."""
    problems = [_one(problem) for problem in error.errors()]
    shown = "; ".join(problems[:3])
    if len(problems) > 3:
        shown += f" (and {len(problems) - 3} more)"
    return JSONResponse({"detail": shown or "expected a valid request"}, status_code=422)


async def http_error(request: Request, error: StarletteHTTPException) -> Response:
    """FastAPI's answer to an HTTP error, with a true ``Allow`` on a 405."""
    if error.status_code == 405:
        headers = dict(error.headers or {})
        allowed = allowed_methods(request, headers.get("Allow", ""))
        error = StarletteHTTPException(
            405, f"expected a method among {', '.join(allowed)}, got {request.method}",
            headers={**headers, "Allow": ", ".join(allowed)})
    return await http_exception_handler(request, error)


def allowed_methods(request: Request, given: str) -> list[str]:
    """Every method the path answers: those of the route that refused (``given``, all
    Starlette names) and every other operation of the path in the OpenAPI document."""
    methods = {method.strip().upper() for method in given.split(",") if method.strip()}
    path = request.scope["path"]
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in item}
    return sorted(methods)


# -- one line per pydantic error ----------------------------------------------------------

_WHERE = {"body": "in the body", "query": "in the query", "path": "in the path",
          "header": "in the headers", "cookie": "in the cookies"}


def _one(problem: dict[str, Any]) -> str:
    """``expected <what> for <field> in <where>, got <value>``."""
    loc: Sequence[Any] = problem.get("loc", ())
    where = _WHERE.get(str(loc[0]), "") if loc else ""
    field = ".".join(str(part) for part in loc[1:]) if where else ".".join(map(str, loc))
    kind = str(problem.get("type", ""))
    expected = _expected(kind, problem.get("ctx") or {}, str(problem.get("msg", "")))
    named = f"'{field}' {where}".strip() if field else (where.removeprefix("in ") or "request")
    if kind == "missing":
        return f"expected {named}: it is required, got nothing"
    if kind == "json_invalid":
        return f"expected valid JSON {where or 'in the body'}, got {ctx_error(problem)}"
    return f"expected {expected} for {named}, got {_shown(problem.get('input'))}"


def _expected(kind: str, ctx: dict[str, Any], message: str) -> str:
    limits = {
        "less_than_equal": lambda: f"a number at most {ctx.get('le')}",
        "less_than": lambda: f"a number below {ctx.get('lt')}",
        "greater_than_equal": lambda: f"a number at least {ctx.get('ge')}",
        "greater_than": lambda: f"a number above {ctx.get('gt')}",
        "string_too_long": lambda: f"a text of at most {ctx.get('max_length')} characters",
        "string_too_short": lambda: f"a text of at least {ctx.get('min_length')} characters",
        "too_long": lambda: f"at most {ctx.get('max_length')} items",
        "too_short": lambda: f"at least {ctx.get('min_length')} items",
        "literal_error": lambda: f"one of {ctx.get('expected')}",
        "string_pattern_mismatch": lambda: f"a text matching {ctx.get('pattern')!r}",
    }
    if kind in limits:
        return limits[kind]()
    plain = {
        "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
        "bool_type": "true or false", "bool_parsing": "true or false",
        "float_parsing": "a number", "float_type": "a number", "string_type": "a text",
        "string_unicode": "a text in valid Unicode",
        "list_type": "a list", "dict_type": "a JSON object",
        "model_attributes_type": "a JSON object", "json_type": "valid JSON",
    }
    if kind in plain:
        return plain[kind]
    if "UploadFile" in message:  # FastAPI's check of a File() field
        return "an uploaded file"
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:] if message else "a valid value"


def ctx_error(problem: dict[str, Any]) -> str:
    """Where and why JSON could not be parsed."""
    reason = (problem.get("ctx") or {}).get("error", "an error")
    return f"{reason} at character {problem['loc'][-1]}" if len(problem.get("loc", ())) > 1 \
        else str(reason)


def _shown(value: Any) -> str:
    if isinstance(value, dict | list) and len(repr(value)) > 80:
        return f"a {type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
