"""The FastAPI application: every endpoint is a few lines over the library API.

One :class:`~lookalike.Collection` is opened per process, and its models are loaded at
start-up. Requests are served concurrently (uvicorn's thread pool reads and checks
uploads in parallel); the calls into the collection hold one lock, because the
catalog connection and the channels' lazily synchronised indexes are shared state.
ONNX Runtime and OpenCV already use every core inside one search.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import math
import mimetypes
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, UploadFile
from fastapi import Path as Path_
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image

from lookalike.collection import Collection, FacesChannel, Person, SearchFilter, SearchResult
from lookalike.collection.catalog import ImageRecord
from lookalike.collection.faces_channel import check_faces_channel
from lookalike.collection.learning import log_click, log_search
from lookalike.errors import ImageError, LookalikeError, NotFoundError, ValidationError
from lookalike.faces import NoFaceError
from lookalike.images import load_image
from lookalike.paths import atomic_write_bytes
from lookalike.server import schemas
from lookalike.server.limits import BodyLimit

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD = 20 * 2**20
# Lower than the library's cap: one query is decoded per request, and a small PNG can
# claim 89 megapixels. 40 MP still takes any camera's photo.
DEFAULT_MAX_PIXELS = 40_000_000
THUMBNAIL_SIZES = (128, 256, 512, 1024)  # sizes are rounded up to these, to bound the cache
MAX_ID = 2**63 - 1
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the other form fields
T = TypeVar("T")


@dataclass
class ServerState:
    collection: Collection
    token: str | None
    max_upload_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)
    requests: int = 0
    searches: int = 0

    @contextmanager
    def using(self) -> Iterator[Collection]:
        """The collection, for one call at a time; library errors become HTTP errors."""
        with self.lock, _http_errors():
            yield self.collection

    def guard(self, call: Callable[[], T]) -> T:
        """``call()`` without the lock, with library errors turned into HTTP errors."""
        with _http_errors():
            return call()


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except NoFaceError as error:
        raise HTTPException(422, str(error)) from error
    except NotFoundError as error:
        raise HTTPException(404, str(error)) from error
    except ImageError as error:
        raise HTTPException(_image_status(error.reason), str(error)) from error
    except ValidationError as error:
        raise HTTPException(422, str(error)) from error
    except LookalikeError as error:
        raise HTTPException(400, str(error)) from error


def create_app(root: Path, *, token: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
               max_pixels: int = DEFAULT_MAX_PIXELS,
               cors_origins: list[str] | None = None,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The API and the page over the collection in ``root`` (which must exist).

    Write endpoints need ``Authorization: Bearer <token>``; with ``token=None`` they are
    refused. ``cors_origins`` allows those origins; CORS is off otherwise.
    ``allowed_hosts`` are the ``Host`` names answered (default: this machine's), so a web
    page elsewhere cannot read the collection through DNS rebinding.
    """
    if token is not None and len(token) < 8:
        raise ValidationError(f"expected a token of at least 8 characters, got {len(token)}")
    collection = Collection(root, max_pixels=max_pixels).open(create=False)
    state = ServerState(collection=collection, token=token, max_upload_bytes=max_upload_bytes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for channel in collection.channels.values():
            channel.prepare()  # load every model once, before the first request
        yield
        with state.lock:
            collection.close()

    # No /docs or /redoc: their pages load scripts from a CDN; /openapi.json is served.
    app = FastAPI(title="Lookalike", version="0.1.0", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Visual search over one collection: search by example, by "
                              "crop and by face, and see why each result matched.")
    app.add_middleware(TrustedHostMiddleware,
                       allowed_hosts=allowed_hosts or ["localhost", "127.0.0.1", "[::1]"])
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.state.lookalike = state

    @app.middleware("http")
    async def count(request: Any, call_next: Callable[[Any], Any]) -> Any:
        state.requests += 1
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # Outermost: refuse an oversized body before any of it is read or spooled to disk.
    app.add_middleware(BodyLimit, limit=max_upload_bytes + _FORM_OVERHEAD)

    def writer(authorization: Annotated[str | None, Header()] = None) -> None:
        if state.token is None:
            raise HTTPException(403, "writes are disabled: start the server with --token or "
                                     "LOOKALIKE_TOKEN")
        scheme, _, given = (authorization or "").strip().partition(" ")
        given = given.strip()
        if (scheme.lower() != "bearer" or not given
                or not hmac.compare_digest(given.encode(), state.token.encode())):
            raise HTTPException(401, "expected 'Authorization: Bearer <token>' with the "
                                     "server's token", headers={"WWW-Authenticate": "Bearer"})

    write = [Depends(writer)]
    _add_read_routes(app, state)
    _add_write_routes(app, state, write)
    _add_people_routes(app, state, write)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


# -- reading ----------------------------------------------------------------------------------

def _add_read_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/health")
    def health() -> schemas.Health:
        with state.using() as collection:
            return schemas.Health(status="ok", images=collection.catalog.count("indexed"),
                                  channels=list(collection.channels))

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        with state.using() as collection:
            info = collection.info()
        return {"collection": info, "server": {
            "uptime_s": round(time.time() - state.started, 1), "requests": state.requests,
            "searches": state.searches}}

    @app.post("/search")
    def search(image: Annotated[UploadFile | None, File()] = None,
               image_id: Annotated[int | None, Form()] = None,
               text: Annotated[str | None, Form(max_length=1000)] = None,
               box: Annotated[str | None, Form()] = None,
               channel: Annotated[str, Form()] = "auto",
               fusion: Annotated[str, Form()] = "auto",
               k: Annotated[int, Form(ge=1, le=200)] = 24,
               offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
               folder: Annotated[str | None, Form(max_length=4096)] = None,
               category: Annotated[list[str] | None, Form(max_length=200)] = None,
               date_from: Annotated[str | None, Form(max_length=10)] = None,
               date_to: Annotated[str | None, Form(max_length=10)] = None,
               log: Annotated[bool, Form()] = False,
               ) -> schemas.SearchResponse:
        text = (text or "").strip() or None
        if folder and not Path(folder).is_absolute():
            raise HTTPException(422, f"expected an absolute folder, got {folder!r}")
        if image is not None and image_id is not None:
            raise HTTPException(422, "expected an uploaded 'image' or an 'image_id', not both")
        if image is None and image_id is None and text is None:
            raise HTTPException(422, "expected an uploaded 'image', an 'image_id', a 'text', "
                                     "or an image and a text")
        started = time.perf_counter()
        region = _parse_box(box)
        filters = state.guard(lambda: SearchFilter(
            categories=tuple(c for c in (category or []) if c.strip()), folder=folder or None,
            date_from=_parse_date(date_from), date_to=_parse_date(date_to)))
        pixels = None
        if image is not None or image_id is not None:
            name = None
            if image is not None:
                source: bytes | str = read_upload(image, state.max_upload_bytes)
                name = image.filename or "upload"
            else:
                source = _indexed(state, int(image_id or 0)).path
            # Decoding runs outside the lock, so uploads decode in parallel.
            pixels = state.guard(lambda: state.collection.decode_query(
                source, channel=channel, box=region, name=name))
        with state.using() as collection:
            found, rankings = collection.search_with_rankings(
                pixels, text=text, k=offset + k, channel=channel, box=region,
                filters=filters, fusion=fusion)
            page = found[offset:offset + k]
            records = collection.catalog.images_by_id(result.image_id for result in page)
            # Logged only when asked (the page asks, so its clicks can train the ranker).
            query_id = log_search(collection.catalog, rankings,
                                  [result.image_id for result in page]) if log else None
            state.searches += 1
        return schemas.SearchResponse(
            channel=channel, k=k, offset=offset, text=text, fusion=fusion,
            filters=filters.as_dict(), query_id=query_id,
            took_ms=round(1000 * (time.perf_counter() - started), 2),
            query=None if pixels is None else schemas.QueryOut(
                image_id=image_id, width=pixels.shape[1], height=pixels.shape[0],
                box=list(region) if region else None),
            results=[_result_out(result, records.get(result.image_id)) for result in page])

    @app.post("/clicks")
    def click(body: schemas.ClickIn) -> dict[str, int]:
        """Log that a result was opened; clicks train the learned ranker (no token needed:
        the owner decides when to train on them)."""
        with state.using() as collection:
            return {"rank": log_click(collection.catalog, body.query_id, body.image_id)}

    @app.get("/categories")
    def categories() -> list[schemas.Category]:
        with state.using() as collection:
            return [schemas.Category(name=name, images=count)
                    for name, count in collection.annotations.categories()]

    @app.get("/images")
    def images(offset: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.ImageList:
        with state.using() as collection:
            everything = collection.images()
        return schemas.ImageList(total=len(everything),
                                 images=[_image_out(r) for r in everything[offset:offset + limit]])

    @app.get("/images/{image_id}")
    def image_file(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)]) -> FileResponse:
        record = _indexed(state, image_id)
        path = Path(record.path)
        if not path.is_file():
            raise HTTPException(404, f"image {image_id}: its file is gone ({record.path})")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media)

    @app.get("/images/{image_id}/thumbnail")
    def thumbnail(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)],
                  size: Annotated[int, Query(ge=16, le=1024)] = 256) -> Response:
        record = _indexed(state, image_id)
        size = next(step for step in THUMBNAIL_SIZES if step >= size)
        cached = state.collection.root / "cache" / "thumbnails" / (
            f"{image_id}-{size}-{(record.sha256 or '')[:16]}.jpg")
        return _jpeg(cached, lambda: _thumbnail_bytes(record, size, state))

    @app.get("/images/{image_id}/info")
    def image_info(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)]) -> schemas.ImageInfo:
        record = _indexed(state, image_id)
        faces: list[schemas.FaceOut] = []
        with state.using() as collection:
            channel = collection.channels.get("faces")
            if isinstance(channel, FacesChannel):
                stored = channel.faces_of_images([image_id]).get(image_id, [])
                people = channel.people_of([face.face_id for face in stored])
                faces = [schemas.FaceOut(
                    face_id=face.face_id, box=face.face.as_dict()["box"], score=face.face.score,
                    person=({"id": people[face.face_id][0], "name": people[face.face_id][1]}
                            if face.face_id in people else None)) for face in stored]
            notes = collection.annotations.of(image_id)
        return schemas.ImageInfo(**_image_out(record).model_dump(), faces=faces,
                                 annotations=[schemas.AnnotationOut(**note.as_dict())
                                              for note in notes])

    @app.get("/faces/{face_id}/thumbnail")
    def face_thumbnail(face_id: Annotated[int, Path_(ge=1, le=MAX_ID)],
                       size: Annotated[int, Query(ge=16, le=512)] = 160) -> Response:
        size = next(step for step in THUMBNAIL_SIZES if step >= size)
        with state.using() as collection:
            channel = check_faces_channel(collection.channels.get("faces"))
            stored = channel.stored_faces([face_id])
            if not stored:
                raise HTTPException(404, f"expected an existing face id, got {face_id}")
            record = collection.catalog.images_by_id([stored[0].image_id])[stored[0].image_id]
        box = stored[0].face.box
        cached = state.collection.root / "cache" / "thumbnails" / (
            f"face-{face_id}-{size}.jpg")
        return _jpeg(cached, lambda: _face_bytes(record, box, size, state))


