"""Training a face model: lookalike train --faces -> a model file -> a faces channel that
uses it, from folders of people and from a collection's named people, with no network.

The "people" are scikit-image's astronaut photo seen three ways (lighting, scale, a small
turn); the test checks the pipeline and the file, not what the model learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Collection, FacesChannelConfig
from lookalike.cli import main
from lookalike.errors import ValidationError
from lookalike.faces import FaceAnalyzer, make_embedder, verify_threshold
from lookalike.training import TrainConfig, train_face_embedding

pytest.importorskip("torch")
pytest.importorskip("pytorch_metric_learning")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.slow


def people_folder(root: Path, per_person: int = 4) -> Path:
    """Three 'people', each the astronaut under its own change, with noise per photo."""
    face = Image.fromarray(np.asarray(skimage_data.astronaut()))
    changes = {"dim": lambda im: Image.eval(im, lambda v: int(v * 0.6)),
               "small": lambda im: im.resize((400, 400)).resize((512, 512)),
               "turned": lambda im: im.rotate(8, resample=Image.Resampling.BILINEAR)}
    rng = np.random.default_rng(0)
    for person, change in changes.items():
        folder = root / person
        folder.mkdir(parents=True)
        for member in range(per_person):
            pixels = np.asarray(change(face), dtype=int)
            pixels = pixels + rng.integers(-12, 13, size=pixels.shape)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                folder / f"{member}.jpg")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("faces")
    data = people_folder(root / "people")
    (data / "dim" / "empty.png").write_bytes(b"")  # a bad file is reported, the rest trains
    model = root / "faces.onnx"
    train_face_embedding(data, model, TrainConfig(base="sface", epochs=2, validation=0))
    (data / "dim" / "empty.png").unlink()
    return data, model


def test_a_trained_face_model_is_one_checked_onnx_file_with_its_thresholds(
        trained: tuple[Path, Path]) -> None:
    _, model = trained
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["kind"] == "faces" and card["base"]["name"] == "sface"
    assert card["data"]["images"] == 12 and card["data"]["failed"] == 1
    assert card["onnx_max_abs_difference"] < 1e-3
    verify, cluster = card["thresholds"]["verify"], card["thresholds"]["cluster"]
    assert -1 <= verify < cluster <= 1
    assert card["thresholds"]["calibrated_on"] == "the training faces"
    assert verify_threshold("centerface", str(model)) == verify
    embedder = make_embedder(str(model))
    assert embedder.info.dim == 128 and embedder.info.chip == 112
    # The file runs the face network and the head: same faces, unit vectors, and its own
    # geometry (not SFace's vectors passed through).
    ours = FaceAnalyzer("centerface", str(model)).faces(np.asarray(skimage_data.astronaut()))
    sface = FaceAnalyzer("centerface", "sface").faces(np.asarray(skimage_data.astronaut()))
    assert len(ours) == len(sface) == 1
    assert abs(float(np.linalg.norm(ours[0].vector)) - 1) < 1e-5
    assert not np.allclose(ours[0].vector, sface[0].vector, atol=1e-3)


def test_a_faces_channel_indexes_and_searches_with_the_trained_model(
        trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    with Collection(tmp_path / "c", channels=("faces",), configs={
            "faces": FacesChannelConfig(embedder=str(model))}) as collection:
        assert collection.index([data]).added == 12
        found = collection.search(data / "turned" / "0.jpg", k=3, channel="faces")
        assert found and (found[0].fused_score or 0) > 0.99  # the query itself
        manifest = collection.info()["channels"]["faces"]
    assert manifest["embedder"] == str(model.resolve())
    # The manifest pins the file's contents: another model under the same name is refused.
    with Collection(tmp_path / "c") as collection:
        assert collection.channels["faces"].analyzer.embedder.info.version == \
            make_embedder(str(model)).info.version


def test_named_people_of_a_collection_train_a_face_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = people_folder(tmp_path / "people", per_person=3)
    with Collection(tmp_path / "c", channels=("faces",)) as collection:
        collection.index([data])
        people = collection.people
        people.update(reset=True)
        by_folder: dict[str, list[int]] = {}
        for face_id in people.channel.grouping_rows()[0]:
            image = collection.image(people.face(int(face_id)).image_id)
            by_folder.setdefault(Path(image.path).parent.name, []).append(int(face_id))
        for folder, ids in by_folder.items():  # one named person per folder
            person = people.split(people.person_of(ids[:1])[ids[0]][0], ids[:1])
            people.name(person.id, folder)
            for face_id in ids[1:]:
                people.assign(face_id, person.id)
    out = tmp_path / "named.onnx"
    assert main(["train", str(tmp_path / "c"), "--faces", "--out", str(out), "--epochs", "1",
                 "--validation", "0", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["images"] == 9 and report["data"]["classes"] == 3
    assert report["kind"] == "faces"


def test_face_training_input_is_checked(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    with pytest.raises(ValidationError, match="face network to train on"):
        train_face_embedding(data, tmp_path / "m.onnx", TrainConfig(base="efficientnet-lite0"))
    image_model = tmp_path / "image.onnx"
    image_model.write_bytes(model.read_bytes())
    card = json.loads(model.with_suffix(".json").read_text())
    card.pop("kind")
    card["preprocessing"] = {}  # an image model's card
    image_model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValidationError, match="expected a face model"):
        make_embedder(str(image_model))
    with pytest.raises(ValidationError, match="face embedder among"):
        FacesChannelConfig(embedder="no-such-model")
