"""Face benchmarks: ORL / AT&T (Samaria & Harter, 1994) as leave-one-out identification,
and Labeled Faces in the Wild (Huang et al., 2007) as verification pairs or as people to
cluster."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.eval.datasets._files import (
    check_present,
    is_image,
    natural_key,
    read_lines,
    require_dir,
)
from lookalike.eval.datasets._registry import register_dataset
from lookalike.eval.datasets._types import (
    ClusteringDataset,
    DatasetError,
    PathLike,
    RetrievalDataset,
    RetrievalQuery,
    VerificationDataset,
    VerificationPair,
)

_ORL_PERSON = re.compile(r"s(\d+)")
_VIEW1_FOLDS = 10
_LFW_FOLDER = "the LFW folder (lfw/<Name>/<Name>_<NNNN>.jpg)"

# --------------------------------------------------------------------------- ORL


@register_dataset("orl", inputs=("data",))
def load_orl(data_dir: PathLike) -> RetrievalDataset:
    """ORL / AT&T faces (``orl_faces/sN/M.pgm``) as leave-one-out identification.

    ``data_dir`` may be the folder holding ``orl_faces/`` or ``orl_faces/`` itself.
    Every image is a query against the whole database; relevant = the other
    images of the same person, junk = the query itself (so rank 1 is the nearest
    *other* image). A person with a single image has no query (its image stays
    in the database as a distractor).
    """
    root = Path(data_dir)
    require_dir(root, "the ORL faces folder (orl_faces/sN/M.pgm)")
    faces = root / "orl_faces" if (root / "orl_faces").is_dir() else root
    by_person = [_orl_images(folder) for folder in _orl_people(faces)]
    queries = tuple(
        RetrievalQuery(path=image, relevant=frozenset(images) - {image}, junk=frozenset({image}))
        for images in by_person
        if len(images) > 1
        for image in images
    )
    if not queries:
        raise DatasetError(f"{faces}: expected a person with at least two images, found none")
    database = tuple(image for images in by_person for image in images)
    return RetrievalDataset(name="orl", database=database, queries=queries)


def _orl_people(faces: Path) -> list[Path]:
    """The person folders ``sN``, by N (s2 before s10)."""
    people = sorted(
        (int(m.group(1)), d)
        for d in faces.iterdir()
        if d.is_dir() and (m := _ORL_PERSON.fullmatch(d.name)) is not None
    )
    if not people:
        raise DatasetError(
            f"{faces}: expected person folders s1..s40 holding M.pgm images "
            "(or a folder orl_faces/ holding them), found none"
        )
    return [folder for _, folder in people]


def _orl_images(folder: Path) -> list[Path]:
    images = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".pgm"),
        key=natural_key,
    )
    if not images:
        raise DatasetError(f"{folder}: expected M.pgm face images, found none")
    return images


# --------------------------------------------------------------------------- LFW pairs


@register_dataset("lfw", inputs=("data", "pairs"))
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
    require_dir(root, _LFW_FOLDER)
    image_dir = _lfw_image_dir(root)
    pairs_path = Path(pairs_file)
    if not pairs_path.is_absolute():
        pairs_path = root / pairs_path
    lines = read_lines(pairs_path, "an LFW pairs file (first line 'N' or 'K N')")
    rows = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    n_blocks, per_block = _pairs_layout(rows, pairs_path)
    n_folds, folds = _pair_folds(n_blocks, per_block)
    pairs = tuple(
        _lfw_pair(tokens, lines[number - 1], f"{pairs_path}:{number}", image_dir,
                  same=index % (2 * per_block) < per_block, fold=int(folds[index]))
        for index, (number, tokens) in enumerate(rows[1:])
    )
    check_present(sorted({p.a for p in pairs} | {p.b for p in pairs}),
                  "image named in the pairs", image_dir)
    return VerificationDataset(name=f"lfw:{pairs_path.stem}", pairs=pairs, n_folds=n_folds)


def _lfw_image_dir(root: Path) -> Path:
    """``root/lfw`` when there is one, else ``root`` itself is the folder of names."""
    return root / "lfw" if (root / "lfw").is_dir() else root


def _pairs_layout(rows: list[tuple[int, list[str]]], pairs_path: Path) -> tuple[int, int]:
    """(blocks, pairs of each kind per block) from the header, checked against the body."""
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
    if len(header) == 1:
        n_blocks, per_block = 1, int(header[0])
    else:
        n_blocks, per_block = int(header[0]), int(header[1])
    expected = 2 * per_block * n_blocks
    if len(rows) - 1 != expected:
        raise DatasetError(
            f"{pairs_path}: expected {expected} pair lines after the header "
            f"{' '.join(header)!r}, got {len(rows) - 1}"
        )
    return n_blocks, per_block


def _pair_folds(n_blocks: int, per_block: int) -> tuple[int, npt.NDArray[np.int64]]:
    """(number of folds, fold of each pair line in file order).

    View 2 gives the folds (one per block). View 1 has one block, so the same lines and
    the different lines are each cut into contiguous parts, part f of both forming fold f.
    """
    if n_blocks > 1:
        return n_blocks, np.repeat(np.arange(n_blocks, dtype=np.int64), 2 * per_block)
    n_folds = min(_VIEW1_FOLDS, per_block)
    part_of = np.empty(per_block, dtype=np.int64)
    for part, chunk in enumerate(np.array_split(np.arange(per_block), n_folds)):
        part_of[chunk] = part
    return n_folds, np.concatenate([part_of, part_of])


def _lfw_pair(tokens: list[str], line: str, where: str, image_dir: Path, *, same: bool,
              fold: int) -> VerificationPair:
    """One pair line: ``name i j`` when ``same``, else ``name1 i name2 j``."""
    if same:
        if len(tokens) != 3:
            raise DatasetError(f"{where}: expected a same-person line 'name i j', got {line!r}")
        name, i, j = tokens
        a, b = _lfw_image(image_dir, name, i, where), _lfw_image(image_dir, name, j, where)
    else:
        if len(tokens) != 4:
            raise DatasetError(
                f"{where}: expected a different-person line 'name1 i name2 j', got {line!r}"
            )
        name1, i, name2, j = tokens
        a, b = _lfw_image(image_dir, name1, i, where), _lfw_image(image_dir, name2, j, where)
    return VerificationPair(a=a, b=b, same=same, fold=fold)


def _lfw_image(image_dir: Path, name: str, number: str, where: str) -> Path:
    if not re.fullmatch(r"\d+", number) or int(number) < 1:
        raise DatasetError(f"{where}: expected a positive image number, got {number!r}")
    return image_dir / name / f"{name}_{int(number):04d}.jpg"


# --------------------------------------------------------------------------- LFW people


@register_dataset("lfw-people", inputs=("data",), options=("max_people",))
def load_lfw_people(data_dir: PathLike, min_images: int = 2,
                    max_people: int | None = None) -> ClusteringDataset:
    """LFW identities with at least ``min_images`` images, for people clustering.

    ``max_people`` keeps the first that many identities in name order (a smaller,
    repeatable subset); None keeps all (1,680 people, 9,164 images in LFW).
    """
    root = Path(data_dir)
    require_dir(root, _LFW_FOLDER)
    image_dir = _lfw_image_dir(root)
    if not (isinstance(min_images, int) and min_images >= 1):
        raise DatasetError(f"expected min_images >= 1, got {min_images!r}")
    people = []
    for folder in sorted(p for p in image_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if is_image(p.name))
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