# -- writing ----------------------------------------------------------------------------------

def _add_write_routes(app: FastAPI, state: ServerState, write: list[Any]) -> None:
    @app.post("/images", dependencies=write)
    def add_image(image: Annotated[UploadFile, File()]) -> schemas.Added:
        data = read_upload(image, state.max_upload_bytes)
        name = image.filename or "upload"
        # Decoded here once, so a bad upload is refused before anything is written.
        state.guard(lambda: load_image(data, max_pixels=state.collection.max_pixels, name=name))
        digest = hashlib.sha256(data).hexdigest()
        path = state.collection.root / "uploads" / f"{digest[:32]}{_suffix(data)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            atomic_write_bytes(path, data)
        with state.using() as collection:
            report = collection.index([path])
            record = collection.catalog.images_by_path([str(path)]).get(str(path))
        if record is None or record.status != "indexed":
            raise HTTPException(422, f"{name}: could not be indexed "
                                     f"({report.failures[0][1] if report.failures else '?'})")
        return schemas.Added(image_id=record.id, path=record.path, report=report.as_dict())

    @app.delete("/images/{image_id}", dependencies=write)
    def delete_image(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)]) -> dict[str, int]:
        record = _indexed(state, image_id)
        with state.using() as collection:
            removed = collection.remove([record.path])
            uploads = (collection.root / "uploads").resolve()
            path = Path(record.path).resolve()
            if path.parent == uploads and path.is_file():
                path.unlink()  # our own copy of an upload; a user's photo is never deleted
            for cached in (collection.root / "cache" / "thumbnails").glob(f"{image_id}-*.jpg"):
                cached.unlink(missing_ok=True)
        return {"removed": removed}

    @app.put("/images/{image_id}/annotations", dependencies=write)
    def set_annotations(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)],
                        body: schemas.AnnotationsIn) -> list[schemas.AnnotationOut]:
        with state.using() as collection:
            notes = collection.annotations.set(image_id, captions=body.captions,
                                               tags=body.tags, categories=body.categories)
        return [schemas.AnnotationOut(**note.as_dict()) for note in notes]

    @app.post("/images/{image_id}/annotations", dependencies=write)
    def add_annotation(image_id: Annotated[int, Path_(ge=1, le=MAX_ID)],
                       body: schemas.AnnotationIn) -> schemas.AnnotationOut:
        with state.using() as collection:
            note = collection.annotations.add(image_id, body.kind, body.text)
        return schemas.AnnotationOut(**note.as_dict())

    @app.delete("/annotations/{annotation_id}", dependencies=write)
    def delete_annotation(annotation_id: Annotated[int, Path_(ge=1, le=MAX_ID)]
                          ) -> schemas.AnnotationOut:
        with state.using() as collection:
            note = collection.annotations.remove(annotation_id)
        return schemas.AnnotationOut(**note.as_dict())


