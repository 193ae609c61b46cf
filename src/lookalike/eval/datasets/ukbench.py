"""UKBench (Nistér & Stewénius, "Scalable Recognition with a Vocabulary Tree", CVPR 2006)."""

from __future__ import annotations

import re
from pathlib import Path

from lookalike.eval.datasets._files import check_present, list_images, read_lines, require_dir
from lookalike.eval.datasets._registry import register_dataset
from lookalike.eval.datasets._types import (
    DatasetError,
    PathLike,
    RetrievalDataset,
    RetrievalQuery,
)

_UKBENCH_NAME = re.compile(r"ukbench(\d+)\.jpe?g", re.IGNORECASE)
_HEADER = ["image", "object_id"]


@register_dataset("ukbench", inputs=("data",))
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
    require_dir(root, "a UKBench folder (groups.tsv and full/, or ukbenchNNNNN.jpg images)")
    groups_file = root / "groups.tsv"
    if groups_file.is_file():
        images, objects = _ukbench_from_groups(root, groups_file)
    else:
        images, objects = _ukbench_from_names(root)
    return RetrievalDataset(name="ukbench", database=tuple(images),
                            queries=_ukbench_queries(images, objects))


def _ukbench_queries(images: list[Path], objects: list[int]) -> tuple[RetrievalQuery, ...]:
    """Every image as a query whose relevant set is its object's images, itself included."""
    members: dict[int, list[Path]] = {}
    for image, obj in zip(images, objects, strict=True):
        members.setdefault(obj, []).append(image)
    groups = {obj: frozenset(paths) for obj, paths in members.items()}
    return tuple(
        RetrievalQuery(path=image, relevant=groups[obj])
        for image, obj in zip(images, objects, strict=True)
    )


def _ukbench_from_groups(root: Path, groups_file: Path) -> tuple[list[Path], list[int]]:
    what = "a tab-separated file with the header 'image<TAB>object_id'"
    lines = read_lines(groups_file, what)
    image_dir = root / "full" if (root / "full").is_dir() else root
    images: list[Path] = []
    objects: list[int] = []
    seen: set[str] = set()
    rows = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if rows:
        _check_header(groups_file, *rows[0])
    for number, line in rows[1:]:
        image, obj = _group_row(groups_file, number, line)
        if image in seen:
            raise DatasetError(
                f"{groups_file}:{number}: expected each image once, got {image!r} again"
            )
        seen.add(image)
        images.append(image_dir / image)
        objects.append(obj)
    if not images:
        raise DatasetError(f"{groups_file}: expected at least one image row, got none")
    check_present(images, "image listed in groups.tsv", image_dir)
    return images, objects


def _check_header(groups_file: Path, number: int, line: str) -> None:
    if [f.strip() for f in line.split("\t")] != _HEADER:
        raise DatasetError(
            f"{groups_file}:{number}: expected the header 'image<TAB>object_id', got {line!r}"
        )


def _group_row(groups_file: Path, number: int, line: str) -> tuple[str, int]:
    fields = [f.strip() for f in line.split("\t")]
    if len(fields) != 2 or not fields[0] or not re.fullmatch(r"-?\d+", fields[1]):
        raise DatasetError(
            f"{groups_file}:{number}: expected 'image_name<TAB>integer object id', got {line!r}"
        )
    return fields[0], int(fields[1])


def _ukbench_from_names(root: Path) -> tuple[list[Path], list[int]]:
    by_number: dict[int, Path] = {}
    for path in list_images(root):
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
