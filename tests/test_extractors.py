"""Extractors: the contract, preprocessing, whitening, and the real pretrained models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import pattern

from lookalike.errors import ValidationError
from lookalike.extractors import Preprocessing, available_extractors, make_extractor
from lookalike.extractors.onnx import MODEL_SPECS, OnnxExtractor, cached_model_is_valid
from lookalike.whitening import PCAWhitening


def test_registry_lists_models_and_rejects_unknown_names() -> None:
    assert {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenetv2",
            "thumbnail"} <= set(available_extractors())
    with pytest.raises(ValidationError, match="expected an extractor among"):
        make_extractor("resnet-9000")


def test_embed_validates_and_normalises() -> None:
    extractor = make_extractor("thumbnail")
    vectors = extractor.embed([pattern(1), pattern(2, size=(30, 50))])
    assert vectors.shape == (2, extractor.info.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValidationError, match="expected HxWx3 uint8"):
        extractor.embed([np.zeros((4, 4), dtype=np.uint8)])
    with pytest.raises(ValidationError, match="empty batch"):
        extractor.embed([])


def test_preprocessing_resizes_crops_and_normalises() -> None:
    prep = Preprocessing(resize_shorter=8, crop=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    image = np.full((16, 32, 3), 255, dtype=np.uint8)
    image[:, :, 1] = 0
    batch = prep([image])
    assert batch.shape == (1, 3, 4, 4) and batch.dtype == np.float32
    # (1.0 - 0.5) / 0.25 = 2 for the white channels, (0 - 0.5) / 0.25 = -2 for green.
    np.testing.assert_allclose(batch[0, 0], 2.0, atol=1e-5)
    np.testing.assert_allclose(batch[0, 1], -2.0, atol=1e-5)
    # A tiny image is scaled up rather than failing.
    assert prep([np.zeros((1, 2, 3), dtype=np.uint8)]).shape == (1, 3, 4, 4)
    with pytest.raises(ValidationError, match="resize_shorter >= crop"):
        Preprocessing(resize_shorter=2, crop=4, mean=(0, 0, 0), std=(1, 1, 1))


def test_whitening_decorrelates_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    data = rng.normal(size=(500, 8)) @ mixing
    whitening = PCAWhitening(4).fit(data)
    projected = (data - whitening.mean_) @ whitening.projection_
    np.testing.assert_allclose(np.cov(projected, rowvar=False), np.eye(4), atol=0.05)
    whitening.save(tmp_path / "w.npz")
    again = PCAWhitening.load(tmp_path / "w.npz")
    np.testing.assert_allclose(again.transform(data[:5]), whitening.transform(data[:5]), atol=1e-6)
    with pytest.raises(ValidationError, match="more vectors than the target dimension"):
        PCAWhitening(10).fit(data[:5])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1",
                                  "efficientnet-lite2", "mobilenetv2"])
def test_pretrained_model_matches_torch_and_ranks_views_of_one_object(
    tmp_path: Path, name: str
) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("skimage")
    from skimage import data

    from lookalike.extractors.export import BUILDERS

    extractor = OnnxExtractor(MODEL_SPECS[name], model_dir=tmp_path)
    left, right = data.stereo_motorcycle()[:2]
    others = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    vectors = extractor.embed([np.asarray(left), np.asarray(right), *others])
    assert cached_model_is_valid(extractor.spec, extractor.model_path())

    # ONNX Runtime against the exact reference: the PyTorch network itself.
    batch = extractor.preprocessing([np.asarray(left)])
    with torch.no_grad():
        reference = BUILDERS[name]().eval()(torch.from_numpy(batch))[0].numpy()
    np.testing.assert_allclose(extractor.run_network(batch), reference, rtol=1e-3, atol=1e-3)

    # The other view of the motorcycle is the left view's nearest neighbour.
    similarities = vectors[1:] @ vectors[0]
    assert int(np.argmax(similarities)) == 0


@pytest.mark.slow
def test_a_tampered_model_file_is_exported_again(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    extractor = OnnxExtractor(MODEL_SPECS["efficientnet-lite0"], model_dir=tmp_path)
    extractor.load()
    path = extractor.model_path()
    path.write_bytes(b"not a model")
    assert not cached_model_is_valid(extractor.spec, path)
    fresh = OnnxExtractor(MODEL_SPECS["efficientnet-lite0"], model_dir=tmp_path).load()
    assert cached_model_is_valid(fresh.spec, path)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_large_jpegs_decode_reduced_yet_find_themselves(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from PIL import Image

    from lookalike import Collection, GlobalChannelConfig

    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        big = Image.fromarray(pattern(seed)).resize((2048, 1536), Image.Resampling.BICUBIC)
        big.save(folder / f"big{seed}.jpg", quality=90)
    config = GlobalChannelConfig(extractor="efficientnet-lite0")
    with Collection(tmp_path / "c", configs={"global": config}).open() as collection:
        assert collection.index([folder]).added == 3
        record = collection.images()[0]
        assert (record.width, record.height) == (2048, 1536)  # the full size, not the decoded one
        top = collection.search(folder / "big1.jpg", k=1)[0]
        assert top.path.endswith("big1.jpg") and (top.fused_score or 0) > 0.9999
        cropped = collection.search(folder / "big2.jpg", k=1, box=(0, 0, 2048, 1536))[0]
        assert cropped.path.endswith("big2.jpg") and (cropped.fused_score or 0) > 0.99


def test_inference_threads_limit_sessions_and_native_pools() -> None:
    from threadpoolctl import threadpool_info

    from lookalike.runtime import inference_threads, session_options, set_inference_threads

    try:
        set_inference_threads(1)
        assert inference_threads() == 1
        assert session_options().intra_op_num_threads == 1
        assert session_options(3).intra_op_num_threads == 3  # a model's own choice wins
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
    finally:
        set_inference_threads(None)
    assert session_options().intra_op_num_threads == 0  # ONNX Runtime's default
    with pytest.raises(ValidationError, match="positive number of threads"):
        set_inference_threads(0)


def test_inference_threads_limit_opencv_and_give_back_its_own_count() -> None:
    cv2 = pytest.importorskip("cv2")
    from lookalike.runtime import set_inference_threads

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(3)  # the user's own choice
        set_inference_threads(1)
        assert cv2.getNumThreads() == 1
        set_inference_threads(None)
        assert cv2.getNumThreads() == 3
        set_inference_threads(None)  # no choice: the user's count is left alone
        assert cv2.getNumThreads() == 3
    finally:
        set_inference_threads(None)
        cv2.setNumThreads(before)


@pytest.mark.slow
def test_int8_model_is_quantised_once_and_stays_close_to_float32(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("skimage")
    import json

    from skimage import data

    int8 = OnnxExtractor(MODEL_SPECS["efficientnet-lite0-int8"], model_dir=tmp_path)
    full = OnnxExtractor(MODEL_SPECS["efficientnet-lite0"], model_dir=tmp_path)
    left, right = data.stereo_motorcycle()[:2]
    images = [np.asarray(left), np.asarray(right), data.astronaut(), data.coffee(),
              data.chelsea()]
    quantised, reference = int8.embed(images), full.embed(images)
    manifest = json.loads(int8.model_path().with_suffix(".json").read_text())
    assert manifest["network"] == "efficientnet-lite0" and "per-channel" in manifest["int8"]
    # Several times smaller on disk, and each vector within a few degrees of float32's.
    assert int8.model_path().stat().st_size * 2.5 < full.model_path().stat().st_size
    assert np.all(np.sum(quantised * reference, axis=1) > 0.95)
    assert int(np.argmax(quantised[1:] @ quantised[0])) == 0  # the other view still first