# -- people -----------------------------------------------------------------------------------

def _add_people_routes(app: FastAPI, state: ServerState, write: list[Any]) -> None:
    @app.get("/people")
    def people(min_faces: Annotated[int, Query(ge=0)] = 1) -> schemas.PeopleList:
        with state.using() as collection:
            found = collection.people
            return schemas.PeopleList(people=[_person(p) for p in found.all(min_faces)],
                                      unassigned_faces=found.unassigned())

    @app.get("/people/{person_id}/faces")
    def person_faces(person_id: Annotated[int, Path_(ge=1, le=MAX_ID)]) -> schemas.PersonFaces:
        with state.using() as collection:
            found = collection.people
            return schemas.PersonFaces(
                person=_person(found.get(person_id)),
                faces=[schemas.FaceRefOut(**face.as_dict()) for face in found.faces(person_id)])

    @app.post("/people/update", dependencies=write)
    def update(body: schemas.UpdateIn) -> dict[str, int]:
        with state.using() as collection:
            return collection.people.update(reset=body.reset).as_dict()

    @app.post("/people/merge", dependencies=write)
    def merge(body: schemas.MergeIn) -> schemas.PersonOut:
        with state.using() as collection:
            return _person(collection.people.merge(body.people))

    @app.post("/people/{person_id}/name", dependencies=write)
    def name(person_id: int, body: schemas.NameIn) -> schemas.PersonOut:
        with state.using() as collection:
            return _person(collection.people.name(person_id, (body.name or "").strip() or None))

    @app.post("/people/{person_id}/split", dependencies=write)
    def split(person_id: int, body: schemas.FacesIn) -> schemas.PersonOut:
        with state.using() as collection:
            return _person(collection.people.split(person_id, body.faces))

    @app.post("/faces/reject", dependencies=write)
    def reject(body: schemas.FacesIn) -> dict[str, list[dict[str, int]]]:
        with state.using() as collection:
            left = collection.people.reject(body.faces)
        return {"rejected": [{"face_id": f, "person_id": p} for f, p in left.items()]}


