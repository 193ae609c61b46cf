"""What adapters take from a Collection: single images, faces, files, uploads and the log."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import THUMBNAIL, pattern, png_bytes
from PIL import Image

from lookalike import Collection
from lookalike.errors import ImageError, NotFoundError, ValidationError


@pytest.fixture
def collection(tmp_path: Path, image_folder: Path) -> Collection:
    opened = Collection(tmp_path / "c.lookalike", configs={"global": THUMBNAIL}).open()
    opened.index([image_folder])
    return opened


def test_images_by_id_and_path(collection: Collection, image_folder: Path) -> None:
    first = collection.image_by_path(image_folder / "img000.png")
    assert collection.image(first.id) == first
    assert collection.image_file(first.id) == image_folder / "img000.png"
    assert collection.count() == 12 and collection.channel_names == ["global"]
    for bad in (0, -1, 10_000, 2**63, 2**70):
        with pytest.raises(NotFoundError, match="expected the id of an indexed image"):
            collection.image(bad)
    with pytest.raises(ValidationError, match="as an integer"):
        collection.image("1")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="not in"):
        collection.image_by_path(image_folder / "nope.png")
    (image_folder / "img000.png").unlink()
    with pytest.raises(NotFoundError, match="its file is gone"):
        collection.image_file(first.id)
    with pytest.raises(NotFoundError, match="cannot be shown"):
        collection.thumbnail(first.id)


def test_thumbnails_are_cached_in_the_collection(collection: Collection) -> None:
    image_id = collection.images()[0].id
    data = collection.thumbnail(image_id, size=100)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 96  # never enlarged
    cached = list((collection.root / "cache" / "thumbnails").glob(f"{image_id}-128-*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == data


def test_faces_need_a_faces_channel(collection: Collection) -> None:
    image_id = collection.images()[0].id
    assert collection.faces_of(image_id) == []
    with pytest.raises(NotFoundError, match="'faces' channel"):
        collection.face(1)


def test_uploads_are_kept_by_content_and_deleted_with_their_image(
        collection: Collection, image_folder: Path) -> None:
    data = png_bytes(pattern(99))
    record, report = collection.add_upload(data, "holiday.png")
    assert report.added == 1 and Path(record.path).parent == collection.root / "uploads"
    again, _ = collection.add_upload(data, "copy.png")
    assert again.id == record.id and len(list((collection.root / "uploads").iterdir())) == 1
    collection.thumbnail(record.id)
    with pytest.raises(ImageError, match=r"broken\.png"):
        collection.add_upload(b"not an image", "broken.png")
    assert len(list((collection.root / "uploads").iterdir())) == 1
    assert collection.delete_image(record.id) == 1
    assert not Path(record.path).exists()
    assert not list((collection.root / "cache" / "thumbnails").glob(f"{record.id}-*"))
    photo = collection.image_by_path(image_folder / "img001.png")
    assert collection.delete_image(photo.id) == 1
    assert (image_folder / "img001.png").exists()  # a user's own photo is never deleted


def test_the_search_and_click_log(collection: Collection, image_folder: Path) -> None:
    found, rankings = collection.search_with_rankings(image_folder / "img003.png", k=3)
    query_id = collection.feedback.log_search(rankings, [r.image_id for r in found])
    assert collection.feedback.log_click(query_id, found[1].image_id) == 2
    assert collection.feedback.counts() == {"searches": 1, "clicks": 1, "clicked_searches": 1}
    (judged,) = collection.feedback.judged()
    assert judged.relevant == {found[1].image_id}
    with pytest.raises(NotFoundError):
        collection.feedback.log_click("nope", found[0].image_id)


def test_a_query_is_refused_the_same_whatever_the_filter_lets_through(
    collection: Collection,
) -> None:
    """A filter that keeps nothing answers 'no results' only to a query that could be
    served: a text without a text channel, an unknown channel or a ranker that was never
    trained is refused as it is without the filter."""
    from lookalike.collection import SearchFilter
    from lookalike.errors import CollectionError

    nothing = SearchFilter(categories=("no such category",))
    query = pattern(1)
    assert collection.search(query, k=3, filters=nothing) == []
    for unfiltered in (None, nothing):
        with pytest.raises(ValidationError, match="'text' channel"):
            collection.search(query, text="cat", k=3, filters=unfiltered)
        with pytest.raises(ValidationError, match="channel"):
            collection.search(query, k=3, channel="nope", filters=unfiltered)
        with pytest.raises(CollectionError, match="no learned ranker"):
            collection.search(query, k=3, fusion="learned", filters=unfiltered)
