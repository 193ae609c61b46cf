"""Keywords and descriptions embedded in image files: EXIF, IPTC and XMP, with Pillow alone.

Photo managers write the same facts in three places; all three are read and merged:

* XMP ``dc:subject`` (keywords) and ``dc:description``, parsed from the raw packet with the
  standard library (Pillow's own ``getxmp`` needs defusedxml);
* IPTC keywords (2:25) and caption (2:120);
* EXIF ``ImageDescription`` (0x010E) and Windows ``XPKeywords`` (0x9C9E, UTF-16, ``;``-separated).

The description is taken from the first of XMP, IPTC and EXIF that has one; keywords from
all three, in that order, without repeats (case-insensitive). Damaged metadata is skipped,
never fatal: a photo with a broken XMP packet still has its pixels and its other text.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFile, IptcImagePlugin, UnidentifiedImageError

from lookalike.errors import ImageError, ValidationError

_NS = {"dc": "http://purl.org/dc/elements/1.1/",
       "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
_EXIF_DESCRIPTION = 0x010E
_EXIF_XP_KEYWORDS = 0x9C9E
_IPTC_KEYWORDS = (2, 25)
_IPTC_CAPTION = (2, 120)
_MAX_TEXT = 10_000  # characters kept from any one field


@dataclass(frozen=True)
class EmbeddedText:
    keywords: tuple[str, ...] = ()
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"keywords": list(self.keywords), "description": self.description}


def read_embedded_text(path: str | os.PathLike[str]) -> EmbeddedText:
    """The keywords and description in the image file at ``path``.

    Raises :class:`ImageError` (naming the file) when it cannot be opened as an image.
    """
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"expected a path, got {type(path).__name__}")
    label = os.fspath(path)
    try:
        with Image.open(path) as image:
            found = [_xmp(image), _iptc(image), _exif(image)]
    except FileNotFoundError as error:
        raise ImageError(str(label), "file not found") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(str(label), f"not a readable image ({error})") from error
    keywords: list[str] = []
    seen: set[str] = set()
    for words, _ in found:
        for word in words:
            if word.casefold() not in seen:
                seen.add(word.casefold())
                keywords.append(word)
    description = next((text for _, text in found if text), None)
    return EmbeddedText(keywords=tuple(keywords), description=description)


def _clean(text: str | bytes | None) -> str | None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text is None:
        return None
    text = " ".join(text.replace("\0", " ").split())[:_MAX_TEXT]
    return text or None


def _xmp(image: ImageFile.ImageFile) -> tuple[list[str], str | None]:
    raw = image.info.get("xmp")
    if not raw:
        return [], None
    try:
        root = ET.fromstring(raw.strip(b"\0 \n\r\t") if isinstance(raw, bytes) else raw)
    except ET.ParseError:
        return [], None  # a damaged packet: the other sources still count
    subjects = [_clean(li.text) for li in root.iterfind(".//dc:subject//rdf:li", _NS)]
    description = next((_clean(li.text) for li in root.iterfind(".//dc:description//rdf:li", _NS)
                        if _clean(li.text)), None)
    return [s for s in subjects if s], description


def _iptc(image: ImageFile.ImageFile) -> tuple[list[str], str | None]:
    try:
        info = IptcImagePlugin.getiptcinfo(image) or {}
    except (SyntaxError, ValueError, OSError, IndexError):
        return [], None
    found = info.get(_IPTC_KEYWORDS) or []
    words = found if isinstance(found, list) else [found]  # one keyword comes as bytes
    caption = info.get(_IPTC_CAPTION)
    return ([w for w in (_clean(word) for word in words) if w],
            _clean(caption) if isinstance(caption, bytes) else None)


def _exif(image: ImageFile.ImageFile) -> tuple[list[str], str | None]:
    try:
        exif = image.getexif()
    except (SyntaxError, ValueError, OSError):
        return [], None
    words: list[str] = []
    raw = exif.get(_EXIF_XP_KEYWORDS)
    if isinstance(raw, bytes | tuple | list):
        data = bytes(raw)
        text = data.decode("utf-16-le", "replace").rstrip("\0")
        words = [w for w in (_clean(part) for part in text.split(";")) if w]
    description = exif.get(_EXIF_DESCRIPTION)
    return words, _clean(description) if isinstance(description, str | bytes) else None
