"""The HTTP API over a real collection: search by upload, id, crop and face; images and
thumbnails; uploads; people. The defences (the token, CORS, the Host check, hostile
uploads, the body limit, ids past 64 bits) are tested fast in test_server_security.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

from conftest import THUMBNAIL, pattern, png_bytes  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from lookalike import Collection  # noqa: E402
from lookalike.server import create_app  # noqa: E402

pytestmark = pytest.mark.slow
TOKEN = "a-long-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    astronaut = np.asarray(skimage_data.astronaut())
    photos = {"astronaut.png": astronaut, "astronaut_mirror.png": astronaut[:, ::-1],
              "cameraman.png": np.stack([skimage_data.camera()] * 3, axis=-1),
              "coffee.png": np.asarray(skimage_data.coffee())}
    photos.update({f"pattern{i}.png": pattern(i, (200, 150)) for i in range(6)})
    for name, image in photos.items():
        Image.fromarray(np.ascontiguousarray(image)).save(folder / name)
    collection_root = tmp_path_factory.mktemp("c") / "c"
    with Collection(collection_root, channels=["global", "faces"],
        configs={"global": THUMBNAIL}).open() as collection:
        collection.index([folder])
        collection.people.update()
    return collection_root


@pytest.fixture(scope="module")
def client(root: Path) -> TestClient:
    with TestClient(create_app(root, token=TOKEN, max_upload_bytes=2_000_000,
                               allowed_hosts=["testserver"])) as test_client:
        yield test_client


def image_id(client: TestClient, name: str) -> int:
    listing = client.get("/images", params={"limit": 500}).json()["images"]
    return next(image["id"] for image in listing if image["name"] == name)


def test_health_stats_and_openapi(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health == {"status": "ok", "images": 10, "channels": ["faces", "global"]}
    assert client.get("/stats").json()["collection"]["images"] == 10
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/images", "/people", "/people/merge"} <= set(paths)
    assert "<html" in client.get("/").text.lower()


def test_search_by_upload_id_crop_and_face(client: TestClient, root: Path) -> None:
    astronaut = png_bytes(np.asarray(skimage_data.astronaut()))
    found = client.post("/search", files={"image": ("q.png", astronaut, "image/png")},
                        data={"k": "3", "channel": "global"}).json()
    assert found["results"][0]["name"] == "astronaut.png"
    assert found["query"] == {"image_id": None, "width": 512, "height": 512, "box": None}
    top = found["results"][0]
    assert top["thumbnail"] == f"/images/{top['image_id']}/thumbnail"
    by_id = client.post("/search", data={"image_id": str(image_id(client, "coffee.png")),
                                         "channel": "global", "k": "1"}).json()
    assert by_id["results"][0]["name"] == "coffee.png"
    faces = client.post("/search", files={"image": ("q.png", astronaut, "image/png")},
                        data={"channel": "faces", "box": "150,40,300,200"}).json()
    names = [result["name"] for result in faces["results"]]
    assert names[:2] in (["astronaut.png", "astronaut_mirror.png"],
                         ["astronaut_mirror.png", "astronaut.png"])
    assert faces["results"][0]["evidence"]["faces"]["same_person"] is True
    assert faces["results"][0]["reason"] == "same person"
    assert faces["query"]["box"] == [150.0, 40.0, 300.0, 200.0]
    # Paging: the second page continues the first.
    first = client.post("/search", data={"image_id": "1", "k": "4", "channel": "global"}).json()
    second = client.post("/search", data={"image_id": "1", "k": "4", "offset": "4",
                                          "channel": "global"}).json()
    ranks = [r["rank"] for r in first["results"]] + [r["rank"] for r in second["results"]]
    assert ranks == list(range(1, 9))
    folder = client.post("/search", data={"image_id": "1", "k": "10", "channel": "global",
                                          "folder": "/nowhere/"}).json()
    assert folder["results"] == []


def test_search_errors_are_clear(client: TestClient) -> None:
    coffee = png_bytes(np.asarray(skimage_data.coffee()))
    no_face = client.post("/search", files={"image": ("coffee.png", coffee, "image/png")},
                          data={"channel": "faces"})
    assert no_face.status_code == 422 and "no face found" in no_face.json()["detail"]
    assert client.post("/search", data={"k": "3"}).status_code == 422
    bad_channel = client.post("/search", data={"image_id": "1", "channel": "colour"})
    assert bad_channel.status_code == 422 and "channel among" in bad_channel.json()["detail"]
    bad_box = client.post("/search", data={"image_id": "1", "box": "1,2,3"})
    assert bad_box.status_code == 422 and "x0,y0,x1,y1" in bad_box.json()["detail"]
    assert client.post("/search", data={"image_id": "99999"}).status_code == 404
    # A field given twice is ambiguous (FastAPI would keep the last): refused, but a filter's
    # categories, which the form repeats by design. The last day bounds nothing.
    twice = client.post("/search", files=[("image_id", (None, "1")), ("image_id", (None, "2"))])
    assert twice.status_code == 400 and "one value for 'image_id'" in twice.json()["detail"]
    two_uploads = client.post("/search", files=[("image", ("a.png", coffee, "image/png")),
                                                ("image", ("b.png", coffee, "image/png"))])
    assert two_uploads.status_code == 400
    assert client.post("/objects", files=[("image_id", (None, "1")),
                                          ("image_id", (None, "1"))]).status_code == 400
    unknown = [("image_id", (None, "1")), ("state", (None, "a")), ("state", (None, "b"))]
    assert client.post("/search", files=unknown).status_code == 200  # not a field: ignored
    categories = client.post("/search", files=[("image_id", (None, "1")),
                                               ("category", (None, "a")),
                                               ("category", (None, "b")),
                                               ("date_to", (None, "9999-12-31"))])
    assert categories.status_code == 200, categories.text


def test_images_thumbnails_and_info(client: TestClient, root: Path) -> None:
    astronaut = image_id(client, "astronaut.png")
    original = client.get(f"/images/{astronaut}")
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    thumb = client.get(f"/images/{astronaut}/thumbnail", params={"size": 128})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (128, 128)
    assert any((root / "cache" / "thumbnails").glob(f"{astronaut}-128-*.jpg"))  # cached
    info = client.get(f"/images/{astronaut}/info").json()
    assert len(info["faces"]) == 1 and info["faces"][0]["person"] is not None
    face = client.get(f"/faces/{info['faces'][0]['face_id']}/thumbnail")
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    assert client.get("/images/424242").status_code == 404
    assert client.get("/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/images/1/thumbnail", params={"size": 10_000}).status_code == 422


def test_people_over_http(client: TestClient) -> None:
    people = client.get("/people").json()["people"]
    assert [p["faces"] for p in people] == [2, 1]
    first, second = people[0]["id"], people[1]["id"]
    assert client.post(f"/people/{first}/name", json={"name": "Eileen"}).status_code == 401
    named = client.post(f"/people/{first}/name", json={"name": " Eileen "}, headers=AUTH)
    assert named.json()["name"] == "Eileen"
    for typo in ({}, {"nmae": "Ada"}):  # refused, not read as "clear the name"
        assert client.post(f"/people/{first}/name", json=typo,
                           headers=AUTH).status_code == 422
    faces = client.get(f"/people/{first}/faces").json()["faces"]
    assert len(faces) == 2
    merged = client.post("/people/merge", json={"people": [first, second]}, headers=AUTH).json()
    assert merged["faces"] == 3 and merged["name"] == "Eileen"
    camera = next(f["face_id"] for f in client.get(f"/people/{first}/faces").json()["faces"]
                  if f["path"].endswith("cameraman.png"))
    split = client.post(f"/people/{first}/split", json={"faces": [camera]}, headers=AUTH).json()
    assert split["faces"] == 1
    rejected = client.post("/faces/reject", json={"faces": [camera]}, headers=AUTH).json()
    assert rejected == {"rejected": [{"face_id": camera, "person_id": split["id"]}]}
    assert client.post("/people/update", json={"reset": False}, headers=AUTH).json()["people"] >= 2
    hidden = client.post("/faces/hide", json={"faces": [camera]}, headers=AUTH)
    assert hidden.json() == {"hidden": [camera]}
    assert client.post("/faces/hide", json={"faces": [camera]}).status_code == 401
    assert client.post("/faces/hide", json={"faces": [999999]},
                       headers=AUTH).status_code == 404
    bad = client.post("/people/merge", json={"people": [first]}, headers=AUTH)
    assert bad.status_code == 422
    assert client.get("/people/999999/faces").status_code == 404
    # Bounded in the schema: the largest 64-bit count is taken, one past it is refused.
    assert client.get("/people", params={"min_faces": 2**63 - 1}).status_code == 200
    assert client.get("/people", params={"min_faces": 2**64}).status_code == 422
    assert client.post(f"/people/{2**64}/name", json={"name": "x"},
                       headers=AUTH).status_code == 422


def test_serve_refuses_a_missing_collection_and_short_tokens(
        tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.cli import main

    assert main(["serve", "-c", str(tmp_path / "nothing")]) == 1
    assert "expected a collection" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 8 characters"):
        create_app(root, token="short")


def test_folder_filter_is_a_folder_and_ranks_restart(client: TestClient) -> None:
    listing = client.get("/images", params={"limit": 500}).json()["images"]
    folder = str(Path(listing[0]["path"]).parent)
    inside = client.post("/search", data={"image_id": "1", "k": "3", "channel": "global",
                                          "folder": folder}).json()["results"]
    assert [r["rank"] for r in inside] == [1, 2, 3]
    partial = client.post("/search", data={"image_id": "1", "k": "3", "channel": "global",
                                           "folder": folder[:-1]}).json()["results"]
    assert partial == []  # a prefix of the folder's name is another folder


def test_deleting_an_upload_drops_its_thumbnails(client: TestClient, root: Path) -> None:
    upload = {"image": ("x.html", png_bytes(pattern(91, (100, 80))), "image/png")}
    added = client.post("/images", files=upload, headers=AUTH).json()
    assert added["path"].endswith(".png")  # the stored type is what the bytes are
    thumb = client.get(f"/images/{added['image_id']}/thumbnail", params={"size": 100})
    assert thumb.status_code == 200
    cached = list((root / "cache" / "thumbnails").glob(f"{added['image_id']}-*.jpg"))
    assert [path.name.split("-")[1] for path in cached] == ["128"]  # sizes are rounded up
    client.delete(f"/images/{added['image_id']}", headers=AUTH)
    assert not any((root / "cache" / "thumbnails").glob(f"{added['image_id']}-*.jpg"))
    # An indexed image whose file went away: 404 wherever it is asked for by id.
    gone = client.post("/images", files={"image": ("y.png", png_bytes(pattern(92, (90, 70))),
                                                   "image/png")}, headers=AUTH).json()
    Path(gone["path"]).unlink()
    for answer in (client.post("/search", data={"image_id": gone["image_id"]}),
                   client.post("/objects", data={"image_id": gone["image_id"]}),
                   client.get(f"/images/{gone['image_id']}")):
        assert answer.status_code == 404 and "its file is gone" in answer.text, answer.text
    client.delete(f"/images/{gone['image_id']}", headers=AUTH)


def test_no_objects_are_suggested_without_a_regions_channel(client: TestClient) -> None:
    answer = client.post("/objects", data={"image_id": image_id(client, "coffee.png")})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"width": 600, "height": 400, "objects": []}
