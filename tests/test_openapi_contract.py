"""The OpenAPI document is the server's contract: schemathesis generates requests from
``/openapi.json`` (valid ones and invalid ones, every phase: examples, coverage, fuzzing
and stateful sequences) and runs every check on each answer: no 5xx, every status code,
content type and header documented, every body conforming to its schema, valid data
accepted, invalid data refused, undeclared methods answered 405 with a true ``Allow``, and
each answer within 10 s.

The app runs in-process (ASGI) over a small collection with the cheap ``thumbnail``
extractor, the write token set and sent, so the write routes are exercised too. The run is
seeded and bounded; ``LOOKALIKE_OPENAPI_EXAMPLES`` (examples per operation, default 25)
and ``LOOKALIKE_OPENAPI_SEED`` change it, and ``benchmarks/bench_openapi.py`` runs it
longer.

What a schema cannot say is given to schemathesis here, not loosened in its checks:
an upload must be a decodable image (a strategy makes PNG and JPEG files), and a search's
box must lie inside the query image, ``date_from`` must not be after ``date_to``, and
``fusion=learned`` needs a trained ranker (schema-valid searches that break one of these
are not generated as valid ones; the server refuses them with 422 or 400, as documented).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

import schemathesis
from conftest import THUMBNAIL, pattern, write_images
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from jsonschema_rs import Draft202012Validator
from PIL import Image
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

from lookalike import Collection
from lookalike.server import create_app

TOKEN = "a-long-secret"
EXAMPLES = int(os.environ.get("LOOKALIKE_OPENAPI_EXAMPLES", "25"))
SEED = int(os.environ.get("LOOKALIKE_OPENAPI_SEED", "17"))
MAX_RESPONSE_S = 10.0


def contract_collection(folder: Path) -> Path:
    """Six indexed images with the ``thumbnail`` extractor, under ``folder``."""
    photos = write_images(folder / "photos", range(6))[0].parent
    root = folder / "collection"
    with Collection(root, configs={"global": THUMBNAIL}) as collection:
        collection.index([photos])
    return root


def contract_app(root: Path) -> FastAPI:
    # schemathesis calls the app as host 'testserver'.
    return create_app(root, token=TOKEN, max_upload_bytes=2_000_000,
                      allowed_hosts=["testserver"])


@dataclass
class ContractReport:
    cases: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # unique failures, one line each
    kinds: Counter[str] = field(default_factory=Counter)  # failures by kind
    errors: list[str] = field(default_factory=list)  # schemathesis could not run something

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.kinds.most_common())
        return (f"{self.cases} cases in {self.seconds:.1f} s: {len(self.failures)} failures"
                f"{f' ({kinds})' if kinds else ''}, {len(self.errors)} errors")


def run_contract(app: FastAPI, *, examples: int, seed: int) -> ContractReport:
    """schemathesis over ``app``'s document, every phase and every check."""
    for media, fmt in (("image/png", "PNG"), ("image/jpeg", "JPEG")):
        schemathesis.openapi.media_type(media, _images(fmt))
    config = schemathesis.Config.from_dict({
        "seed": seed,
        "workers": 1,  # one at a time: the same seed makes the same run
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "generation": {"max-examples": examples},
        # Every check; max_response_time is the one that needs a limit to be on.
        "checks": {"enabled": True, "max_response_time": MAX_RESPONSE_S},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    schema.hooks.hook(filter_case)
    report, statistic = ContractReport(), Statistic()
    started = time.perf_counter()
    with TestClient(app):  # the app's start-up and shut-down, around the run
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
                statistic.on_scenario_finished(event.recorder)
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"{event.label}: {event.value}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception}")
            elif isinstance(event, events.EngineFinished) and event.failures:
                report.failures += [f"after the run: {f.title}" for f in event.failures]
    report.seconds = time.perf_counter() - started
    report.cases = statistic.total_cases
    for label, groups in statistic.failures.items():
        for group in groups.values():
            status = group.response.status_code if group.response is not None else None
            for failure in group.failures:
                report.kinds[type(failure).__name__] += 1
                message = " ".join((failure.message or "").split())[:300]
                sample = " ".join((group.code_sample or "").split())
                report.failures.append(f"{label}: {failure.title} (status {status}): {message}"
                                       f"\n    {_printable(sample)[:1500]}")
    return report


def _printable(text: str) -> str:
    """A request's sample, its uploaded bytes left out."""
    return "".join(char if char.isprintable() else "." for char in text)


def filter_case(context: Any, case: Any) -> bool:
    """Generate as valid only the searches the server can serve: what the schema cannot
    say (a box inside the query image, dates in order, a trained ranker) is left out of
    the valid ones. (Filtered, not edited: schemathesis judges an edited body with a file
    in it as invalid.)"""
    meta = case.meta
    if case.operation.label != "POST /search" or meta is None or not isinstance(case.body, dict):
        return True
    if not meta.generation.mode.is_positive:
        return not _undone_by_the_form(case)
    body = case.body
    if body.get("box") or body.get("fusion") == "learned":
        return False
    start, end = body.get("date_from"), body.get("date_to")
    return not (isinstance(start, str) and isinstance(end, str) and start and end
                and start > end)


def _undone_by_the_form(case: Any) -> bool:
    """Whether every mutation of a negative form case is undone on the wire, so the server
    rightly accepts it: a form field is text, so ``category=0`` arrives as the valid string
    "0", a date "negated" to the empty string is the documented "no date", and a field
    "negated" to an empty list is not sent at all (every field of the form is optional;
    the query it must still carry is checked by the server, not here). Each mutated
    field is checked, as sent, against its own schema; any that still breaks it (or any
    mutation this cannot judge) keeps the case."""
    mutations = getattr(getattr(case.meta.phase, "data", None), "mutations", None)
    if not mutations:
        return False
    body = case.operation.get_body_for_media_type(case.media_type)
    properties = body.form_properties if body is not None else {}
    for mutation in mutations:
        schema = properties.get(mutation.parameter)
        if schema is None or mutation.parameter not in case.body:
            return False
        if case.body[mutation.parameter] == []:  # an empty list sends nothing: left out
            continue
        sent = _as_form_text(case.body[mutation.parameter])
        if not Draft202012Validator(schema, validate_formats=True).is_valid(sent):
            return False
    return True


def _as_form_text(value: Any) -> Any:
    """A form value as the server receives it: text (JSON's spelling for true, null...)."""
    if isinstance(value, list):  # a repeated field; a list inside it is sent as its JSON
        return [json.dumps(item) if isinstance(item, list) else _as_form_text(item)
                for item in value]
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, bool | dict) or value is None:
        return json.dumps(value)
    return str(value)


