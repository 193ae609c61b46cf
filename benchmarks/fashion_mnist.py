"""Fashion-MNIST as a folder of labelled PNGs, for benchmarks that need labelled images.

    python benchmarks/fashion_mnist.py --out DIR --per-class 100 [--split test] [--size 112]

Fashion-MNIST (Xiao, Rasul & Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017; Zalando SE, MIT/Expat
licence) has 70,000 greyscale 28x28 product photos in 10 classes: 60,000 train, 10,000
test, 6,000 and 1,000 per class. Debian ships it as ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``).

The export takes a seeded random ``per_class`` images of each class from one split,
upscales each to ``size`` x ``size`` (bicubic) and writes, under ``out``:

* ``<class_slug>/<index>.png``: 8-bit greyscale, light product on a black background, as
  in the data set; ``index`` is the image's position in its split (5 digits);
* ``labels.tsv``: ``path<TAB>label`` with a header, paths relative to ``out``;
* ``sidecar.csv``: ``path,caption,tags,categories``, the class name as the one category
  (a sidecar that ``lookalike.annotations.sidecar`` reads);
* ``export.json``: the settings, written last; an export with the same settings and all
  its files is left as it is.

The idx files are read with NumPy only (gzip or plain).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                            "Shirt", "Sneaker", "Bag", "Ankle boot")
SPLITS = {"train": "train", "test": "t10k"}  # split name -> idx file prefix
MANIFEST = "export.json"
_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
                               0x0E: ">f8"}


def class_slug(name: str) -> str:
    """'T-shirt/top' -> 't-shirt-top', 'Ankle boot' -> 'ankle-boot'."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format: 2 zero bytes, a type code, the number of
    dimensions, each dimension as a big-endian uint32, then the data), gzip or plain."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: expected an idx file (magic 00 00 <type> <ndim>), got "
                         f"{raw[:4].hex(' ')}")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: expected {expected} bytes for shape {shape}, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def _idx_file(source: Path, name: str) -> Path:
    for candidate in (source / f"{name}.gz", source / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"expected {name}(.gz) in {source}; install it with "
                            f"'apt-get install dataset-fashion-mnist' or pass --source")


def load_split(split: str, source: Path = DEFAULT_SOURCE) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 28 x 28 uint8, labels N uint8) of the 'train' or 'test' split."""
    if split not in SPLITS:
        raise ValueError(f"expected a split among {sorted(SPLITS)}, got {split!r}")
    prefix = SPLITS[split]
    images = read_idx(_idx_file(source, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(source, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"expected N x 28 x 28 images and N labels in {source} ({split}), "
                         f"got {images.shape} and {labels.shape}")
    if labels.size and int(labels.max()) >= len(CLASSES):
        raise ValueError(f"expected labels 0-{len(CLASSES) - 1}, got {int(labels.max())}")
    return images, labels


def _complete(out: Path, settings: dict[str, object]) -> bool:
    manifest = out / MANIFEST
    if not manifest.is_file():
        return False
    written = json.loads(manifest.read_text())
    found = {key: written.get(key) for key in settings}
    if found != settings:
        raise ValueError(f"{out} already holds a Fashion-MNIST export with other settings: "
                         f"expected {settings}, got {found}; choose another folder or "
                         f"delete it")
    return all((out / name).is_file() for name in written["files"])


def export_fashion_mnist(out: Path, per_class: int, split: str = "test", size: int = 112,
                         seed: int = 0, source: Path = DEFAULT_SOURCE) -> Path:
    """Write ``per_class`` random images of each class (seeded), upscaled to ``size`` px,
    with ``labels.tsv`` and ``sidecar.csv``, into ``out``; return ``out``. Does nothing
    when ``out`` already holds a complete export with the same settings."""
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"expected at least 1 image per class, got {per_class!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"expected an image side of at least 1 pixel, got {size!r}")
    if split not in SPLITS:
        raise ValueError(f"expected a split among {sorted(SPLITS)}, got {split!r}")
    out = Path(out)
    settings: dict[str, object] = {"split": split, "per_class": per_class, "size": size,
                                   "seed": seed}
    if _complete(out, settings):
        return out

    images, labels = load_split(split, source)
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str]] = []
    for label, name in enumerate(CLASSES):
        members = np.flatnonzero(labels == label)
        if per_class > len(members):
            raise ValueError(f"expected at most {len(members)} images per class in the "
                             f"{split} split, got {per_class}")
        chosen = np.sort(rng.choice(members, size=per_class, replace=False))
        folder = out / class_slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        keep = {f"{index:05d}.png" for index in chosen}
        for stale in folder.glob("*.png"):  # left by an interrupted export
            if stale.name not in keep:
                stale.unlink()
        for index in chosen:
            relative = f"{class_slug(name)}/{index:05d}.png"
            picture = Image.fromarray(images[index])
            picture.resize((size, size), Image.Resampling.BICUBIC).save(out / relative)
            rows.append((relative, name))

    (out / "labels.tsv").write_text("path\tlabel\n" + "".join(f"{path}\t{name}\n"
                                                              for path, name in rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "caption", "tags", "categories"])
    writer.writerows([path, "", "", name] for path, name in rows)
    (out / "sidecar.csv").write_text(buffer.getvalue())
    manifest = {**settings, "source": str(source), "classes": list(CLASSES),
                "images": len(rows), "files": [path for path, _ in rows]
                + ["labels.tsv", "sidecar.csv"]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--per-class", type=int, required=True, help="images per class")
    parser.add_argument("--split", choices=sorted(SPLITS), default="test")
    parser.add_argument("--size", type=int, default=112, help="output side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder of the idx files (default: %(default)s)")
    args = parser.parse_args()
    try:
        out = export_fashion_mnist(args.out, args.per_class, args.split, args.size, args.seed,
                                   args.source)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    count = len(json.loads((out / MANIFEST).read_text())["files"]) - 2
    print(f"{count} images ({args.per_class} per class, {args.split} split, {args.size} px) "
          f"in {out}")


if __name__ == "__main__":
    main()
