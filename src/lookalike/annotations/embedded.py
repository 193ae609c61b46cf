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

import datetime as dt
import io
import os
import re
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
_MAX_KEYWORDS = 200  # a hostile file can hold tens of thousands
_EXIF_IFD = 0x8769
_EXIF_TAKEN = 0x9003  # DateTimeOriginal
_EXIF_DATETIME = 0x0132
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class EmbeddedText:
    keywords: tuple[str, ...] = ()
    description: str | None = None
    taken: str | None = None  # EXIF capture time, ISO 8601 without a zone ("2024-05-01T12:30:00")

    def as_dict(self) -> dict[str, Any]:
        return {"keywords": list(self.keywords), "description": self.description,
                "taken": self.taken}

    @property
    def empty(self) -> bool:
        return not self.keywords and self.description is None and self.taken is None


def read_embedded_text(source: str | os.PathLike[str] | bytes, *,
                       name: str | None = None) -> EmbeddedText:
    """The keywords, description and capture time in an image file (a path, or its bytes
    with ``name`` for errors).

    Raises :class:`ImageError` (naming the file) when it cannot be opened as an image.
    """
    if not isinstance(source, str | os.PathLike | bytes):
        raise ValidationError(f"expected a path or bytes, got {type(source).__name__}")
    label = name or ("<bytes>" if isinstance(source, bytes) else os.fspath(source))
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(opened) as image:
            found = [_xmp(image), _iptc(image), _exif(image)]
            taken = _taken(image)
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
    return EmbeddedText(keywords=tuple(keywords[:_MAX_KEYWORDS]), description=description,
                        taken=taken)


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
    except Exception:  # Pillow's IPTC parser raises struct.error, IndexError... on damage
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
        try:
            data = bytes(raw)
        except (ValueError, TypeError):  # stored as SHORTs above 255: not UTF-16 bytes
            data = b""
        text = data.decode("utf-16-le", "replace").rstrip("\0")
        words = [w for w in (_clean(part) for part in text.split(";")) if w]
    description = exif.get(_EXIF_DESCRIPTION)
    return words, _clean(description) if isinstance(description, str | bytes) else None


def _taken(image: ImageFile.ImageFile) -> str | None:
    """When the photo was taken, from EXIF DateTimeOriginal (else DateTime), as ISO 8601."""
    try:
        exif = image.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_EXIF_TAKEN) or exif.get(_EXIF_DATETIME)
    except (SyntaxError, ValueError, OSError, KeyError):
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    match = _EXIF_DATE.match(raw.strip()) if isinstance(raw, str) else None
    if match is None or match.group(1) == "0000":
        return None  # cameras write "0000:00:00 00:00:00" when the clock was never set
    try:  # month 13 or hour 99 is a broken clock, not a date
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        taken = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return taken.isoformat()
