"""The collection: indexing, incremental updates, search, removal and the manifest check."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern, write_images
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.errors import CollectionError, ManifestMismatchError, ValidationError


def open_collection(root: Path) -> Collection:
    return Collection(root, configs={"global": THUMBNAIL}).open()


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
        Collection(root, configs={"global": other}).open()
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
    with Collection(root, configs={"global": config}).open() as collection:
        collection.index([image_folder])
        before = collection.search(pattern(3), k=5)
    token = (root / "cache" / "global" / "CURRENT").read_text()
    with Collection(root, configs={"global": config}).open() as collection:
        assert collection.search(pattern(3), k=5) == before
    assert (root / "cache" / "global" / "CURRENT").read_text() == token  # reused, not rebuilt
    with Collection(root, configs={"global": config}).open() as collection:
        collection.remove([image_folder / "img003.png"])
        assert all(Path(r.path).name != "img003.png" for r in collection.search(pattern(3), k=20))


def test_whitening_waits_for_enough_images_then_is_learned_and_relearned(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    write_images(folder, range(10))
    config = GlobalChannelConfig(extractor="thumbnail", whiten=16)
    with Collection(tmp_path / "c", configs={"global": config}).open() as collection:
        collection.index([folder])
        assert Path(collection.search(pattern(3), k=1)[0].path).name == "img003.png"
        assert collection.info()["channels"]["global"]["whitening_learned_on"] == 0
        write_images(folder, range(10, 40))
        collection.index([folder])
        top = collection.search(pattern(11), k=1)[0]
        assert Path(top.path).name == "img011.png"
        assert top.fused_score == pytest.approx(1.0, abs=1e-4)
        stats = collection.info()["channels"]["global"]
        assert stats["whitening_learned_on"] == 40
        assert stats["index_memory_bytes"] < 40 * 64 * 4  # 16-d vectors, not 192-d
        write_images(folder, range(40, 85))
        collection.index([folder])
        collection.search(pattern(1), k=1)
        assert collection.info()["channels"]["global"]["whitening_learned_on"] == 85


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_stored_vectors_match_a_fresh_embedding(tmp_path: Path, image_folder: Path,
                                                storage: str) -> None:
    """float32 rows give the embedding back; int8 rows within half a quantisation step,
    at a quarter of the bytes."""
    config = dataclasses.replace(THUMBNAIL, storage=storage)
    with Collection(tmp_path / "c", configs={"global": config}) as collection:
        collection.index([image_folder])
        path = str(image_folder / "img002.png")
        stored = collection.vectors([path])
        fresh = collection.channels["global"].extractor.embed([pattern(2)])  # type: ignore[attr-defined]
        stored_bytes = collection.info()["channels"]["global"]["stored_bytes_per_image"]
    step = np.abs(fresh).max() / 127
    np.testing.assert_allclose(stored, fresh, atol=1e-6 if storage == "float32" else step / 2)
    assert stored_bytes == (192 * 4 if storage == "float32" else 4 + 192)
    assert storage == "float32" or not np.allclose(stored, fresh, atol=1e-6)


def test_auto_channel_searches_every_channel(tmp_path: Path, image_folder: Path) -> None:
    with open_collection(tmp_path / "c") as collection:
        collection.index([image_folder])
        assert collection.search(pattern(3), k=4, channel="auto") == collection.search(
            pattern(3), k=4, channel="global")


def test_the_pixel_cap_refuses_big_images_and_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, [1])
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(folder / "huge.png")
    with Collection(tmp_path / "c", max_pixels=50_000, configs={"global": THUMBNAIL}).open() as c:
        report = c.index([folder])
        assert report.added == 1
        ((path, reason),) = report.failures
        assert path.endswith("huge.png") and "90000" in reason.replace(",", "")


def test_a_file_broken_after_indexing_is_no_longer_found(
    tmp_path: Path, image_folder: Path
) -> None:
    with open_collection(tmp_path / "c") as collection:
        collection.index([image_folder])
        (image_folder / "img002.png").write_bytes(b"garbage now")
        report = collection.index([image_folder])
        assert [Path(p).name for p, _ in report.failures] == ["img002.png"]
        names = [Path(r.path).name for r in collection.search(pattern(2), k=20)]
        assert "img002.png" not in names and len(names) == 11


def test_a_blank_image_is_reported_and_search_keeps_working(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, [1, 2])
    Image.new("RGB", (50, 40), (128, 128, 128)).save(folder / "grey.png")
    with open_collection(tmp_path / "c") as collection:
        report = collection.index([folder])
        assert report.added == 2
        assert "blank image" in dict(report.failures)[str(folder / "grey.png")]
        assert Path(collection.search(pattern(1), k=1)[0].path).name == "img001.png"


def test_indexing_removes_only_what_it_saw_missing(tmp_path: Path) -> None:
    top = tmp_path / "photos"
    write_images(top, [1, 2])
    write_images(top / "sub", [3])
    with open_collection(tmp_path / "c") as collection:
        collection.index([top])
        # Not recursive: the sub-folder was not looked at, so it is kept.
        assert collection.index([top], recursive=False).removed == 0
        # A folder that vanished (an unmounted drive) does not empty the collection.
        shutil.move(top, tmp_path / "elsewhere")
        report = collection.index([top])
        assert report.removed == 0 and collection.info()["images"] == 3
        shutil.move(tmp_path / "elsewhere", top)
        (top / "img001.png").unlink()
        assert collection.index([top / "img001.png"]).removed == 1  # a named missing file goes
        assert collection.info()["images"] == 2


def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected"):
        Collection(tmp_path / "a", configs={"global": GlobalChannelConfig(
            extractor="thumbnail", index="hnsw:M=abc")}).open()
    with pytest.raises(ValidationError):
        GlobalChannelConfig(extractor="thumbnail", whiten=0)
    with pytest.raises(ValidationError, match="batch size"):
        Collection(tmp_path / "b", batch_size=0, configs={"global": THUMBNAIL}).open().add(
            {"x": pattern(1)})
    relative = GlobalChannelConfig(extractor="thumbnail", whiten_from="w.npz")
    assert Path(relative.whiten_from or "").is_absolute()


def test_a_catalog_without_its_manifest_is_not_reused_blindly(
    tmp_path: Path, image_folder: Path
) -> None:
    root = tmp_path / "c"
    with open_collection(root) as collection:
        collection.index([image_folder])
    (root / "manifest.json").unlink()
    with pytest.raises(CollectionError, match=r"manifest\.json is missing"):
        Collection(root, configs={"global": GlobalChannelConfig(extractor="mobilenetv2")}).open()


def test_a_damaged_or_foreign_cache_is_rebuilt(tmp_path: Path, image_folder: Path) -> None:
    root = tmp_path / "c"
    with open_collection(root) as collection:
        collection.index([image_folder])
    (root / "cache" / "global" / "CURRENT").write_bytes(b"\xff\xfe not ascii")
    with open_collection(root) as collection:
        assert Path(collection.search(pattern(5), k=1)[0].path).name == "img005.png"


def test_a_catalog_restored_from_backup_does_not_mix_up_images(
    tmp_path: Path, image_folder: Path
) -> None:
    root = tmp_path / "c"
    with open_collection(root) as collection:
        collection.index([image_folder])
    shutil.copy(root / "catalog.sqlite", tmp_path / "backup.sqlite")
    with open_collection(root) as collection:
        collection.remove([image_folder / "img000.png"])
        collection.add({"late": pattern(90)})
    # Restoring the backup rewinds the vector ids; the newer cache must not be trusted.
    for suffix in ("-wal", "-shm"):
        (root / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.sqlite", root / "catalog.sqlite")
    with open_collection(root) as collection:
        collection.add({"other": pattern(91)})
        assert collection.search(pattern(91), k=1)[0].path == "other"
        assert Path(collection.search(pattern(0), k=1)[0].path).name == "img000.png"


def test_bad_in_memory_items_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    with open_collection(tmp_path / "c") as collection:
        report = collection.add({"good": pattern(1), "wrong": np.zeros((4, 4, 7), np.uint8),
                                 "panorama": np.asarray(Image.fromarray(pattern(2)).resize(
                                     (20000, 3)))})
        assert report.added == 2 and [name for name, _ in report.failures] == ["wrong"]


def test_undecodable_file_names_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, [1])
    raw = bytes(folder) + b"/caf\xe9.png"
    with open(raw, "wb") as handle:
        Image.fromarray(pattern(2)).save(handle, format="PNG")
    with open_collection(tmp_path / "c") as collection:
        report = collection.index([folder])
        assert report.added == 1 and "not valid UTF-8" in report.failures[0][1]


def test_auto_index_falls_back_to_exact_search_without_faiss(
    tmp_path: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lookalike.index import HNSWIndex

    monkeypatch.setattr(HNSWIndex, "is_available", classmethod(lambda cls: False))
    config = GlobalChannelConfig(extractor="thumbnail", exact_below=5)
    with Collection(tmp_path / "c", configs={"global": config}).open() as collection:
        collection.index([image_folder])
        assert Path(collection.search(pattern(6), k=1)[0].path).name == "img006.png"
        assert collection.info()["channels"]["global"]["index"] == "flat"


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_a_bad_worker_count_is_refused_before_anything_is_made(tmp_path: Path,
                                                               workers: object) -> None:
    with pytest.raises(ValidationError, match="expected workers >= 1"):
        Collection(tmp_path / "c", workers=workers)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