# -- helpers ----------------------------------------------------------------------------------

_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
             "TIFF": ".tif"}


def _suffix(data: bytes) -> str:
    """The file suffix of the format the bytes are in (never the name the client gave)."""
    with Image.open(io.BytesIO(data)) as img:
        return _SUFFIXES.get(img.format or "", ".img")


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


def _image_status(reason: str) -> int:
    # Too many pixels and decompression bombs are "too large"; the rest is unreadable.
    return 413 if "pixels" in reason or "bomb" in reason else 422


def _parse_date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise HTTPException(422, f"expected a date YYYY-MM-DD, got {text!r}") from error


def _parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (float(part) for part in text.split(","))
    except ValueError as error:
        raise HTTPException(422, f"expected box as 'x0,y0,x1,y1', got '{text[:80]}'") from error
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise HTTPException(422, f"expected a box of finite numbers, got '{text[:80]}'")
    return x0, y0, x1, y1


def _indexed(state: ServerState, image_id: int) -> ImageRecord:
    with state.lock:
        record = state.collection.catalog.images_by_id([image_id]).get(image_id)
    if record is None or record.status != "indexed":
        raise HTTPException(404, f"expected the id of an indexed image, got {image_id}")
    return record


def _image_out(record: ImageRecord) -> schemas.ImageOut:
    return schemas.ImageOut(id=record.id, path=record.path, name=Path(record.path).name,
                            width=record.width, height=record.height,
                            thumbnail=f"/images/{record.id}/thumbnail")


