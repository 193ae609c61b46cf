"""The local channel inside a collection: train, index, verify, persist, change, check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Collection, LocalChannelConfig
from lookalike.cli import main
from lookalike.collection.local_channel import LocalChannel
from lookalike.errors import CollectionError, ManifestMismatchError, ValidationError
from lookalike.local.features import SiftExtractor
from lookalike.local.tree import VocabularyTree

cv2 = pytest.importorskip("cv2")

SMALL = LocalChannelConfig(max_features=400, branching=6, depth=4)


def scene(seed: int, size: tuple[int, int] = (360, 480)) -> np.ndarray:
    """A cluttered picture (shapes and words) that SIFT finds many keypoints in."""
    rng = np.random.default_rng(seed)
    image = np.full((*size, 3), 235, np.uint8)
    for _ in range(70):
        colour = tuple(int(c) for c in rng.integers(0, 200, 3))
        x, y = int(rng.integers(0, size[1])), int(rng.integers(0, size[0]))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), int(rng.integers(4, 24)), colour, -1)
        else:
            w, h = (int(v) for v in rng.integers(6, 40, 2))
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
    for _ in range(8):
        word = "".join(chr(int(c)) for c in rng.integers(65, 91, 5))
        x, y = int(rng.integers(0, size[1] - 100)), int(rng.integers(20, size[0]))
        cv2.putText(image, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
    return image


WARP = np.array([[0.85, 0.12, 30.0], [-0.08, 0.9, 25.0], [1e-4, -5e-5, 1.0]])


def another_view(image: np.ndarray) -> np.ndarray:
    """The same scene seen from elsewhere: a perspective warp and a change of light."""
    height, width = image.shape[:2]
    warped = cv2.warpPerspective(image, WARP, (width, height), borderValue=(235, 235, 235))
    return np.clip(warped.astype(np.int16) * 9 // 10 + 10, 0, 255).astype(np.uint8)


def save(folder: Path, name: str, image: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    folder = tmp_path / "scenes"
    for seed in range(8):
        save(folder, f"scene{seed}.png", scene(seed))
    return folder


def local_collection(root: Path, config: LocalChannelConfig = SMALL) -> Collection:
    return Collection(root, channels=["local"], configs={"local": config})


@pytest.mark.parametrize("max_side", [1024, 256], ids=["full-size", "shrunk-for-sift"])
def test_another_view_is_found_first_with_its_evidence(scenes: Path, tmp_path: Path,
                                                       max_side: int) -> None:
    query = another_view(scene(3))
    config = LocalChannelConfig(max_features=400, branching=6, depth=4, max_side=max_side)
    with local_collection(tmp_path / "c", config) as collection:
        report = collection.index([scenes])
        assert report.added == 8 and not report.failures
        results = collection.search(query, k=3, channel="local")
    best = results[0]
    assert Path(best.path).name == "scene3.png"
    evidence = best.evidence.as_dict()["local"]
    assert evidence["verified"] and evidence["inliers"] >= (50 if max_side > 480 else 20)
    # Synthetic scenes share letters and shapes, so a few chance inliers may agree elsewhere.
    assert results[1].evidence.as_dict()["local"]["inliers"] * 5 < evidence["inliers"]
    # The transform maps query pixels to the stored image's pixels (whatever size SIFT
    # saw): the inverse of the warp.
    transform = np.array(evidence["transform"])
    lines = np.array(evidence["matches"])
    mapped = np.c_[lines[:, :2], np.ones(len(lines))] @ transform.T
    assert np.median(np.abs(mapped[:, :2] / mapped[:, 2:] - lines[:, 2:])) < 3.0
    truth = np.linalg.inv(WARP)
    back = np.c_[lines[:, :2], np.ones(len(lines))] @ truth.T
    assert np.median(np.linalg.norm(back[:, :2] / back[:, 2:] - lines[:, 2:], axis=1)) < 3.0


def test_tree_only_and_verified_search(scenes: Path, tmp_path: Path) -> None:
    query = another_view(scene(5))
    with local_collection(tmp_path / "c") as collection:
        collection.index([scenes])
        verified = collection.search(query, k=8, channel="local")
    unverified = LocalChannelConfig(max_features=400, branching=6, depth=4, verify=0)
    with local_collection(tmp_path / "c", unverified) as collection:
        tree_only = collection.search(query, k=8, channel="local")
    assert all("inliers" not in result.evidence.as_dict()["local"] for result in tree_only)
    assert all(0.0 <= (result.fused_score or 0) <= 1.0 for result in tree_only)
    assert Path(tree_only[0].path).name == "scene5.png"
    # Verified images rank first, scored by inliers; the rest keep scores in [0, 1].
    assert verified[0].evidence.as_dict()["local"]["verified"] and (verified[0].fused_score
                                                                   or 0) > 8
    assert all((result.fused_score or 0) <= 1.0 for result in verified[1:]
               if not result.evidence.as_dict()["local"].get("verified"))


def test_a_rotated_view_is_verified(scenes: Path, tmp_path: Path) -> None:
    image = scene(4)
    turn = cv2.getRotationMatrix2D((240, 180), 35, 0.9)
    rotated = cv2.warpAffine(image, turn, (480, 360), borderValue=(235, 235, 235))
    with local_collection(tmp_path / "c") as collection:
        collection.index([scenes])
        best = collection.search(rotated, k=1, channel="local")[0]
    local = best.evidence.as_dict()["local"]
    assert Path(best.path).name == "scene4.png" and local["inliers"] >= 30
    transform = np.array(local["transform"])  # rotated -> original: turn back 35°
    assert np.degrees(np.arctan2(transform[1, 0], transform[0, 0])) == pytest.approx(35, abs=2)


def test_a_changed_file_is_found_by_its_new_content(scenes: Path, tmp_path: Path) -> None:
    with local_collection(tmp_path / "c") as collection:
        collection.index([scenes])
        save(scenes, "scene0.png", scene(77))
        report = collection.index([scenes])
        assert report.updated == 1 and report.unchanged == 7
        best = collection.search(another_view(scene(77)), k=1, channel="local")[0]
        assert Path(best.path).name == "scene0.png" and best.evidence.as_dict()["local"]["verified"]
        old = collection.search(another_view(scene(0)), k=3, channel="local")
        assert not any(result.evidence.as_dict()["local"].get("verified") for result in old)


def test_query_by_region_uses_only_features_inside_the_box(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    left, right = scene(10, (300, 300)), scene(11, (300, 300))
    save(folder, "left.png", left)
    save(folder, "right.png", right)
    for seed in range(12, 16):
        save(folder, f"other{seed}.png", scene(seed, (300, 300)))
    both = np.concatenate([left, right], axis=1)  # 300 x 600: the two side by side
    with local_collection(tmp_path / "c") as collection:
        collection.index([folder])
        on_left = collection.search(both, k=1, channel="local", box=(0, 0, 300, 300))
        on_right = collection.search(both, k=1, channel="local", box=(300, 0, 600, 300))
        # A box past the edges is what lies inside: SIFT sees it at the same size.
        past_edge = collection.search(both, k=1, channel="local", box=(300, -50, 5000, 5000))
        with pytest.raises(ValidationError, match="positive area"):
            collection.search(both, channel="local", box=(700, 0, 800, 10))
        with pytest.raises(ValidationError, match="four finite numbers"):
            collection.search(both, channel="local", box=(float("nan"), 0, 300, 300))
    assert past_edge[0].evidence.as_dict() == on_right[0].evidence.as_dict()
    assert Path(on_left[0].path).name == "left.png"
    assert Path(on_right[0].path).name == "right.png"
    # Evidence is in the query's pixels: the right-hand matches lie in the right half.
    assert min(line[0] for line in on_right[0].evidence.as_dict()["local"]["matches"]) >= 299


def test_incremental_add_remove_and_reopen(scenes: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    extra = save(tmp_path / "later", "late.png", scene(42))
    with local_collection(root) as collection:
        collection.index([scenes])
        tree_id = collection.info()["channels"]["local"]["vocabulary"]["id"]
    with local_collection(root) as collection:
        assert collection.index([scenes]).unchanged == 8
        collection.index([extra])
        assert Path(collection.search(another_view(scene(42)), k=1,
                                      channel="local")[0].path).name == "late.png"
        assert collection.remove([scenes / "scene3.png"]) == 1
        names = [Path(r.path).name for r in collection.search(another_view(scene(3)), k=9,
                                                              channel="local")]
        assert "scene3.png" not in names
    with Collection(root).open(create=False) as collection:  # its own settings, from disk
        info = collection.info()["channels"]["local"]
        assert info["vocabulary"]["id"] == tree_id and info["vectors"] == 8
        assert 0 < info["bytes_per_image"] <= 4 + 20 * 400  # 20 bytes a keypoint, signed
        assert Path(collection.search(another_view(scene(42)), k=1,
                                      channel="local")[0].path).name == "late.png"


def test_manifest_and_tree_are_checked_on_open(scenes: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    with local_collection(root) as collection:
        collection.index([scenes])
    with pytest.raises(ManifestMismatchError, match="features"):
        Collection(root, configs={"local": LocalChannelConfig(features="sift", max_features=400,
                                                         branching=6, depth=4)}).open()
    with pytest.raises(ManifestMismatchError, match="channels"):
        Collection(root, channels=["global"]).open()
    other = tmp_path / "other.npz"
    VocabularyTree.train(np.random.default_rng(0).random((200, 128), dtype=np.float32),
                         features="rootsift", branching=6, depth=4)[0].save(other)
    config = LocalChannelConfig(max_features=400, branching=6, depth=4, vocabulary=str(other))
    with pytest.raises(ManifestMismatchError, match="vocabulary tree"):
        Collection(root, configs={"local": config}).open()
    with pytest.raises(ManifestMismatchError, match="channels"):
        Collection(tmp_path / "global-only").open().close()
        Collection(tmp_path / "global-only", configs={"local": SMALL}).open()
    with Collection(root).open() as collection, pytest.raises(ValidationError, match="vectors"):
        collection.vectors([str(scenes / "scene0.png")], channel="local")
    (root / "local" / "vocabulary.npz").unlink()
    with pytest.raises(CollectionError, match=r"vocabulary tree of the stored words .* is missing"):
        Collection(root).open()


def test_a_tree_trained_elsewhere_is_adopted(scenes: Path, tmp_path: Path) -> None:
    tree_file = tmp_path / "tree.npz"
    assert main(["vocabulary", str(scenes), "--out", str(tree_file), "--max-features", "400",
                 "--branching", "6", "--depth", "4", "--json", "-q"]) == 0
    trained = VocabularyTree.load(tree_file)
    config = LocalChannelConfig(max_features=400, branching=6, depth=4, vocabulary=str(tree_file))
    with local_collection(tmp_path / "c", config) as collection:
        collection.index([scenes])
        assert collection.info()["channels"]["local"]["vocabulary"]["id"] == trained.id
    tree_file.unlink()  # the collection keeps its own copy
    with Collection(tmp_path / "c").open() as collection:
        assert Path(collection.search(another_view(scene(1)), k=1,
                                      channel="local")[0].path).name == "scene1.png"


def test_one_photo_or_copies_of_one_object_are_found(scenes: Path, tmp_path: Path) -> None:
    # With the paper's weights ln(N / N_i), every word of these collections weighs 0 and
    # nothing at all was found; a word in every image must still count a little.
    tree_file = tmp_path / "tree.npz"
    assert main(["vocabulary", str(scenes), "--out", str(tree_file), "--max-features", "400",
                 "--branching", "6", "--depth", "4", "--json", "-q"]) == 0
    config = LocalChannelConfig(max_features=400, branching=6, depth=4, vocabulary=str(tree_file))
    photos = tmp_path / "photos"
    save(photos, "one.png", scene(3))
    with local_collection(tmp_path / "c", config) as collection:
        collection.index([photos])
        found = collection.search(another_view(scene(3)), k=3, channel="local")
        assert [Path(r.path).name for r in found] == ["one.png"]
        save(photos, "copy.png", scene(3))
        collection.index([photos])
        found = collection.search(another_view(scene(3)), k=3, channel="local")
        assert sorted(Path(r.path).name for r in found) == ["copy.png", "one.png"]
        assert all(r.evidence.as_dict()["local"]["verified"] for r in found)


def test_too_few_keypoints_to_train_a_tree_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "sparse"
    image = np.full((200, 200, 3), 235, np.uint8)
    cv2.circle(image, (100, 100), 30, (20, 20, 20), -1)
    save(folder, "one-circle.png", image)
    with local_collection(tmp_path / "c") as collection, \
            pytest.raises(ValidationError, match="at least 1000 local descriptors"):
        collection.index([folder])


def test_bad_and_featureless_images_do_not_stop_the_batch(scenes: Path, tmp_path: Path) -> None:
    (scenes / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    save(scenes, "blank.png", np.full((64, 64, 3), 200, np.uint8))
    with local_collection(tmp_path / "c") as collection:
        report = collection.index([scenes])
        assert report.added == 9 and [Path(p).name for p, _ in report.failures] == ["broken.png"]
        assert collection.info()["channels"]["local"]["vectors"] == 8  # blank has no keypoints
        assert collection.search(np.full((64, 64, 3), 200, np.uint8), channel="local") == []


def test_auto_fuses_global_and_local(scenes: Path, tmp_path: Path) -> None:
    from conftest import THUMBNAIL

    collection = Collection(tmp_path / "c", configs={"global": THUMBNAIL, "local": SMALL})
    with collection:
        collection.index([scenes])
        assert set(collection.channels) == {"global", "local"}
        fused = collection.search(another_view(scene(6)), k=3, channel="auto")
        # The order of the first results does not depend on how many are asked for, and
        # the verified match leads.
        longer = collection.search(another_view(scene(6)), k=8, channel="auto")
        assert [r.path for r in longer[:3]] == [r.path for r in fused]
        assert [r.fused_score for r in longer[:3]] == [r.fused_score for r in fused]
    assert Path(fused[0].path).name == "scene6.png" and fused[0].evidence.sure


def test_cli_index_search_info_and_eval(scenes: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "c"
    query = save(tmp_path, "query.png", another_view(scene(2)))
    assert main(["index", str(scenes), "-c", str(root), "--channels", "local",
                 "--max-features", "400", "--max-side", "400", "-q"]) == 0
    capsys.readouterr()
    assert json.loads((root / "manifest.json").read_text())["channels"]["local"]["max_side"] == 400
    assert main(["search", str(query), "-c", str(root), "--channel", "local", "-k", "2",
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["results"]
    assert (Path(found[0]["path"]).name == "scene2.png"
            and found[0]["evidence"]["local"]["verified"])
    assert main(["info", "-c", str(root)]) == 0
    assert "rootsift x 400" in capsys.readouterr().out
    truth = tmp_path / "truth.tsv"
    truth.write_text("".join(f"{scenes / f'scene{i}.png'}\t{scenes / f'scene{i}.png'}\n"
                             for i in range(8)))
    assert main(["eval", "custom", "--root", str(scenes), "--truth", str(truth), "--channel",
                 "local", "--max-features", "400", "--collection", str(tmp_path / "e"),
                 "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["map"] == pytest.approx(1.0) and report["local"]["features"] == "rootsift"


def test_packed_records_round_trip() -> None:
    from lookalike.collection.local_channel import RECORD, pack, unpack
    from lookalike.local.features import LocalFeatures

    geometry = np.array([[10.5, 20.25, 3.0, 45.0], [1000.0, 700.5, 12.5, 359.0]], np.float32)
    features = LocalFeatures(np.zeros((2, 128), np.float32), geometry, 1024, 768, 2.0)
    blob = pack(features, np.array([7, 123456]))
    assert len(blob) == 4 + 2 * RECORD.itemsize == 28
    unpacked = unpack(blob.tobytes())
    assert (unpacked.width, unpacked.height) == (1024, 768)
    assert unpacked.words.tolist() == [7, 123456]
    assert np.allclose(unpacked.geometry, geometry, atol=0.5)


@pytest.mark.parametrize("settings, message", [
    ({"features": "orb"}, "feature kind"),
    ({"max_features": 0}, "max_features"),
    ({"max_side": 10_000}, "max_side"),
    ({"branching": 1}, "branching"),
    ({"verify": -1}, "verify"),
    ({"norm": "l3"}, "norm"),
    ({"verify_model": "similarity"}, "model"),
    ({"min_inliers": 2}, "min_inliers"),
    ({"query_side": 16}, "query_side"),
])
def test_bad_local_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LocalChannelConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("shape", "box", "side"), [
    ((480, 640), None, 480),  # a photo: its longer side to 480
    ((300, 400), None, 400),  # smaller than that: as it is
    ((768, 1024), (0, 0, 200, 150), 1024),  # a small box: the photo as it is
    ((768, 1024), (0, 0, 800, 600), 614),  # a large box: shrunk so the box is 480 long
])
def test_sift_sees_what_is_searched_at_most_query_side_long(
        shape: tuple[int, int], box: tuple[float, float, float, float] | None,
        side: int) -> None:
    channel = LocalChannel(LocalChannelConfig(query_side=480))
    assert channel._query_side(np.zeros((*shape, 3), np.uint8), box) == side


def test_a_search_sees_its_query_at_query_side(scenes: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int | None] = []
    extract = SiftExtractor.extract

    def spy(self: SiftExtractor, image: np.ndarray, max_side: int | None = None) -> object:
        asked.append(max_side)
        return extract(self, image, max_side)

    with local_collection(tmp_path / "c") as collection:
        collection.index([scenes])
        monkeypatch.setattr(SiftExtractor, "extract", spy)
        found = collection.search(scene(6, (600, 800)), k=1, channel="local")
        collection.search(scene(6, (600, 800)), k=1, channel="local", box=(0, 0, 400, 300))
    assert asked == [480, 800] and Path(found[0].path).name == "scene6.png"


def test_a_query_is_extracted_at_the_side_asked_and_mapped_back() -> None:
    image = scene(3, (480, 640))
    sift = SiftExtractor("rootsift", 1500, 1024)
    full, shrunk = sift.extract(image), sift.extract(image, max_side=480)
    assert (full.width, shrunk.width, shrunk.height) == (640, 480, 360)
    assert shrunk.scale == pytest.approx(640 / 480)
    # In the caller's pixels, both cover the same picture.
    assert (shrunk.geometry[:, 0] * shrunk.scale).max() > 560
    assert sift.extract(image, max_side=2048).width == 640  # never above the photo


def test_unknown_channels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="channels among"):
        Collection(tmp_path / "c", channels=["global", "colour"])
    from lookalike.eval import evaluate

    with pytest.raises(ValidationError, match="channel among"):
        evaluate("custom", root=tmp_path, truth=tmp_path / "t.tsv", channel="colour")


def test_vocabulary_command_reports_folders_without_images(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["vocabulary", str(tmp_path / "empty"), "--out", str(tmp_path / "t.npz"),
                 "-q"]) == 1
    assert "expected images with local features" in capsys.readouterr().err
    assert not (tmp_path / "t.npz").exists()


def test_a_local_channel_without_keypoints_leaves_the_others_working(tmp_path: Path) -> None:
    from conftest import THUMBNAIL

    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    folder = tmp_path / "smooth"
    for i, direction in enumerate((ramp[None, :, None], ramp[:, None, None])):
        save(folder, f"ramp{i}.png", np.broadcast_to(direction, (96, 96, 3)).copy())
    with Collection(tmp_path / "c", configs={"global": THUMBNAIL, "local": SMALL}) as collection:
        assert collection.index([folder]).added == 2
        assert collection.info()["channels"]["local"]["vocabulary"] is None
        assert collection.search(folder / "ramp1.png", channel="local") == []
        assert Path(collection.search(folder / "ramp1.png", k=1,
                                      channel="auto")[0].path).name == "ramp1.png"


LOCAL_CHILD = """
import sys
from lookalike import Collection, LocalChannelConfig
config = LocalChannelConfig(max_features=400, branching=6, depth=4)
collection = Collection(sys.argv[1], channels=["local"], batch_size=2, configs={"local": config})
collection.open().index([sys.argv[2]])
"""


def test_kill_during_local_indexing_then_resume(tmp_path: Path) -> None:
    from test_crash_safety import kill_when_committed

    folder = tmp_path / "scenes"
    for seed in range(30):
        save(folder, f"scene{seed:02d}.png", scene(seed, (240, 320)))
    root = tmp_path / "c"
    kill_when_committed(LOCAL_CHILD, root, folder, 4)
    with local_collection(root) as collection:
        info = collection.info()
        survived = info["images"]
        assert 4 <= survived < 30
        tree_id = info["channels"]["local"]["vocabulary"]["id"]
        assert info["channels"]["local"]["vectors"] == survived  # batches are all-or-nothing
        report = collection.index([folder])
        assert report.added == 30 - survived and report.unchanged == survived
        assert collection.info()["channels"]["local"]["vocabulary"]["id"] == tree_id
        best = collection.search(another_view(scene(25, (240, 320))), k=1, channel="local")[0]
        assert Path(best.path).name == "scene25.png"
        assert best.evidence.as_dict()["local"]["verified"]


def test_a_collection_grows_a_channel_and_drops_it(
        scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "c"
    assert main(["index", str(scenes), "-c", str(root), "--extractor", "thumbnail",
                 "-q"]) == 0
    with Collection(root) as collection:
        before = collection.vectors([str(p) for p in sorted(scenes.glob("*.png"))])
    capsys.readouterr()
    # The README's way: the same command with a channel more computes only that channel.
    assert main(["index", str(scenes), "-c", str(root), "--channels", "global,local",
                 "--max-features", "400", "--json", "-q"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "adding channel local" in captured.err
    assert report["added"] == 0 and report["completed"] == 8
    assert set(report["stage_seconds"]) >= {"extract.local"}
    assert "extract.global" not in report["stage_seconds"]
    query = save(tmp_path, "query.png", another_view(scene(2)))
    with Collection(root) as collection:
        assert np.array_equal(collection.vectors(
            [str(p) for p in sorted(scenes.glob("*.png"))]), before)
        found = collection.search(query, channel="local", k=1)
        assert Path(found[0].path).name == "scene2.png" and found[0].evidence.sure
    assert main(["channels", "remove", "local", "-c", str(root)]) == 0
    assert not (root / "local").exists()
    capsys.readouterr()
    assert main(["search", str(query), "-c", str(root), "--channel", "local"]) == 1
    assert "lookalike channels add local" in capsys.readouterr().err
    assert main(["channels", "remove", "global", "-c", str(root)]) == 1
    assert "expected a channel to remain" in capsys.readouterr().err
    assert main(["channels", "list", "-c", str(root), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["global"]
    # Added again, it learns afresh: nothing of the removed channel's tree is asked for.
    assert main(["channels", "add", "local", "-c", str(root)]) == 0
    capsys.readouterr()
    assert main(["index", str(scenes), "-c", str(root), "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["completed"] == 8


def test_long_steps_show_progress_on_stderr_also_with_json(
        scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(scenes), "-c", str(tmp_path / "c"), "--channels", "local",
                 "--max-features", "400", "--vocabulary", "own", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout stays one JSON document
    assert report["added"] == 8 and report["wall_seconds"] >= report["seconds"]
    for stage in ("reading images to train the local channel",
                  "training the vocabulary tree", "indexing"):
        assert stage in captured.err
    assert main(["index", str(scenes), "-c", str(tmp_path / "c"), "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q silences them
