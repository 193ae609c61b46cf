"""Benchmark data sets: which images form the database, which are queries, and the truth.

Modelled on ``faiss.contrib.datasets``: a data set is a database, a list of
queries and their ground truth. Two kinds exist:

* :class:`RetrievalDataset` — search by example (UKBench, Oxford Buildings, ORL
  leave-one-out identification, a user's own folder); scored with
  :mod:`lookalike.eval.metrics` (N-S score, mAP, Recall@K, top-1).
* :class:`VerificationDataset` — pairs of images, same or different identity
  (LFW); scored with :func:`lookalike.eval.metrics.verification_accuracy_kfold`.

Loaders only list paths and parse ground-truth files; they never decode an image.
Paths are built from the folder the caller passes (relative stays relative).
Every loader raises :class:`DatasetError` (a :class:`~lookalike.errors.LookalikeError`)
that names the missing or malformed file and says what was expected.

Loaders are registered by name in :data:`DATASETS`; see :func:`available_datasets`
and :func:`load_dataset`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from lookalike.errors import LookalikeError

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "ClusteringDataset",
    "DatasetError",
    "RetrievalDataset",
    "RetrievalQuery",
    "VerificationDataset",
    "VerificationPair",
    "available_datasets",
    "load_custom",
    "load_dataset",
    "load_lfw_pairs",
    "load_lfw_people",
    "load_orl",
    "load_oxford",
    "load_ukbench",
    "register_dataset",
]

#: File name endings (compared lower-case) that :func:`load_custom` treats as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
)

Box = tuple[float, float, float, float]
PathLike = str | os.PathLike[str]

_SHOW = 5  # how many missing files an error message lists


class DatasetError(LookalikeError):
    """A benchmark folder or ground-truth file is missing or not in the expected format."""


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class RetrievalQuery:
    """One query of a retrieval benchmark.

    Attributes:
        path: the query image.
        relevant: database images that count as correct answers.
        junk: database images to ignore when scoring (neither right nor wrong).
        box: region of interest ``(x0, y0, x1, y1)`` in the query image's pixels,
            or None for the whole image (Oxford queries are their box crop).
    """

    path: Path
    relevant: frozenset[Path]
    junk: frozenset[Path] = frozenset()
    box: Box | None = None


@dataclass(frozen=True)
class RetrievalDataset:
    """A database of images and queries against it, with their ground truth."""

    name: str
    database: tuple[Path, ...]
    queries: tuple[RetrievalQuery, ...]

    @property
    def ns_applicable(self) -> bool:
        """True when every query has exactly 4 relevant images, so the UKBench N-S score applies."""
        return bool(self.queries) and all(len(q.relevant) == 4 for q in self.queries)


@dataclass(frozen=True)
class VerificationPair:
    """Two images and whether they show the same identity; ``fold`` is 0-based."""

    a: Path
    b: Path
    same: bool
    fold: int


@dataclass(frozen=True)
class VerificationDataset:
    """Image pairs split into folds for k-fold threshold selection (LFW protocol)."""

    name: str
    pairs: tuple[VerificationPair, ...]
    n_folds: int

    @property
    def same(self) -> npt.NDArray[np.bool_]:
        """``same`` of every pair, in order, as a boolean array."""
        return np.fromiter((p.same for p in self.pairs), dtype=np.bool_, count=len(self.pairs))

    @property
    def folds(self) -> npt.NDArray[np.int64]:
        """``fold`` of every pair, in order, as an integer array."""
        return np.fromiter((p.fold for p in self.pairs), dtype=np.int64, count=len(self.pairs))

    @property
    def images(self) -> tuple[Path, ...]:
        """Every distinct image used by the pairs, sorted (embed each once)."""
        return tuple(sorted({p.a for p in self.pairs} | {p.b for p in self.pairs}))


# --------------------------------------------------------------------------- registry

DatasetLoader = Callable[..., "RetrievalDataset | VerificationDataset | ClusteringDataset"]
L = TypeVar("L", bound=DatasetLoader)

#: Registered loaders by name.
DATASETS: dict[str, DatasetLoader] = {}


def register_dataset(name: str) -> Callable[[L], L]:
    """Decorator registering a loader under ``name`` in :data:`DATASETS`."""

    def decorate(loader: L) -> L:
        if name in DATASETS and DATASETS[name] is not loader:
            raise LookalikeError(f"expected a new data set name, got {name!r}, already registered")
        DATASETS[name] = loader
        return loader

    return decorate


def available_datasets() -> list[str]:
    """Names of the registered data set loaders, sorted."""
    return sorted(DATASETS)


def load_dataset(
    name: str, *args: Any, **kwargs: Any
) -> RetrievalDataset | VerificationDataset | ClusteringDataset:
    """Call the loader registered as ``name`` with the given arguments."""
    if name not in DATASETS:
        raise DatasetError(
            f"expected one of the data sets {', '.join(available_datasets())}, got {name!r}"
        )
    return DATASETS[name](*args, **kwargs)


# --------------------------------------------------------------------------- helpers


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: expected {what}, but it {state}")


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: expected {what}, but it {state}")


def _check_present(paths: Iterable[Path], what: str, where: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:_SHOW])
        more = f" and {len(missing) - _SHOW} more" if len(missing) > _SHOW else ""
        raise DatasetError(
            f"{where}: expected every {what} to exist, but {len(missing)} are missing: "
            f"{shown}{more}"
        )


def _read_lines(path: Path, what: str) -> list[str]:
    _require_file(path, what)
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(
            f"{path}: expected {what} in UTF-8 text, could not read it: {error}"
        ) from error


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _list_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, skipping hidden files and folders."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder)
        found.extend(base / f for f in files if not f.startswith(".") and _is_image(f))
    return sorted(found)


def _natural_key(path: Path) -> tuple[int, int, str]:
    digits = re.search(r"\d+", path.stem)
    return (0, int(digits.group()), path.name) if digits else (1, 0, path.name)


# --------------------------------------------------------------------------- UKBench

_UKBENCH_NAME = re.compile(r"ukbench(\d+)\.jpe?g", re.IGNORECASE)


@register_dataset("ukbench")
def load_ukbench(data_dir: PathLike) -> RetrievalDataset:
    """UKBench (Nistér & Stewénius, CVPR 2006): every image queries the whole database.

    Two layouts are read:

    * ``data_dir/groups.tsv`` (header ``image<TAB>object_id``, then one row per
      image) with the images in ``data_dir/full/`` (or ``data_dir`` itself) — the
      ``ukbench56`` benchmark folder;
    * without ``groups.tsv``, the original distribution: files
      ``ukbenchNNNNN.jpg`` anywhere under ``data_dir``, object = NNNNN // 4.

    Each query's relevant set is its object's images, itself included (so the
    N-S score counts the query, as in the paper).
    """
    root = Path(data_dir)
    _require_dir(root, "a UKBench folder (groups.tsv and full/, or ukbenchNNNNN.jpg images)")
    groups_file = root / "groups.tsv"
    if groups_file.is_file():
        images, objects = _ukbench_from_groups(root, groups_file)
    else:
        images, objects = _ukbench_from_names(root)
    members: dict[int, list[Path]] = {}
    for image, obj in zip(images, objects, strict=True):
        members.setdefault(obj, []).append(image)
    groups = {obj: frozenset(paths) for obj, paths in members.items()}
    queries = tuple(
        RetrievalQuery(path=image, relevant=groups[obj])
        for image, obj in zip(images, objects, strict=True)
    )
    return RetrievalDataset(name="ukbench", database=tuple(images), queries=queries)


def _ukbench_from_groups(root: Path, groups_file: Path) -> tuple[list[Path], list[int]]:
    what = "a tab-separated file with the header 'image<TAB>object_id'"
    lines = _read_lines(groups_file, what)
    image_dir = root / "full" if (root / "full").is_dir() else root
    images: list[Path] = []
    objects: list[int] = []
    seen: set[str] = set()
    header_done = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if not header_done:
            if fields != ["image", "object_id"]:
                raise DatasetError(
                    f"{groups_file}:{number}: expected the header 'image<TAB>object_id', "
                    f"got {line!r}"
                )
            header_done = True
            continue
        if len(fields) != 2 or not fields[0] or not re.fullmatch(r"-?\d+", fields[1]):
            raise DatasetError(
                f"{groups_file}:{number}: expected 'image_name<TAB>integer object id', got {line!r}"
            )
        if fields[0] in seen:
            raise DatasetError(
                f"{groups_file}:{number}: expected each image once, got {fields[0]!r} again"
            )
        seen.add(fields[0])
        images.append(image_dir / fields[0])
        objects.append(int(fields[1]))
    if not images:
        raise DatasetError(f"{groups_file}: expected at least one image row, got none")
    _check_present(images, "image listed in groups.tsv", image_dir)
    return images, objects


def _ukbench_from_names(root: Path) -> tuple[list[Path], list[int]]:
    by_number: dict[int, Path] = {}
    for path in _list_images(root):
        match = _UKBENCH_NAME.fullmatch(path.name)
        if match is None:
            continue
        number = int(match.group(1))
        if number in by_number:
            raise DatasetError(
                f"{root}: expected each UKBench image once, got {by_number[number]} and {path}"
            )
        by_number[number] = path
    if not by_number:
        raise DatasetError(
            f"{root}: expected groups.tsv or images named ukbenchNNNNN.jpg, found neither"
        )
    numbers = sorted(by_number)
    return [by_number[n] for n in numbers], [n // 4 for n in numbers]


# --------------------------------------------------------------------------- Oxford


@register_dataset("oxford")
def load_oxford(
    data_dir: PathLike, *, crop: bool = True, gnd_file: str = "gnd_subset.json"
) -> RetrievalDataset:
    """Oxford Buildings (Philbin et al., CVPR 2007) in the ``oxford5k_subset`` layout.

    Reads ``data_dir/gnd_subset.json`` and the images ``data_dir/jpg/<name>.jpg``.
    The JSON holds ``imlist_subset`` (or ``imlist``): the database image names, and
    ``queries``: ``[{"query", "bbx_scaled", "ok", "junk"}, ...]``. The revisitop
    layout (``imlist``, ``qimlist``, ``gnd: [{"bbx", "ok", "junk"}]``) is read too.

    Each query's ``relevant`` is its ``ok`` list and ``junk`` its junk list, as given:
    in the official protocol the query image is itself in the database and
    usually in its own ok list. ``box`` is the query box (``bbx_scaled``, in the
    stored images' pixels) when ``crop`` is true, else None (whole image).
    """
    root = Path(data_dir)
    _require_dir(root, "an Oxford Buildings folder holding jpg/ and " + gnd_file)
    gnd_path = root / gnd_file
    image_dir = root / "jpg"
    _require_file(gnd_path, "the Oxford ground truth (JSON with imlist_subset and queries)")
    _require_dir(image_dir, "the folder of Oxford images <name>.jpg")
    try:
        gnd = json.loads(gnd_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"{gnd_path}: expected JSON ground truth, could not parse it: {error}"
        ) from error
    if not isinstance(gnd, dict):
        raise DatasetError(f"{gnd_path}: expected a JSON object, got {type(gnd).__name__}")

    imlist = gnd.get("imlist_subset", gnd.get("imlist"))
    names = _string_list(imlist, gnd_path, "imlist_subset")
    if not names:
        raise DatasetError(f"{gnd_path}: expected a non-empty imlist_subset, got none")

    def image_path(name: str) -> Path:
        return image_dir / (name if name.lower().endswith(".jpg") else name + ".jpg")

    database = tuple(image_path(n) for n in names)
    if len(set(database)) != len(database):
        raise DatasetError(f"{gnd_path}: expected each image once in imlist_subset")
    _check_present(database, "image of imlist_subset", image_dir)
    in_database = set(database)

    raw_queries = _oxford_raw_queries(gnd, gnd_path)
    queries: list[RetrievalQuery] = []
    for index, entry in enumerate(raw_queries):
        where = f"{gnd_path}: query {index}"
        name = entry.get("query")
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{where}: expected a 'query' image name, got {name!r}")
        query_path = image_path(name)
        _require_file(query_path, f"the image of query {name!r}")
        ok = {image_path(n) for n in _string_list(entry.get("ok"), gnd_path, f"{name}.ok")}
        junk = {image_path(n) for n in _string_list(entry.get("junk", []), gnd_path, "junk")}
        outside = sorted((ok | junk) - in_database)
        if outside:
            raise DatasetError(
                f"{where} ({name}): expected ok/junk images from the database, got "
                f"{len(outside)} outside it, e.g. {', '.join(p.name for p in outside[:_SHOW])}"
            )
        if not ok:
            raise DatasetError(f"{where} ({name}): expected at least one ok image, got none")
        if ok & junk:
            raise DatasetError(
                f"{where} ({name}): expected ok and junk to be disjoint, got "
                f"{len(ok & junk)} images in both"
            )
        box = _oxford_box(entry, where) if crop else None
        queries.append(
            RetrievalQuery(path=query_path, relevant=frozenset(ok), junk=frozenset(junk), box=box)
        )
    if not queries:
        raise DatasetError(f"{gnd_path}: expected at least one query, got none")
    return RetrievalDataset(name="oxford", database=database, queries=tuple(queries))


def _string_list(value: object, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{path}: expected {key} to be a list of image names, got {value!r:.80}")
    return list(value)


def _oxford_raw_queries(gnd: dict[str, Any], gnd_path: Path) -> list[dict[str, Any]]:
    if "queries" in gnd:
        raw = gnd["queries"]
        if not isinstance(raw, list) or not all(isinstance(q, dict) for q in raw):
            raise DatasetError(f"{gnd_path}: expected 'queries' to be a list of objects")
        return raw
    if "qimlist" in gnd and "gnd" in gnd:
        qnames, entries = gnd["qimlist"], gnd["gnd"]
        if (
            not isinstance(qnames, list)
            or not isinstance(entries, list)
            or len(qnames) != len(entries)
            or not all(isinstance(e, dict) for e in entries)
        ):
            raise DatasetError(
                f"{gnd_path}: expected 'qimlist' and 'gnd' to be lists of equal length"
            )
        return [{"query": q, **e} for q, e in zip(qnames, entries, strict=True)]
    raise DatasetError(
        f"{gnd_path}: expected a 'queries' list (or 'qimlist' and 'gnd'), got neither"
    )


def _oxford_box(entry: dict[str, Any], where: str) -> Box:
    value = entry.get("bbx_scaled", entry.get("bbx"))
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
    ):
        raise DatasetError(f"{where}: expected bbx_scaled [x0, y0, x1, y1], got {value!r}")
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (x1 > x0 and y1 > y0):
        raise DatasetError(f"{where}: expected a box with x0 < x1 and y0 < y1, got {value!r}")
    return (x0, y0, x1, y1)


# --------------------------------------------------------------------------- custom folder


@register_dataset("custom")
def load_custom(root: PathLike, truth_tsv: PathLike) -> RetrievalDataset:
    """A user's own folder of images with a ground-truth TSV.

    The database is every image under ``root`` (recursive, sorted; extensions in
    :data:`IMAGE_EXTENSIONS`, any case; hidden files and folders skipped).

    ``truth_tsv`` (absolute, or relative to ``root`` when it does not exist as
    given) holds lines ``query_path<TAB>relevant_path``, paths absolute or
    relative to ``root``. Blank lines and lines starting with ``#`` are ignored,
    and an optional first line ``query<TAB>relevant`` is skipped. Lines with the
    same query are grouped; queries keep the order of their first line.

    Every relevant path must be a database image. A query need not be in the
    database, but must exist. Rule decided by the project: when the query's own
    image is in the database and is not listed as relevant to itself, it is
    treated as junk (ignored in scoring), so finding itself first neither helps
    nor hurts; list it as relevant to itself to have it count.
    """
    base = Path(root)
    _require_dir(base, "the folder of images to search")
    tsv = Path(truth_tsv)
    if not tsv.is_file() and not tsv.is_absolute() and (base / tsv).is_file():
        tsv = base / tsv
    lines = _read_lines(tsv, "a ground-truth TSV of 'query_path<TAB>relevant_path' lines")

    database = tuple(_list_images(base))
    if not database:
        exts = " ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DatasetError(f"{base}: expected image files ({exts}) under it, found none")
    canonical = {p.resolve(): p for p in database}

    def locate(text: str) -> tuple[Path, Path]:
        path = Path(text)
        if not path.is_absolute():
            path = base / path
        resolved = path.resolve()
        return canonical.get(resolved, path), resolved

    order: list[Path] = []
    relevant: dict[Path, set[Path]] = {}
    seen_content = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if not seen_content:
            seen_content = True
            if [f.lower() for f in fields] == ["query", "relevant"]:
                continue
        if len(fields) != 2 or not all(fields):
            raise DatasetError(
                f"{tsv}:{number}: expected 'query_path<TAB>relevant_path', got {line!r}"
            )
        query, query_key = locate(fields[0])
        if query_key not in canonical and not query.is_file():
            raise DatasetError(f"{tsv}:{number}: expected the query image {query} to exist")
        target, target_key = locate(fields[1])
        if target_key not in canonical:
            raise DatasetError(
                f"{tsv}:{number}: expected the relevant image {fields[1]!r} to be one of the "
                f"{len(database)} images under {base}, it is not"
            )
        if query not in relevant:
            order.append(query)
            relevant[query] = set()
        relevant[query].add(target)
    if not order:
        raise DatasetError(f"{tsv}: expected at least one 'query<TAB>relevant' line, got none")

    in_database = set(database)
    queries = tuple(
        RetrievalQuery(
            path=q,
            relevant=frozenset(relevant[q]),
            junk=frozenset({q}) if q in in_database and q not in relevant[q] else frozenset(),
        )
        for q in order
    )
    return RetrievalDataset(name=f"custom:{base.name}", database=database, queries=queries)


# --------------------------------------------------------------------------- ORL faces

_ORL_PERSON = re.compile(r"s(\d+)")


@register_dataset("orl")
def load_orl(data_dir: PathLike) -> RetrievalDataset:
    """ORL / AT&T faces (``orl_faces/sN/M.pgm``) as leave-one-out identification.

    ``data_dir`` may be the folder holding ``orl_faces/`` or ``orl_faces/`` itself.
    Every image is a query against the whole database; relevant = the other
    images of the same person, junk = the query itself (so rank 1 is the nearest
    *other* image). A person with a single image has no query (its image stays
    in the database as a distractor).
    """
    root = Path(data_dir)
    _require_dir(root, "the ORL faces folder (orl_faces/sN/M.pgm)")
    faces = root / "orl_faces" if (root / "orl_faces").is_dir() else root
    people = sorted(
        (
            (int(m.group(1)), d)
            for d in faces.iterdir()
            if d.is_dir() and (m := _ORL_PERSON.fullmatch(d.name)) is not None
        ),
    )
    if not people:
        raise DatasetError(
            f"{faces}: expected person folders s1..s40 holding M.pgm images "
            "(or a folder orl_faces/ holding them), found none"
        )
    database: list[Path] = []
    by_person: list[list[Path]] = []
    for _, folder in people:
        images = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".pgm"),
            key=_natural_key,
        )
        if not images:
            raise DatasetError(f"{folder}: expected M.pgm face images, found none")
        by_person.append(images)
        database.extend(images)
    queries = tuple(
        RetrievalQuery(path=image, relevant=frozenset(images) - {image}, junk=frozenset({image}))
        for images in by_person
        if len(images) > 1
        for image in images
    )
    if not queries:
        raise DatasetError(f"{faces}: expected a person with at least two images, found none")
    return RetrievalDataset(name="orl", database=tuple(database), queries=queries)


# --------------------------------------------------------------------------- LFW pairs

_VIEW1_FOLDS = 10


@register_dataset("lfw")
def load_lfw_pairs(data_dir: PathLike, pairs_file: PathLike) -> VerificationDataset:
    """LFW pairs (Huang et al. 2007) in the official pairs format.

    Images are ``data_dir/lfw/<Name>/<Name>_<NNNN>.jpg`` (``data_dir`` may also
    be the folder of names itself). ``pairs_file`` is absolute or relative to
    ``data_dir``. Its first line is either:

    * ``N`` — View 1 (``pairsDevTrain.txt``, ``pairsDevTest.txt``): N same-person
      lines ``name i j``, then N different-person lines ``name1 i name2 j``.
      For k-fold threshold selection the pairs get 10 folds: the same block and
      the different block are each cut into 10 contiguous parts (sizes differing
      by at most one), and fold f = part f of each (fewer folds when N < 10);
    * ``K N`` — View 2 (``pairs.txt``): K folds, each N same then N different
      lines; fold = block index.
    """
    root = Path(data_dir)
    _require_dir(root, "the LFW folder (lfw/<Name>/<Name>_<NNNN>.jpg)")
    image_dir = root / "lfw" if (root / "lfw").is_dir() else root
    pairs_path = Path(pairs_file)
    if not pairs_path.is_absolute():
        pairs_path = root / pairs_path
    lines = _read_lines(pairs_path, "an LFW pairs file (first line 'N' or 'K N')")
    rows = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise DatasetError(f"{pairs_path}: expected a header line 'N' or 'K N', got an empty file")
    header_line, header = rows[0]
    if not (1 <= len(header) <= 2 and all(re.fullmatch(r"\d+", h) for h in header)) or any(
        int(h) < 1 for h in header
    ):
        raise DatasetError(
            f"{pairs_path}:{header_line}: expected a header 'N' (View 1) or 'K N' (View 2) "
            f"of positive integers, got {' '.join(header)!r}"
        )
    body = rows[1:]
    if len(header) == 1:
        per_block, n_blocks = int(header[0]), 1
    else:
        n_blocks, per_block = int(header[0]), int(header[1])
    expected = 2 * per_block * n_blocks
    if len(body) != expected:
        raise DatasetError(
            f"{pairs_path}: expected {expected} pair lines after the header "
            f"{' '.join(header)!r}, got {len(body)}"
        )

    def image(name: str, number: str, line: int) -> Path:
        if not re.fullmatch(r"\d+", number) or int(number) < 1:
            raise DatasetError(
                f"{pairs_path}:{line}: expected a positive image number, got {number!r}"
            )
        return image_dir / name / f"{name}_{int(number):04d}.jpg"

    if n_blocks == 1:
        n_folds = min(_VIEW1_FOLDS, per_block)
        part_of = np.empty(per_block, dtype=np.int64)
        for part, chunk in enumerate(np.array_split(np.arange(per_block), n_folds)):
            part_of[chunk] = part
    else:
        n_folds = n_blocks

    pairs: list[VerificationPair] = []
    for index, (number, tokens) in enumerate(body):
        block, offset = divmod(index, 2 * per_block)
        same = offset < per_block
        position = offset if same else offset - per_block
        fold = block if n_blocks > 1 else int(part_of[position])
        if same:
            if len(tokens) != 3:
                raise DatasetError(
                    f"{pairs_path}:{number}: expected a same-person line 'name i j', "
                    f"got {lines[number - 1]!r}"
                )
            name, i, j = tokens
            a, b = image(name, i, number), image(name, j, number)
        else:
            if len(tokens) != 4:
                raise DatasetError(
                    f"{pairs_path}:{number}: expected a different-person line "
                    f"'name1 i name2 j', got {lines[number - 1]!r}"
                )
            name1, i, name2, j = tokens
            a, b = image(name1, i, number), image(name2, j, number)
        pairs.append(VerificationPair(a=a, b=b, same=same, fold=fold))

    _check_present(
        sorted({p.a for p in pairs} | {p.b for p in pairs}), "image named in the pairs", image_dir
    )
    return VerificationDataset(name=f"lfw:{pairs_path.stem}", pairs=tuple(pairs), n_folds=n_folds)


@dataclass(frozen=True)
class ClusteringDataset:
    """Images with an identity each, to be grouped without labels (people clustering)."""

    name: str
    images: tuple[Path, ...]
    labels: tuple[int, ...]


@register_dataset("lfw-people")
def load_lfw_people(data_dir: PathLike, min_images: int = 2,
                    max_people: int | None = None) -> ClusteringDataset:
    """LFW identities with at least ``min_images`` images, for people clustering.

    ``max_people`` keeps the first that many identities in name order (a smaller,
    repeatable subset); None keeps all (1,680 people, 9,164 images in LFW).
    """
    root = Path(data_dir)
    _require_dir(root, "the LFW folder (lfw/<Name>/<Name>_<NNNN>.jpg)")
    image_dir = root / "lfw" if (root / "lfw").is_dir() else root
    if not (isinstance(min_images, int) and min_images >= 1):
        raise DatasetError(f"expected min_images >= 1, got {min_images!r}")
    people = []
    for folder in sorted(p for p in image_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if _is_image(p.name))
        if len(files) >= min_images:
            people.append(files)
    if max_people is not None:
        if not (isinstance(max_people, int) and max_people >= 1):
            raise DatasetError(f"expected max_people >= 1, got {max_people!r}")
        people = people[:max_people]
    if not people:
        raise DatasetError(f"{image_dir}: expected identity folders with at least {min_images} "
                           "images, found none")
    images = tuple(path for files in people for path in files)
    labels = tuple(label for label, files in enumerate(people) for _ in files)
    return ClusteringDataset(name=f"lfw-people-{min_images}-{len(people)}", images=images,
                             labels=labels)