def _result_out(result: SearchResult, record: ImageRecord | None) -> schemas.ResultOut:
    return schemas.ResultOut(
        rank=result.rank, image_id=result.image_id, path=result.path,
        name=Path(result.path).name, score=result.score,
        width=record.width if record else None, height=record.height if record else None,
        thumbnail=f"/images/{result.image_id}/thumbnail", evidence=result.evidence)


def _person(person: Person) -> schemas.PersonOut:
    return schemas.PersonOut(**person.as_dict())


def _jpeg(cached: Path, make: Callable[[], bytes]) -> Response:
    """A JPEG from the thumbnail cache, made and cached on the first request."""
    if not cached.is_file():
        atomic_write_bytes(cached, make())
    return Response(cached.read_bytes(), media_type="image/jpeg",
                    headers={"Cache-Control": "max-age=3600"})


def _thumbnail_bytes(record: ImageRecord, size: int, state: ServerState) -> bytes:
    try:
        pixels = load_image(record.path, max_pixels=state.collection.max_pixels, min_side=size)
    except ImageError as error:
        raise HTTPException(404, str(error)) from error
    picture = Image.fromarray(pixels)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    return _encode_jpeg(picture)


def _face_bytes(record: ImageRecord, box: tuple[float, float, float, float], size: int,
                state: ServerState) -> bytes:
    try:
        pixels = load_image(record.path, max_pixels=state.collection.max_pixels)
    except ImageError as error:
        raise HTTPException(404, str(error)) from error
    x0, y0, x1, y1 = box
    margin = 0.3 * max(x1 - x0, y1 - y0)
    height, width = pixels.shape[:2]
    crop = pixels[max(0, int(y0 - margin)):min(height, int(y1 + margin)),
                  max(0, int(x0 - margin)):min(width, int(x1 + margin))]
    picture = Image.fromarray(crop)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    return _encode_jpeg(picture)


def _encode_jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()
