"""A user's own folder of images with a ground-truth TSV of relevant pairs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lookalike.eval.datasets._files import IMAGE_EXTENSIONS, list_images, read_lines, require_dir
from lookalike.eval.datasets._registry import register_dataset
from lookalike.eval.datasets._types import (
    DatasetError,
    PathLike,
    RetrievalDataset,
    RetrievalQuery,
)


@register_dataset("custom", inputs=("root", "truth"))
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
    require_dir(base, "the folder of images to search")
    tsv = _truth_path(base, Path(truth_tsv))
    lines = read_lines(tsv, "a ground-truth TSV of 'query_path<TAB>relevant_path' lines")
    database = _custom_database(base)
    relevant = _read_truth(lines, tsv, base, database)
    in_database = set(database)
    queries = tuple(
        RetrievalQuery(
            path=q,
            relevant=frozenset(targets),
            junk=frozenset({q}) if q in in_database and q not in targets else frozenset(),
        )
        for q, targets in relevant.items()
    )
    return RetrievalDataset(name=f"custom:{base.name}", database=database, queries=queries)


def _truth_path(base: Path, tsv: Path) -> Path:
    """``tsv`` as given, or relative to ``base`` when only that exists."""
    if not tsv.is_file() and not tsv.is_absolute() and (base / tsv).is_file():
        return base / tsv
    return tsv


def _custom_database(base: Path) -> tuple[Path, ...]:
    database = tuple(list_images(base))
    if not database:
        exts = " ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DatasetError(f"{base}: expected image files ({exts}) under it, found none")
    return database


def _read_truth(lines: list[str], tsv: Path, base: Path,
                database: tuple[Path, ...]) -> dict[Path, set[Path]]:
    """Relevant images by query, queries in the order of their first line (dict order)."""
    # Matched through the resolved path, so that ./a.jpg, a.jpg and an absolute path all
    # name the one database image, which is then reported as the database spells it.
    canonical = {p.resolve(): p for p in database}
    relevant: dict[Path, set[Path]] = {}
    for number, fields in _truth_rows(lines, tsv):
        query, query_key = _locate(fields[0], base, canonical)
        if query_key not in canonical and not query.is_file():
            raise DatasetError(f"{tsv}:{number}: expected the query image {query} to exist")
        target, target_key = _locate(fields[1], base, canonical)
        if target_key not in canonical:
            raise DatasetError(
                f"{tsv}:{number}: expected the relevant image {fields[1]!r} to be one of the "
                f"{len(database)} images under {base}, it is not"
            )
        relevant.setdefault(query, set()).add(target)
    if not relevant:
        raise DatasetError(f"{tsv}: expected at least one 'query<TAB>relevant' line, got none")
    return relevant


def _locate(text: str, base: Path, canonical: dict[Path, Path]) -> tuple[Path, Path]:
    """The path as the database spells it (or as given, outside it), and its resolved key."""
    path = Path(text)
    if not path.is_absolute():
        path = base / path
    resolved = path.resolve()
    return canonical.get(resolved, path), resolved


def _truth_rows(lines: list[str], tsv: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, its two fields) of each pair line; comments, blank lines and an
    optional ``query<TAB>relevant`` header are skipped."""
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
        yield number, fields
