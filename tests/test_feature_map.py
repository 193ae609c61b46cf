"""Regions pooled from one pass of the network: the map, the pooling, and the channel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike import Collection
from lookalike.collection import GlobalChannelConfig, RegionsChannelConfig
from lookalike.errors import ValidationError
from lookalike.extractors import MODEL_SPECS, OnnxExtractor
from lookalike.extractors.feature_map import FeatureMapModel

skimage_data = pytest.importorskip("skimage.data")


def test_input_size_keeps_the_aspect_in_multiples_of_32() -> None:
    model = FeatureMapModel("efficientnet-lite0", side=256)
    assert model.input_size(640, 480) == (352, 256)  # 341 rounded to 11 cells
    assert model.input_size(480, 640) == (256, 352)
    assert model.input_size(100, 100) == (256, 256)  # small images are enlarged
    assert model.input_size(10_000, 1) == (768, 256)  # a strip is squeezed to 3:1


def test_pooling_follows_the_cells_under_each_box() -> None:
    cells = np.zeros((2, 4, 4), dtype=np.float32)
    cells[0, :2, :2] = 1.0  # channel 0 lives in the top-left quarter
    cells[1, 2:, 2:] = 2.0  # channel 1 in the bottom-right one
    gem = FeatureMapModel("efficientnet-lite0", pooling="gem")
    top_left, bottom_right, whole = gem.pool(cells, [(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1),
                                                     (0, 0, 1, 1)])
    np.testing.assert_allclose(top_left, [1.0, 0.0])
    np.testing.assert_allclose(bottom_right, [0.0, 1.0])
    # GeM (p = 3) over all 16 cells: (4/16)^(1/3) * 1 against (4 * 8 / 16)^(1/3); normalised.
    expected = np.array([(4 / 16) ** (1 / 3), (32 / 16) ** (1 / 3)])
    np.testing.assert_allclose(whole, expected / np.linalg.norm(expected), rtol=1e-5)
    # Max pooling sees both channels at full strength.
    (maxed,) = FeatureMapModel("efficientnet-lite0", pooling="max").pool(cells, [(0, 0, 1, 1)])
    np.testing.assert_allclose(maxed, np.array([1.0, 2.0]) / np.sqrt(5.0), rtol=1e-6)
    # A box thinner than a cell still covers one.
    (sliver,) = gem.pool(cells, [(0.1, 0.1, 0.1001, 0.1001)])
    np.testing.assert_allclose(sliver, [1.0, 0.0])


@pytest.mark.parametrize(("options", "message"), [
    ({"side": 250}, "multiple of 32"), ({"pooling": "average"}, "pooling"),
    ({"side": 0}, "multiple of 32")])
def test_bad_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureMapModel("efficientnet-lite0", **options)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=message):
        RegionsChannelConfig(**{("map_side" if key == "side" else key): value
                                for key, value in options.items()})  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_map_is_the_extractors_network(tmp_path: Path) -> None:
    """Averaged over the whole map of a 224 x 224 input, the map model gives the pooled
    extractor's features: one network, exported twice."""
    pytest.importorskip("torch")
    spec = MODEL_SPECS["efficientnet-lite0"]
    pooled = OnnxExtractor(spec, model_dir=tmp_path).load()
    mapped = FeatureMapModel("efficientnet-lite0", model_dir=tmp_path).load()
    batch = spec.preprocessing([skimage_data.astronaut(), skimage_data.coffee()])
    maps = mapped._session.run(["feature_map"], {"input": batch})[0]
    assert maps.shape == (2, 1280, 7, 7)
    np.testing.assert_allclose(maps.mean(axis=(2, 3)), pooled.run_network(batch), atol=1e-4)
    # Other sizes run too, with one cell per 32 pixels.
    assert mapped.feature_map(skimage_data.chelsea()).shape == (1280, 8, 12)  # 451 x 300


