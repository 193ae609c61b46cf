"""The collection's own picture files: uploaded images and the thumbnail cache.

Both live inside the collection folder (``uploads/`` and ``cache/thumbnails/``), so the
collection owns its whole layout on disk and an adapter (the HTTP server) never builds a
path into it. Uploads are stored by content hash under the suffix of the format their
bytes are in, never under a name a client chose. Thumbnails and face crops are JPEGs,
made on first request and cached by image id, size and content hash, so a changed photo
never shows an old thumbnail.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from lookalike.errors import ImageError, NotFoundError
from lookalike.images import load_image
from lookalike.paths import atomic_write_bytes

THUMBNAIL_SIZES = (128, 256, 512, 1024)  # sizes are rounded up to these, to bound the cache
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
             "TIFF": ".tif"}
Box = tuple[float, float, float, float]


class Media:
    """Uploads and thumbnails of the collection in ``root``."""

    def __init__(self, root: Path, max_pixels: int) -> None:
        self.root = root
        self.max_pixels = max_pixels

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def thumbnails(self) -> Path:
        return self.root / "cache" / "thumbnails"

    # -- uploads ------------------------------------------------------------------------------

    def store_upload(self, data: bytes, name: str) -> Path:
        """Keep an uploaded image's bytes in ``uploads/``; the same bytes share one file.

        Decoded first, so that a bad upload is refused (an :class:`ImageError` naming it)
        before anything is written.
        """
        load_image(data, max_pixels=self.max_pixels, name=name)
        path = self.uploads / f"{hashlib.sha256(data).hexdigest()[:32]}{_suffix(data)}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
        return path

    def is_upload(self, path: str) -> bool:
        """Whether ``path`` is the collection's own copy of an upload (never a user's photo)."""
        return Path(path).resolve().parent == self.uploads.resolve()

    def forget(self, image_id: int, path: str) -> None:
        """Drop an image's thumbnails, and its file when it is the collection's own upload."""
        if self.is_upload(path) and Path(path).is_file():
            Path(path).unlink()
        for cached in self.thumbnails.glob(f"{image_id}-*.jpg"):
            cached.unlink(missing_ok=True)

    # -- thumbnails ---------------------------------------------------------------------------

    def thumbnail(self, image_id: int, path: str, sha256: str | None, size: int) -> bytes:
        """A JPEG of the image whose longer side is ``size`` rounded up to a cached size."""
        size = thumbnail_size(size)
        cached = self.thumbnails / f"{image_id}-{size}-{(sha256 or '')[:16]}.jpg"
        return self._cached(cached, lambda: _shrunk(self._pixels(path, size), size))

    def face_crop(self, face_id: int, path: str, box: Box, size: int) -> bytes:
        """A JPEG of a face with a margin around its box."""
        size = thumbnail_size(size)
        cached = self.thumbnails / f"face-{face_id}-{size}.jpg"
        return self._cached(cached, lambda: _shrunk(_around(self._pixels(path, None), box),
                                                     size))

    def _pixels(self, path: str, min_side: int | None) -> Image.Image:
        try:
            return Image.fromarray(load_image(path, max_pixels=self.max_pixels,
                                              min_side=min_side))
        except ImageError as error:
            raise NotFoundError(f"{path}: the image cannot be shown ({error.reason})") from error

    @staticmethod
    def _cached(path: Path, make: Callable[[], bytes]) -> bytes:
        if not path.is_file():
            atomic_write_bytes(path, make())
        return path.read_bytes()


def folder_bytes(folder: Path) -> int:
    """What everything under ``folder`` takes on disk."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def thumbnail_size(size: int) -> int:
    """``size`` rounded up to one of :data:`THUMBNAIL_SIZES` (the largest at most)."""
    return next((step for step in THUMBNAIL_SIZES if step >= size), THUMBNAIL_SIZES[-1])


def _suffix(data: bytes) -> str:
    """The file suffix of the format the bytes are in (never the name the client gave)."""
    with Image.open(io.BytesIO(data)) as img:
        return _SUFFIXES.get(img.format or "", ".img")


def _around(picture: Image.Image, box: Box) -> Image.Image:
    x0, y0, x1, y1 = box
    margin = 0.3 * max(x1 - x0, y1 - y0)
    width, height = picture.size
    return picture.crop((max(0, int(x0 - margin)), max(0, int(y0 - margin)),
                         min(width, int(x1 + margin)), min(height, int(y1 + margin))))


def _shrunk(picture: Image.Image, size: int) -> bytes:
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()
