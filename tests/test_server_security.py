"""The HTTP API's defences, fast: the token, CORS, the Host check, hostile uploads, the body
limit and ids past 64 bits, over a collection with the cheap built-in ``thumbnail``
extractor (no model is loaded, so these run in the normal test loop)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from conftest import THUMBNAIL, pattern, png_bytes, serving, write_images
from fastapi.testclient import TestClient

from lookalike import Collection
from lookalike.server import create_app

TOKEN = "a-long-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD = 2_000_000
PAST_64_BITS = 2**63  # one past SQLite's largest integer


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_images(tmp_path_factory.mktemp("photos"), range(6))[0].parent
    collection_root = tmp_path_factory.mktemp("c") / "c"
    with Collection(collection_root, configs={"global": THUMBNAIL}) as collection:
        assert collection.index([folder]).added == 6
    return collection_root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    app = create_app(root, token=TOKEN, max_upload_bytes=MAX_UPLOAD,
                     allowed_hosts=["testserver"])
    # A bug must show as a 500 here, not as an exception in the test.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def images(client: TestClient) -> int:
    return int(client.get("/health").json()["images"])


# Every route that changes the collection, each with a body it would accept.
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/images", {"files": {"image": ("a.png", png_bytes(pattern(5)), "image/png")}}),
    ("DELETE", "/images/1", {}),
    ("PUT", "/images/1/annotations", {"json": {"tags": ["x"]}}),
    ("POST", "/images/1/annotations", {"json": {"kind": "tag", "text": "x"}}),
    ("DELETE", "/annotations/1", {}),
    ("POST", "/people/update", {"json": {"reset": False}}),
    ("POST", "/people/merge", {"json": {"people": [1, 2]}}),
    ("POST", "/people/1/name", {"json": {"name": "Ada"}}),
    ("POST", "/people/1/split", {"json": {"faces": [1]}}),
    ("POST", "/faces/reject", {"json": {"faces": [1]}}),
    ("POST", "/faces/hide", {"json": {"faces": [1]}}),
]


# -- the token ----------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_every_write_needs_the_right_token(client: TestClient, method: str, path: str,
                                           body: dict[str, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"},
                    {"Authorization": TOKEN},  # no scheme
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}):
        answer = client.request(method, path, headers=headers, **body)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in answer.json()["detail"]
    assert images(client) == 6


def test_the_right_token_writes(client: TestClient, root: Path) -> None:
    upload = {"image": ("new.png", png_bytes(pattern(77, (120, 90))), "image/png")}
    added = client.post("/images", files=upload, headers=AUTH).json()
    assert Path(added["path"]).parent == root / "uploads" and Path(added["path"]).is_file()
    found = client.post("/search", data={"image_id": str(added["image_id"]), "k": "1",
                                         "channel": "global"}).json()
    assert found["results"][0]["image_id"] == added["image_id"]
    # The scheme is case-insensitive, and spaces around the token do not matter.
    loose = {"Authorization": f"bearer  {TOKEN} "}
    assert client.delete(f"/images/{added['image_id']}", headers=loose).json() == {"removed": 1}
    assert not Path(added["path"]).exists()
    assert client.get(f"/images/{added['image_id']}").status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_without_a_token_writes_are_off(root: Path, method: str, path: str,
                                        body: dict[str, Any]) -> None:
    with TestClient(create_app(root, allowed_hosts=["testserver"])) as readonly:
        answer = readonly.request(method, path, headers=AUTH, **body)
        assert answer.status_code == 403 and "--token" in answer.json()["detail"]
        assert readonly.get("/health").status_code == 200


def test_every_write_route_asks_for_the_token(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    reads = {("post", "/search"), ("post", "/objects"), ("post", "/clicks")}  # change nothing
    writes = {(method, path) for path, item in paths.items() for method in item
              if method != "get" and (method, path) not in reads}
    for method, path in writes:
        names = [p["name"] for p in paths[path][method].get("parameters", [])]
        assert "authorization" in names, (method, path)
    assert len(writes) == len(WRITES)  # the tests above try every one of them


def test_short_tokens_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="at least 8 characters, got 7"):
        create_app(root, token="x" * 7)
    create_app(root, token="x" * 8)


# -- who may ask: CORS and the Host header ------------------------------------------------

def test_cors_is_off_unless_configured(client: TestClient, root: Path) -> None:
    answer = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers
    with TestClient(create_app(root, cors_origins=["https://app.example"],
                               allowed_hosts=["testserver"])) as open_client:
        allowed = open_client.get("/health", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = open_client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_host_names_are_checked(client: TestClient, root: Path) -> None:
    # Another site's page reaching the server through DNS rebinding gets nothing.
    assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400
    with TestClient(create_app(root)) as default:  # default: this machine's names only
        assert default.get("/health").status_code == 400  # 'testserver' is not one
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
            assert default.get("/health", headers={"Host": host}).status_code == 200, host


# -- hostile requests ---------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header, with a tiny compressed body."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(
        b"IEND", b"")


@pytest.mark.parametrize(("name", "data", "kind", "status", "reason"), [
    ("notes.txt", b"hello, not an image", "image/png", 422, "not an image"),
    ("photo.png", png_bytes(pattern(1))[:300], "image/png", 422, "truncated"),
    ("photo.png", png_bytes(pattern(1)), "text/plain", 415, "content type"),
    ("photo.png", png_bytes(pattern(1)), "", 415, "content type"),
    ("bomb.png", _png_header(30_000, 30_000), "image/png", 413, "pixels"),
    ("huge.png", b"\0" * (MAX_UPLOAD + 30_000), "image/png", 413, "bytes"),
    ("body.png", b"\0" * (MAX_UPLOAD + 1_000_000), "image/png", 413, "request body"),
    ("empty.png", b"", "image/png", 422, "empty"),
])
def test_hostile_uploads_are_refused(client: TestClient, root: Path, name: str, data: bytes,
                                     kind: str, status: int, reason: str) -> None:
    before = images(client)
    for answer in (client.post("/search", files={"image": (name, data, kind)}),
                   client.post("/images", files={"image": (name, data, kind)}, headers=AUTH)):
        assert answer.status_code == status, answer.text
        assert reason in answer.json()["detail"]
    assert images(client) == before  # nothing was added
    assert not list((root / "uploads").glob("*"))


def _asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]],
               chunks: list[bytes]) -> tuple[int, bytes, int]:
    """POST ``chunks`` straight to the ASGI app; the answer's status and body, and how many
    chunks the app pulled."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled == len(chunks):
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), *headers]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), pulled


