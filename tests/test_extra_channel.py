"""A channel added in this file alone works everywhere: library, CLI, eval and HTTP.

This is the proof that a channel is declared in one place. ``hue`` (a colour histogram, a
few lines) is registered by the fixture, with its own config and evidence type, and is
then indexed, searched, described, evaluated and served without any other file knowing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from conftest import THUMBNAIL, write_images

from lookalike import Collection
from lookalike.cli import main
from lookalike.collection import CHANNELS, ChannelSpec, VectorChannel, register_channel
from lookalike.images import Box, crop
from lookalike.results import Evidence, Hit


@dataclass(frozen=True)
class HueEvidence(Evidence):
    FEATURES: ClassVar[tuple[str, ...]] = ("similarity",)
    LOGGED: ClassVar[tuple[str, ...]] = ("similarity",)

    similarity: float | None = None

    def reason(self) -> str:
        return f"similar colours ({self.similarity or 0.0:.2f})"

    def features(self) -> dict[str, float]:
        return {"similarity": float(self.similarity or 0.0)}


@dataclass(frozen=True)
class HueConfig:
    bins: int = 4

    def stored_settings(self) -> dict[str, Any]:
        return {"bins": self.bins}


class HueChannel(VectorChannel):
    """Each image as a normalised histogram of its red, green and blue values."""

    name = "hue"

    def __init__(self, config: HueConfig) -> None:
        self.config = config
        super().__init__()

    @property
    def dim(self) -> int:
        return 3 * self.config.bins

    def manifest(self) -> dict[str, Any]:
        return asdict(self.config)

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self.embed_query(image) for image in images]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        counts = [np.histogram(image[..., c], bins=self.config.bins, range=(0, 256))[0]
                  for c in range(3)]
        vector = np.concatenate(counts).astype(np.float32)
        return (vector / np.linalg.norm(vector))[None, :]

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        scores, _, image_ids = self.vectors.nearest(self.embed_query(crop(image, box)), k)
        return [Hit(int(image_id), float(score), HueEvidence(round(float(score), 4)))
                for image_id, score in zip(image_ids, scores, strict=True)]


def describe(stats: Mapping[str, Any]) -> str:
    return f"colour histograms of {stats['bins']} bins, {stats['vectors']} images"


@pytest.fixture(autouse=True)
def hue() -> Iterator[None]:
    register_channel(ChannelSpec("hue", HueChannel, HueConfig, HueEvidence, describe))
    yield
    CHANNELS.remove("hue")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    write_images(folder, range(8))
    return folder


def test_the_library_indexes_searches_and_describes_it(tmp_path: Path, photos: Path) -> None:
    root = tmp_path / "c"
    with Collection(root, channels=["global", "hue"], configs={"global": THUMBNAIL,
                                                               "hue": HueConfig(bins=8)}) as c:
        assert c.index([photos]).added == 8
        (best, *_) = c.search(photos / "img003.png", k=3, channel="hue")
        assert Path(best.path).name == "img003.png" and best.fused_score == pytest.approx(1.0)
        assert best.score is None  # a plug-in's evidence has no calibrated confidence
        assert best.evidence.as_dict() == {"channel_scores": {"hue": best.fused_score},
                                           "hue": {"similarity": 1.0}}
        assert best.reason == "similar colours (1.00)"
        fused = c.search(photos / "img003.png", k=3, channel="auto")
        assert Path(fused[0].path).name == "img003.png"
        assert set(fused[0].evidence.channel_scores) == {"global", "hue"}
        assert "similar colours" in fused[0].reason
        info = c.info()["channels"]["hue"]
        assert info["summary"] == "colour histograms of 8 bins, 8 images"
    assert Collection.read_configs(root)["hue"] == HueConfig(bins=8)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_the_cli_indexes_and_searches_it(tmp_path: Path, photos: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    col = str(tmp_path / "c")
    report = run(capsys, "index", str(photos), "-c", col, "--channels", "global,hue",
                 "--extractor", "thumbnail", "--json")
    assert report["added"] == 8
    found = run(capsys, "search", str(photos / "img005.png"), "-c", col, "--channel", "hue",
                "--json")["results"]
    assert found[0]["path"].endswith("img005.png")
    assert found[0]["evidence"]["hue"] == {"similarity": 1.0}
    assert found[0]["reason"] == "similar colours (1.00)"
    assert run(capsys, "info", "-c", col, "--json")["channels"]["hue"]["summary"].startswith(
        "colour histograms of 4 bins")


def test_eval_measures_it(tmp_path: Path, photos: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth.tsv"
    truth.write_text("".join(f"img{i:03d}.png\timg{i:03d}.png\n" for i in range(8)))
    report = run(capsys, "eval", "custom", "--root", str(photos), "--truth", str(truth),
                 "--channel", "hue", "--collection", str(tmp_path / "eval"), "--json")
    assert report["channel"] == "hue" and report["n_queries"] == 8
    assert report["hue"] == {"bins": 4}
    assert 0.0 <= report["map"] <= 1.0


def test_the_http_api_serves_it(tmp_path: Path, photos: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lookalike.server import create_app

    root = tmp_path / "c"
    with Collection(root, channels=["global", "hue"], configs={"global": THUMBNAIL}) as c:
        c.index([photos])
        wanted = c.image_by_path(photos / "img002.png").id
    with TestClient(create_app(root), base_url="http://localhost") as client:
        assert "hue" in client.get("/health").json()["channels"]
        answer = client.post("/search", data={"image_id": str(wanted), "channel": "hue",
                                              "k": "2"})
        assert answer.status_code == 200, answer.text
        first = answer.json()["results"][0]
        assert first["image_id"] == wanted and first["reason"] == "similar colours (1.00)"
        assert first["evidence"] == {"channel_scores": {"hue": 1.0}, "hue": {"similarity": 1.0}}
        fused = client.post("/search", data={"image_id": str(wanted), "channel": "auto"}).json()
        assert set(fused["results"][0]["evidence"]) == {"channel_scores", "global", "hue"}
