"""The OpenAPI document, as true as the server: FastAPI's, with what it gets wrong put right.

- Integer bounds are exact. FastAPI's document model keeps ``minimum`` and ``maximum`` as
  floats, so the largest id, 2**63 - 1, would be written as 2**63: one past it.
- A form field, a header or a query parameter that is left out is absent, never ``null``
  (none of them can carry a null; FastAPI documents an optional one as "a string or null"),
  and a form field that takes several values (repeated) takes a single one too.
- The search form names the channels of this collection, ``auto`` first, and takes a
  text only when one of them searches by text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from lookalike.collection import MAX_ID
from lookalike.server.schemas import BLANK

_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_MIN_ID = -MAX_ID - 1


def document(app: FastAPI, channels: Sequence[str], *, text_search: bool) -> dict[str, Any]:
    """The document of ``app``, a collection with ``channels``; ``text_search``: whether
    one of them searches by text."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    _exact_integer_bounds(doc)
    for schema in _form_schemas(doc):
        for name, field in schema.get("properties", {}).items():
            schema["properties"][name] = _one_or_more(_without_null(field))
    for parameter in _parameters(doc):  # a header or a query is a text or absent, too
        parameter["schema"] = _without_null(parameter["schema"])
    search = _form_schema(doc, "/search", "post")
    if search is not None:
        search["properties"]["channel"]["enum"] = ["auto", *channels]
        if not text_search:
            _no_text_search(doc, search)
    return doc


def _no_text_search(doc: dict[str, Any], form: dict[str, Any]) -> None:
    """Without a text channel, a search text is refused: only a blank one (none) is taken."""
    form["properties"]["text"].update(
        pattern=BLANK, description="this collection has no text channel: leave it out")
    query = doc["paths"]["/search"]["post"]["requestBody"]["content"]["multipart/form-data"]
    ways = query["schema"].get("anyOf", [])
    query["schema"]["anyOf"] = [way for way in ways if "text" not in way.get("required", [])]


def _exact_integer_bounds(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    # The bounds of the API are 64-bit integers; 2**63 - 1 came back as 2**63.
                    node[key] = min(max(int(value), _MIN_ID), MAX_ID)
        for value in node.values():
            _exact_integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_integer_bounds(value)


def _parameters(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter for item in doc.get("paths", {}).values() for operation in item.values()
            for parameter in operation.get("parameters", []) if "schema" in parameter]


def _form_schemas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in doc.get("paths", {}).items():
        for method in item:
            schema = _form_schema(doc, path, method)
            if schema is not None:
                found.append(schema)
    return found


def _form_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    """The object schema of the form that ``method path`` takes, if it takes one."""
    content = doc["paths"].get(path, {}).get(method, {}).get("requestBody", {}).get("content", {})
    for media in _FORMS:
        schema = content.get(media, {}).get("schema")
        if schema is not None:
            ref = schema.get("$ref", "")
            resolved: dict[str, Any] = (doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
                                        if ref else schema)
            return resolved
    return None


def _one_or_more(field: dict[str, Any]) -> dict[str, Any]:
    """A form field that takes several values (repeated) takes one value as well."""
    if field.get("type") != "array" or not isinstance(field.get("items"), dict):
        return field
    many = {key: value for key, value in field.items() if key not in ("title", "description")}
    rest = {key: value for key, value in field.items() if key in ("title", "description")}
    return {**rest, "anyOf": [field["items"], many]}


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    choices = field.get("anyOf")
    if not isinstance(choices, list) or {"type": "null"} not in choices:
        return field
    kept = [choice for choice in choices if choice != {"type": "null"}]
    rest = {key: value for key, value in field.items() if key != "anyOf"}
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