@pytest.mark.parametrize("path", ["/images", "/search"])
def test_the_body_limit_acts_before_the_body_is_read(root: Path, path: str) -> None:
    app = create_app(root, token=TOKEN, max_upload_bytes=1000, allowed_hosts=["testserver"])
    form = [(b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"multipart/form-data; boundary=XyZ")]
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")
    chunks = [head] + [b"\0" * 16_384] * 40
    # Declared too large: refused before a byte is read.
    status, body, pulled = _asgi_post(app, path, [*form, (b"content-length", b"700000")],
                                      chunks)
    assert (status, pulled) == (413, 0) and b"request body" in body
    # Sent without a length (chunked): refused as soon as the count passes the limit.
    status, body, pulled = _asgi_post(app, path, form, chunks)
    assert status == 413 and b"request body" in body, body
    assert pulled <= 2 + (1000 + 64 * 1024) // 16_384


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/images/{PAST_64_BITS}", {}),
    ("GET", f"/images/{PAST_64_BITS}/thumbnail", {}),
    ("GET", f"/images/{PAST_64_BITS}/info", {}),
    ("GET", f"/images/{2**70}", {}),
    ("GET", f"/faces/{PAST_64_BITS}/thumbnail", {}),
    ("GET", f"/people/{PAST_64_BITS}/faces", {}),
    ("GET", "/people", {"params": {"min_faces": PAST_64_BITS}}),
    ("POST", "/search", {"data": {"image_id": str(PAST_64_BITS)}}),
    ("POST", "/search", {"data": {"image_id": str(-PAST_64_BITS - 1)}}),
    ("POST", "/clicks", {"json": {"query_id": "x", "image_id": PAST_64_BITS}}),
    ("DELETE", f"/images/{PAST_64_BITS}", {"headers": AUTH}),
    ("PUT", f"/images/{PAST_64_BITS}/annotations", {"json": {"tags": ["x"]}, "headers": AUTH}),
    ("POST", f"/images/{PAST_64_BITS}/annotations",
     {"json": {"kind": "tag", "text": "x"}, "headers": AUTH}),
    ("DELETE", f"/annotations/{PAST_64_BITS}", {"headers": AUTH}),
    ("POST", f"/people/{PAST_64_BITS}/name", {"json": {"name": "x"}, "headers": AUTH}),
    ("POST", f"/people/{PAST_64_BITS}/split", {"json": {"faces": [1]}, "headers": AUTH}),
    ("POST", "/people/merge", {"json": {"people": [1, PAST_64_BITS]}, "headers": AUTH}),
    ("POST", "/faces/reject", {"json": {"faces": [PAST_64_BITS]}, "headers": AUTH}),
])
def test_ids_past_64_bits_are_refused_not_crashed_on(client: TestClient, method: str,
                                                     path: str, body: dict[str, Any]) -> None:
    answer = client.request(method, path, **body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["detail"]


def test_boxes_paths_docs_and_sniffing(client: TestClient) -> None:
    nan = client.post("/search", data={"image_id": "1", "box": "nan,nan,nan,nan"})
    assert nan.status_code == 422 and "finite" in nan.json()["detail"]
    assert client.get("/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/images/424242").status_code == 404
    assert client.get(f"/images/{2**70}").status_code == 422
    assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN
    assert client.get("/health").headers["x-content-type-options"] == "nosniff"
    assert client.get("/images/1").headers["x-content-type-options"] == "nosniff"


# -- one error shape, true Allow headers ------------------------------------------------

def test_every_error_is_one_line_of_detail(client: TestClient) -> None:
    # FastAPI's validation errors (a list of dicts) become one line naming the field.
    strict = client.post("/people/update", json={"reset": 0}, headers=AUTH)
    assert strict.status_code == 422
    assert strict.json() == {"detail": "expected true or false for 'reset' in the body, got 0"}
    missing = client.post("/clicks", json={"image_id": 1})
    assert missing.json() == {"detail": "expected 'query_id' in the body: it is required, "
                                        "got nothing"}
    big = client.get("/images/1/thumbnail", params={"size": 5000})
    assert big.json() == {"detail": "expected a number at most 1024 for 'size' in the query, "
                                    "got '5000'"}
    broken = client.post("/clicks", content=b"{nope", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"].startswith("expected valid JSON")
    host = client.get("/health", headers={"Host": "evil.example"})
    assert host.status_code == 400 and "evil.example" in host.json()["detail"]
    for answer in (strict, missing, big, broken, host):
        assert isinstance(answer.json()["detail"], str)


def test_a_query_parameter_given_twice_is_refused(client: TestClient) -> None:
    # FastAPI would keep the last value: ?offset=5&offset=0 would be offset 0.
    answer = client.get("/images?offset=5&offset=0")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "expected one value for 'offset' in the query, got 2"}
    assert client.get("/images?offset=0&limit=2").status_code == 200


@pytest.mark.parametrize(("path", "allowed"), [
    ("/images", "GET, POST"), ("/images/1", "DELETE, GET"),
    ("/images/1/annotations", "POST, PUT"), ("/health", "GET"),
])
def test_a_405_lists_every_method_of_the_path(client: TestClient, path: str,
                                              allowed: str) -> None:
    answer = client.request("PATCH", path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["detail"] == f"expected a method among {allowed}, got PATCH"


# -- slow clients, over a real socket -------------------------------------------------------

@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[int]:
    """The server as `lookalike serve` runs it, with short read timeouts; its port."""
    app = create_app(root, token=TOKEN, max_upload_bytes=1000)
    with serving(app, header_timeout=0.5, body_timeout=0.5) as port:
        yield port


def _talk(port: int, data: bytes, *, wait: float = 0.0) -> tuple[bytes, float]:
    """Send ``data``, pause ``wait`` s, then read until the server closes; what it said,
    and how long after the sending it closed."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        started = time.monotonic()
        time.sleep(wait)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer, time.monotonic() - started


def test_slow_clients_are_timed_out(served: int) -> None:
    host = b"Host: 127.0.0.1\r\n"
    # A whole request is answered, and the idle connection is closed after keep-alive.
    answer, _ = _talk(served, b"GET /health HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    # Headers that never end: closed at the header timeout, without an answer.
    answer, took = _talk(served, b"GET /health HTTP/1.1\r\n" + host + b"X-Slow: 1\r\n")
    assert answer == b"" and took < 3
    # A body that stops coming: closed at the body timeout.
    answer, took = _talk(served, b"POST /clicks HTTP/1.1\r\n" + host
                         + b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
    assert answer == b"" and took < 3
    # Headers still unfinished past 16 KiB: refused by the HTTP layer.
    answer, took = _talk(served, b"GET /health HTTP/1.1\r\n" + host
                         + b"X-Big: " + b"x" * 20_000)
    assert answer.startswith(b"HTTP/1.1 400") and took < 0.5


def test_an_oversized_chunked_upload_gets_413_over_the_wire(served: int) -> None:
    head = (b"POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=XyZ\r\nConnection: close\r\n\r\n")
    chunk = b"\0" * 16_384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
    answer, _ = _talk(served, head + body)
    assert answer.startswith(b"HTTP/1.1 413") and b"request body" in answer


def test_a_collection_another_process_writes_answers_409(client: TestClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.collection import Annotations
    from lookalike.errors import CollectionBusyError

    def busy(*args: Any, **kwargs: Any) -> None:
        raise CollectionBusyError("busy: another process is indexing this collection (pid 7)")

    monkeypatch.setattr(Annotations, "add", busy)
    answer = client.post("/images/1/annotations", json={"kind": "tag", "text": "x"}, headers=AUTH)
    assert answer.status_code == 409 and "pid 7" in answer.json()["detail"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "409" in paths["/images/{image_id}/annotations"]["post"]["responses"]
