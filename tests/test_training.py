"""Training an embedding: lookalike train -> a model file -> a collection indexed with it
-> search and eval, end to end on small images made here, with no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.cli import main
from lookalike.errors import ValidationError

pytest.importorskip("torch")
pytest.importorskip("pytorch_metric_learning")
pytestmark = pytest.mark.slow


def classes_folder(root: Path, classes: int, per_class: int, seed: int = 0) -> Path:
    """Each class a pattern seen with noise, a shift and another brightness."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"class{label:02d}"
        folder.mkdir(parents=True)
        for member in range(per_class):
            image = pattern(100 + label, (160, 120)).astype(int)
            image = np.roll(image, int(rng.integers(-12, 12)), axis=1) * rng.uniform(0.8, 1.2)
            image = image + rng.integers(-20, 21, size=image.shape)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                folder / f"{member}.png")
    return root


def test_train_then_index_search_and_eval_with_the_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = classes_folder(tmp_path / "train", classes=10, per_class=4)
    (data / "class00" / "broken.png").write_bytes(b"not a picture")
    model = tmp_path / "model.onnx"
    assert main(["train", str(data), "--out", str(model), "--epochs", "3", "--dim", "32",
                 "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["dim"] == 32 and card["loss"] == "triplet" and card["epochs_run"] == 3
    assert card["data"]["images"] == 40 and card["data"]["failed"] == 1
    assert report["failures"][0]["path"].endswith("broken.png")
    assert card["onnx_max_abs_difference"] < 1e-3 and card["validation_classes"]
    assert set(card["validation"]) == {"recall_at_1", "recall_at_2", "recall_at_4",
                                       "recall_at_8", "map_at_r"}
    # The model is a global extractor like any other: index, search, evaluate.
    (data / "class00" / "broken.png").unlink()
    with Collection(tmp_path / "c", configs={"global": GlobalChannelConfig(
            extractor=str(model))}) as collection:
        assert collection.index([data]).added == 40
        found = collection.search(data / "class03" / "0.png", k=3)
        assert Path(found[0].path).parent.name == "class03"
        info = collection.info()["channels"]["global"]
        assert info["extractor_info"]["dim"] == 32
    assert main(["search", str(data / "class05" / "1.png"), "-c", str(tmp_path / "c"),
                 "-k", "2", "--json"]) == 0
    assert "class05" in capsys.readouterr().out
    unseen = classes_folder(tmp_path / "unseen", classes=4, per_class=3, seed=1)
    assert main(["eval", "classes", "--data", str(unseen), "--extractor", str(model),
                 "--collection", str(tmp_path / "e"), "--json", "-q"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["extractor"] == str(model.resolve()) and 0 <= scores["map_at_r"] <= 1


def test_the_same_seed_trains_the_same_head(tmp_path: Path) -> None:
    from lookalike.training import TrainConfig, train_embedding

    data = classes_folder(tmp_path / "train", classes=8, per_class=3)
    config = TrainConfig(epochs=2, dim=16, loss="normsoftmax", seed=3)
    first = train_embedding(data, tmp_path / "a.onnx", config)
    second = train_embedding(data, tmp_path / "b.onnx", config)
    assert first.history == second.history
    other = train_embedding(data, tmp_path / "c.onnx", TrainConfig(epochs=2, dim=16,
                                                                   loss="arcface", seed=4))
    assert other.card["loss"] == "arcface" and other.history != first.history


def test_bad_training_input_is_refused(tmp_path: Path) -> None:
    from lookalike.training import TrainConfig, train_embedding

    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.fromarray(pattern(1)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(ValidationError, match="at least two classes"):
        train_embedding(tmp_path / "one", tmp_path / "m.onnx")
    with pytest.raises(ValidationError, match=r"ending in \.onnx"):
        train_embedding(tmp_path / "one", tmp_path / "m.bin")
    with pytest.raises(ValidationError, match="expected a loss"):
        TrainConfig(loss="contrastive")
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("missing.png\tcat\n")
    with pytest.raises(ValidationError, match="no such image"):
        train_embedding(tsv, tmp_path / "m.onnx")
    with pytest.raises(ValidationError, match="made by lookalike train"):
        Collection(tmp_path / "x", configs={"global": GlobalChannelConfig(
            extractor=str(tmp_path / "nope.onnx"))}).open()


def test_a_collection_s_categories_are_labels_to_train_on(tmp_path: Path) -> None:
    from conftest import THUMBNAIL

    from lookalike.training import TrainConfig, labelled_images, train_embedding

    data = classes_folder(tmp_path / "photos", classes=6, per_class=3)
    with Collection(tmp_path / "c", configs={"global": THUMBNAIL}) as collection:
        collection.index([data])
        for record in collection.images():
            label = Path(record.path).parent.name
            categories = [label.upper()] if not label.endswith("5") else [label, "other"]
            collection.annotations.set(record.id, categories=categories)
    found = labelled_images(tmp_path / "c")
    # One category each, case folded; the images with two are left out.
    assert len(found.paths) == 15 and found.classes == [f"class0{i}" for i in range(5)]
    report = train_embedding(tmp_path / "c", tmp_path / "m.onnx", TrainConfig(epochs=2))
    # Too few classes to hold some out: a share of each class's images is held out.
    assert report.card["data"]["classes"] == 5 and report.card["held_out"] == "images"
    assert isinstance(report.card["beats_base"], bool)


def test_a_model_file_is_recorded_by_its_absolute_path(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert GlobalChannelConfig(extractor="model.onnx").extractor == str(tmp_path / "model.onnx")
    assert GlobalChannelConfig().extractor == "efficientnet-lite0"


def test_fine_tuning_the_last_block_exports_the_whole_network(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = classes_folder(tmp_path / "train", classes=6, per_class=4)
    model = tmp_path / "tuned.onnx"
    assert main(["train", str(data), "--out", str(model), "--epochs", "2", "--dim", "32",
                 "--tune-blocks", "1", "--validation", "0", "--json", "-q"]) == 0
    card = json.loads(capsys.readouterr().out)
    # The head (1280 x 32 + 32) and the last block's and final convolution's weights.
    assert card["tuned_blocks"] == 1 and card["trained_parameters"] > 32 * 1280 + 500_000
    assert card["onnx_max_abs_difference"] < 1e-3
    # One graph from pixels to the embedding, run as any extractor: the tuned tail changed
    # what the network computes, so it is not the base network with a linear head.
    with Collection(tmp_path / "c", configs={"global": GlobalChannelConfig(
            extractor=str(model))}) as collection:
        assert collection.index([data]).added == 24
        found = collection.search(data / "class02" / "1.png", k=1)
        assert Path(found[0].path) == data / "class02" / "1.png"
    with pytest.raises(ValidationError, match="blocks to fine-tune"):
        from lookalike.training import TrainConfig, train_embedding
        train_embedding(data, tmp_path / "x.onnx", TrainConfig(tune_blocks=99))
