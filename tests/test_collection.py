"""The collection: indexing, incremental updates, search, removal and the manifest check."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern, write_images
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.errors import CollectionError, ManifestMismatchError, ValidationError


def open_collection(root: Path) -> Collection:
    return Collection(root, global_config=THUMBNAIL).open()


def test_index_then_search_finds_the_altered_copy_first(tmp_path: Path, image_folder: Path) -> None:
    with open_collection(tmp_path / "c") as collection:
        report = collection.index([image_folder])
        assert (report.added, report.failures) == (12, [])
        query = np.clip(pattern(7).astype(int) + 12, 0, 255).astype(np.uint8)
        results = collection.search(query, k=3)
    assert [r.rank for r in results] == [1, 2, 3]
    assert Path(results[0].path).name == "img007.png"
    assert results[0].score > results[1].score


def test_reindex_skips_unchanged_and_handles_changes_and_removals(
    tmp_path: Path, image_folder: Path
) -> None:
    root = tmp_path / "c"
    with open_collection(root) as collection:
        collection.index([image_folder])
    Image.fromarray(pattern(100)).save(image_folder / "img003.png")  # changed content
    (image_folder / "img004.png").unlink()  # removed
    shutil.copy(image_folder / "img005.png", image_folder / "new.png")  # added
    (image_folder / "img006.png").touch()  # same bytes, new mtime
    with open_collection(root) as collection:
        report = collection.index([image_folder])
        assert (report.added, report.updated, report.removed) == (1, 1, 1)
        assert report.unchanged == 10  # 9 untouched + the touched one, found equal by hash
        top = collection.search(pattern(100), k=1)[0]
        assert Path(top.path).name == "img003.png"
        names = {Path(r.path).name for r in collection.search(pattern(4), k=20)}
        assert "img004.png" not in names and len(names) == 12


def test_failed_files_are_reported_and_the_rest_is_indexed(
    tmp_path: Path, image_folder: Path
) -> None:
    (image_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (image_folder / "empty.png").write_bytes(b"")
    good = (image_folder / "img000.png").read_bytes()
    (image_folder / "truncated.png").write_bytes(good[: len(good) // 2])
    with open_collection(tmp_path / "c") as collection:
        report = collection.index([image_folder, tmp_path / "missing.jpg"])
        failed = dict(report.failures)
        assert report.added == 12
        assert set(map(lambda p: Path(p).name, failed)) == {
            "broken.jpg", "empty.png", "truncated.png", "missing.jpg"}
        assert all(reason for reason in failed.values())
        assert {Path(r.path).name for r in collection.failures()} == {
            "broken.jpg", "empty.png", "truncated.png"}
    # Fixing a failed file indexes it on the next run.
    (image_folder / "broken.jpg").unlink()
    Image.fromarray(pattern(50)).save(image_folder / "broken.jpg")
    with open_collection(tmp_path / "c") as collection:
        report = collection.index([image_folder])
        assert Path(collection.search(pattern(50), k=1)[0].path).name == "broken.jpg"


def test_remove_by_path_and_by_folder(tmp_path: Path, image_folder: Path) -> None:
    other = tmp_path / "other"
    write_images(other, [40, 41])
    with open_collection(tmp_path / "c") as collection:
        collection.index([image_folder, other])
        assert collection.remove([image_folder / "img001.png"]) == 1
        assert collection.remove([other]) == 2
        assert collection.remove(["/nowhere/x.png"]) == 0
        paths = {Path(r.path).name for r in collection.search(pattern(1), k=50)}
    assert len(paths) == 11 and "img001.png" not in paths


def test_in_memory_arrays_and_bytes(tmp_path: Path) -> None:
    encoded = (tmp_path / "x.png")
    Image.fromarray(pattern(2)).save(encoded)
    with open_collection(tmp_path / "c") as collection:
        report = collection.add({"one": pattern(1), "two": encoded.read_bytes(),
                                 "bad": b"garbage"})
        assert report.added == 2 and report.failures[0][0] == "bad"
        assert collection.search(pattern(2), k=1)[0].path == "two"


def test_search_by_box_uses_only_the_crop(tmp_path: Path) -> None:
    left, right = pattern(1), pattern(2)
    with open_collection(tmp_path / "c") as collection:
        collection.add({"left": left, "right": right})
        both = np.concatenate([left, right], axis=1)
        width = left.shape[1]
        assert collection.search(both, k=1, box=(width, 0, 2 * width, 72))[0].path == "right"
        assert collection.search(both, k=1, box=(0, 0, width, 72))[0].path == "left"
        with pytest.raises(ValidationError, match="positive area"):
            collection.search(both, box=(10, 10, 10, 20))


def test_manifest_mismatch_is_refused(tmp_path: Path, image_folder: Path) -> None:
    root = tmp_path / "c"
    with open_collection(root) as collection:
        collection.index([image_folder])
    other = GlobalChannelConfig(extractor="efficientnet-lite0")
    with pytest.raises(ManifestMismatchError, match="thumbnail"):
        Collection(root, global_config=other).open()
    # Opening without settings uses the collection's own.
    with Collection(root).open(create=False) as collection:
        assert collection.info()["channels"]["global"]["extractor"] == "thumbnail"


def test_open_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no collection here"):
        Collection(tmp_path / "nothing").open(create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CollectionError, match="expected a directory"):
        Collection(tmp_path / "file").open()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(CollectionError, match="unreadable manifest"):
        Collection(tmp_path / "bad").open()


@pytest.mark.parametrize("spec", ["flat", "hnsw"])
def test_index_cache_survives_reopen_and_follows_changes(
    tmp_path: Path, image_folder: Path, spec: str
) -> None:
    config = GlobalChannelConfig(extractor="thumbnail", index=spec)
    root = tmp_path / "c"
    with Collection(root, global_config=config).open() as collection:
        collection.index([image_folder])
        before = collection.search(pattern(3), k=5)
    assert (root / "cache" / "global" / "CURRENT").is_file()
    with Collection(root, global_config=config).open() as collection:
        assert collection.search(pattern(3), k=5) == before
        collection.remove([image_folder / "img003.png"])
        assert all(Path(r.path).name != "img003.png" for r in collection.search(pattern(3), k=20))


def test_whitening_is_learned_and_applied(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    write_images(folder, range(40))
    config = GlobalChannelConfig(extractor="thumbnail", whiten=16)
    with Collection(tmp_path / "c", global_config=config).open() as collection:
        collection.index([folder])
        top = collection.search(pattern(11), k=1)[0]
        assert Path(top.path).name == "img011.png" and top.score == pytest.approx(1.0, abs=1e-4)
        assert collection.info()["channels"]["global"]["whiten"] == 16


def test_stored_vectors_match_a_fresh_embedding(tmp_path: Path, image_folder: Path) -> None:
    with open_collection(tmp_path / "c") as collection:
        collection.index([image_folder])
        path = str(image_folder / "img002.png")
        stored = collection.vectors([path])
        fresh = collection.channels["global"].extractor.embed([pattern(2)])  # type: ignore[attr-defined]
    np.testing.assert_allclose(stored, fresh, atol=1e-6)


def test_auto_channel_searches_every_channel(tmp_path: Path, image_folder: Path) -> None:
    with open_collection(tmp_path / "c") as collection:
        collection.index([image_folder])
        assert collection.search(pattern(3), k=4, channel="auto") == collection.search(
            pattern(3), k=4, channel="global")


def test_the_pixel_cap_refuses_big_images_and_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, [1])
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(folder / "huge.png")
    with Collection(tmp_path / "c", global_config=THUMBNAIL, max_pixels=50_000).open() as c:
        report = c.index([folder])
        assert report.added == 1
        ((path, reason),) = report.failures
        assert path.endswith("huge.png") and "90000" in reason.replace(",", "")