def _images(fmt: str) -> st.SearchStrategy[bytes]:
    """Decodable image files: what an upload must be, and a schema cannot say."""
    def encode(seed: int, width: int, height: int) -> bytes:
        out = io.BytesIO()
        Image.fromarray(pattern(seed, (width, height))).save(out, format=fmt)
        return out.getvalue()

    return st.builds(encode, st.integers(0, 2**32 - 1), st.integers(8, 64), st.integers(8, 64))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return contract_app(contract_collection(tmp_path_factory.mktemp("contract")))


def test_the_server_keeps_its_openapi_contract(app: FastAPI) -> None:
    report = run_contract(app, examples=EXAMPLES, seed=SEED)
    print(report.summary())
    assert not report.errors, report.errors
    assert not report.failures, "\n".join(report.failures)
    assert report.cases >= 20 * EXAMPLES  # every operation was exercised


def test_the_document_states_what_the_server_does(app: FastAPI) -> None:
    from lookalike.collection.annotations import USER_KINDS
    from lookalike.fusion import FUSIONS

    doc = app.openapi()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # one error shape, {"detail": "..."}
    assert schemas["ErrorOut"]["properties"]["detail"]["type"] == "string"
    writes = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "400" in answers, (method, path)
            for status, answer in answers.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
            if any(p["name"] == "authorization" for p in operation.get("parameters", [])):
                writes += 1
                assert {"401", "403"} <= set(answers), (method, path)
    assert writes == 11
    assert set(doc["paths"]["/images/{image_id}"]["get"]["responses"]["200"]["content"]) == {
        "image/*"}
    for path in ("/images/{image_id}/thumbnail", "/faces/{face_id}/thumbnail"):
        assert set(doc["paths"][path]["get"]["responses"]["200"]["content"]) == {"image/jpeg"}
    # The library's own sets, stated in the document.
    assert schemas["AnnotationIn"]["properties"]["kind"]["enum"] == list(USER_KINDS)
    form = schemas["Body_search_search_post"]["properties"]
    assert form["fusion"]["enum"] == list(FUSIONS)
    assert form["channel"]["enum"] == ["auto", "global"]
    # The largest id exactly (FastAPI's model would round it to 2**63).
    assert schemas["ClickIn"]["properties"]["image_id"]["maximum"] == 2**63 - 1
    assert schemas["UpdateIn"]["properties"]["reset"]["type"] == "boolean"