@pytest.mark.slow
def test_a_crop_finds_its_photo_through_pooled_regions(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        image = getattr(skimage_data, name)()
        Image.fromarray(image if image.ndim == 3 else np.stack([image] * 3, axis=2)).save(
            photos / f"{name}.png")
    config = RegionsChannelConfig(max_objects=0)
    assert config.pooling == "gem"  # the default for a built-in network
    with Collection(tmp_path / "c", channels=["regions"],
                    configs={"regions": config}) as collection:
        report = collection.index([photos])
        assert report.added == 5 and not report.failures
        # The coffee cup, as a box in the full photo and as a cut-out image.
        cup = (110.0, 40.0, 470.0, 330.0)
        by_box = collection.search(photos / "coffee.png", k=2, channel="regions", box=cup)
        assert by_box[0].path.endswith("coffee.png")
        cut = np.ascontiguousarray(skimage_data.coffee()[40:330, 110:470])
        assert collection.search(cut, k=1, channel="regions")[0].path.endswith("coffee.png")
        stats = collection.info()["channels"]["regions"]
        assert stats["feature_map_info"] == {"name": "efficientnet-lite0", "version": "1",
                                             "side": 256, "pooling": "gem"}


def test_a_collection_made_before_pooling_keeps_cropping(tmp_path: Path) -> None:
    """A manifest without ``pooling`` is a collection filled by crop-and-embed: it must go
    on embedding crops, or its queries would land in another space; one without
    ``storage`` keeps float32 rows."""
    config = RegionsChannelConfig(extractor="thumbnail", grid_levels=(2,), max_objects=0)
    assert config.pooling == "crop"  # no map to pool for a plug-in extractor
    with Collection(tmp_path / "c", channels=["global", "regions"],
                    configs={"global": GlobalChannelConfig(extractor="thumbnail"),
                             "regions": config}):
        pass
    manifest_path = tmp_path / "c" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["channels"]["regions"]
    for key in ("pooling", "map_side", "storage"):
        entry.pop(key)
    manifest["channels"]["global"].pop("storage")
    manifest_path.write_text(json.dumps(manifest))
    with Collection(tmp_path / "c") as collection:
        channel = collection.channels["regions"]
        assert channel.config.pooling == "crop"  # type: ignore[attr-defined]
        assert channel.feature_map is None  # type: ignore[attr-defined]
        assert channel.codec.storage == "float32"  # type: ignore[attr-defined]
        assert collection.channels["global"].codec.storage == "float32"  # type: ignore[attr-defined]


def test_int8_rows_keep_their_extra_values_exact() -> None:
    from lookalike.collection import FloatRows

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 1280)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.concatenate([vectors, rng.uniform(size=(5, 6)).astype(np.float32)], axis=1)
    codec = FloatRows(1280, 6, "int8")
    blobs = codec.encode(rows)
    assert all(len(blob) == 4 + 1280 + 6 * 4 == codec.row_bytes for blob in blobs)
    decoded = codec.decode_many(blobs)
    np.testing.assert_array_equal(decoded[:, 1280:], rows[:, 1280:])
    cosines = np.sum(decoded[:, :1280] * vectors, axis=1) / np.linalg.norm(decoded[:, :1280],
                                                                            axis=1)
    assert np.all(cosines > 0.9995)
    np.testing.assert_array_equal(codec.decode(blobs[2]), decoded[2])
    with pytest.raises(ValidationError, match="vector storage"):
        FloatRows(4, storage="float16")


@pytest.mark.slow
def test_an_int8_extractor_pools_its_float32_networks_map() -> None:
    """Regions of a collection that embeds with the int8 model pool the float32 map (one
    file for both), so quantisation never touches the regional vectors."""
    pytest.importorskip("torch")
    int8 = FeatureMapModel("efficientnet-lite0-int8")
    full = FeatureMapModel("efficientnet-lite0")
    assert int8.model_path() == full.model_path()
    assert int8.info.name == "efficientnet-lite0-int8"
    assert int8.spec.info.name == full.spec.info.name
    image = skimage_data.coffee()
    np.testing.assert_allclose(int8.embed_whole(image), full.embed_whole(image), atol=1e-6)
