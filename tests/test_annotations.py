"""Annotations read from image files (EXIF, IPTC, XMP) and from sidecar files."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from conftest import pattern
from PIL import Image

from lookalike.annotations import Annotation, load_sidecar, read_embedded_text
from lookalike.annotations.sidecar import SidecarError
from lookalike.errors import ImageError
from lookalike.paths import catalog_key

XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description>
 <dc:subject><rdf:Bag><rdf:li>cat</rdf:li><rdf:li>sofa</rdf:li></rdf:Bag></dc:subject>
 <dc:description><rdf:Alt><rdf:li xml:lang="x-default">A tabby cat on a sofa</rdf:li></rdf:Alt>
 </dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"""


def iptc_app13(keywords: list[str], caption: str) -> bytes:
    """An APP13 segment holding IPTC keywords and a caption (Pillow cannot write IPTC)."""
    def dataset(record: int, tag: int, value: bytes) -> bytes:
        return struct.pack(">BBBH", 0x1C, record, tag, len(value)) + value

    iim = (dataset(1, 90, b"\x1b%G") + b"".join(dataset(2, 25, k.encode()) for k in keywords)
           + dataset(2, 120, caption.encode()))
    block = (b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iim)) + iim
             + b"\0" * (len(iim) % 2))
    body = b"Photoshop 3.0\0" + block
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def jpeg_with_text(path: Path, *, xmp: bytes | None = None, iptc: bytes | None = None,
                   description: str | None = None, xp_keywords: str | None = None) -> Path:
    exif = Image.Exif()
    if description:
        exif[0x010E] = description
    if xp_keywords:
        exif[0x9C9E] = (xp_keywords + "\0").encode("utf-16-le")
    out = io.BytesIO()
    Image.fromarray(pattern(5, (64, 48))).save(out, format="JPEG", exif=exif.tobytes(),
                                               **({"xmp": xmp} if xmp else {}))
    data = out.getvalue()
    if iptc:
        data = data[:2] + iptc + data[2:]  # right after SOI
    path.write_bytes(data)
    return path


def test_all_three_sources_are_read_and_merged(tmp_path: Path) -> None:
    path = jpeg_with_text(tmp_path / "a.jpg", xmp=XMP,
                          iptc=iptc_app13(["Cat", "pet"], "iptc caption"),
                          description="exif description", xp_keywords="kitty;pet")
    text = read_embedded_text(path)
    # XMP first, then IPTC, then EXIF; repeats dropped whatever their case.
    assert text.keywords == ("cat", "sofa", "pet", "kitty")
    assert text.description == "A tabby cat on a sofa"


def test_each_source_alone(tmp_path: Path) -> None:
    iptc_only = read_embedded_text(jpeg_with_text(tmp_path / "i.jpg",
                                                  iptc=iptc_app13(["lone"], "caption here")))
    assert iptc_only.keywords == ("lone",) and iptc_only.description == "caption here"
    exif_only = read_embedded_text(jpeg_with_text(tmp_path / "e.jpg", description="  two  words",
                                                  xp_keywords="a; b"))
    assert exif_only.keywords == ("a", "b") and exif_only.description == "two words"
    plain = tmp_path / "p.png"
    Image.fromarray(pattern(1)).save(plain)
    assert read_embedded_text(plain).as_dict() == {"keywords": [], "description": None,
                                                   "taken": None}


def test_damaged_metadata_is_skipped_and_bad_files_named(tmp_path: Path) -> None:
    broken = jpeg_with_text(tmp_path / "b.jpg", xmp=b"<x:xmpmeta><unclosed>",
                            description="still here")
    assert read_embedded_text(broken).description == "still here"
    (tmp_path / "not.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"not\.jpg"):
        read_embedded_text(tmp_path / "not.jpg")
    with pytest.raises(ImageError, match="file not found"):
        read_embedded_text(tmp_path / "missing.jpg")


def test_sidecar_csv_and_json(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text(
        "path,caption,tags,category,photographer\n"
        "a.jpg,A red  dress,red;dress|summer,fashion,Ann\n"
        "sub/b.jpg,,,,\n")
    found = load_sidecar(tmp_path / "notes.csv")
    assert found[catalog_key(tmp_path / "a.jpg")] == Annotation(
        caption="A red dress", tags=("red", "dress", "summer"), categories=("fashion",),
        extra={"photographer": "Ann"})
    assert found[catalog_key(tmp_path / "sub" / "b.jpg")] == Annotation()
    (tmp_path / "notes.json").write_text(json.dumps(
        {"a.jpg": {"caption": "x", "tags": ["t1", "t2", "t1"]}}))
    assert load_sidecar(tmp_path / "notes.json")[catalog_key(tmp_path / "a.jpg")].tags == (
        "t1", "t2")


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("n.csv", "caption,tags\nx,y\n", "'path' column"),
    ("n.csv", "path,caption\na.jpg,x\na.jpg,y\n", "annotated twice"),
    ("n.json", "[1, 2]", "entry 1: expected an object"),
    ("n.json", "{not json", "not valid JSON"),
    ("n.json", '[{"path": "a.jpg", "tags": 3}]', "'tags' as text"),
    ("n.json", '[{"caption": "no path"}]', "non-empty 'path'"),
    ("n.txt", "path\na.jpg\n", "expected a .csv"),
])
def test_bad_sidecars_name_the_file_and_place(tmp_path: Path, name: str, content: str,
                                              reason: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(SidecarError, match=reason) as caught:
        load_sidecar(tmp_path / name)
    assert name in str(caught.value)


def test_capture_time_and_bytes_input(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 12:30:05"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
    found = read_embedded_text(buffer.getvalue(), name="upload.jpg")
    assert found.taken == "2024-05-01T12:30:05"
    unset = Image.Exif()
    unset.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=unset)
    assert read_embedded_text(buffer.getvalue()).taken is None
    with pytest.raises(ImageError, match=r"upload\.jpg"):
        read_embedded_text(b"not an image", name="upload.jpg")


def test_sidecar_several_categories(tmp_path: Path) -> None:
    sidecar = tmp_path / "labels.csv"
    sidecar.write_text("path,categories\na.jpg,Dress;Summer\n")
    found = load_sidecar(sidecar)[str(tmp_path / "a.jpg")]
    assert found.categories == ("Dress", "Summer")
    assert found.category == "Dress"


def test_hostile_metadata_is_bounded() -> None:
    items = "".join(f"<rdf:li>w{i}</rdf:li>" for i in range(3000))  # fits one JPEG marker
    packet = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
              'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
              'xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description>'
              f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
              "</rdf:Description></rdf:RDF></x:xmpmeta>")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:13:45 99:00:00"  # a broken clock
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", xmp=packet.encode(), exif=exif)
    found = read_embedded_text(buffer.getvalue())
    assert len(found.keywords) == 200 and found.keywords[0] == "w0"
    assert found.taken is None
