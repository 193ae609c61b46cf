"""Oxford Buildings (Philbin et al., "Object retrieval with large vocabularies and fast
spatial matching", CVPR 2007), in the ``oxford5k_subset`` and the revisitop layouts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lookalike.eval.datasets._files import SHOW, check_present, require_dir, require_file
from lookalike.eval.datasets._registry import register_dataset
from lookalike.eval.datasets._types import (
    Box,
    DatasetError,
    PathLike,
    RetrievalDataset,
    RetrievalQuery,
)


@register_dataset("oxford", inputs=("data",), options=("crop",))
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
    return _load(data_dir, crop=crop, gnd_file=gnd_file, protocol=None)


@register_dataset("roxford-medium", inputs=("data",), options=("crop",))
def load_roxford_medium(data_dir: PathLike, *, crop: bool = True,
                        gnd_file: str = "gnd_roxford_subset.json") -> RetrievalDataset:
    """Revisited Oxford (Radenović et al., CVPR 2018), medium protocol: the easy and hard
    images are relevant, junk is ignored. Reads ``easy``, ``hard`` and ``junk`` lists per
    query from ``data_dir/gnd_roxford_subset.json`` (or the revisitop layout). As in the
    paper, the query image itself is not counted (ignored as junk), and a query left with
    no relevant image in the database is left out."""
    return _load(data_dir, crop=crop, gnd_file=gnd_file, protocol="medium")


@register_dataset("roxford-hard", inputs=("data",), options=("crop",))
def load_roxford_hard(data_dir: PathLike, *, crop: bool = True,
                      gnd_file: str = "gnd_roxford_subset.json") -> RetrievalDataset:
    """Revisited Oxford, hard protocol: only the hard images are relevant; easy ones are
    ignored with the junk (see :func:`load_roxford_medium`)."""
    return _load(data_dir, crop=crop, gnd_file=gnd_file, protocol="hard")


def _load(data_dir: PathLike, *, crop: bool, gnd_file: str,
          protocol: str | None) -> RetrievalDataset:
    root = Path(data_dir)
    require_dir(root, "an Oxford Buildings folder holding jpg/ and " + gnd_file)
    gnd_path = root / gnd_file
    image_dir = root / "jpg"
    require_file(gnd_path, "the Oxford ground truth (JSON with imlist_subset and queries)")
    require_dir(image_dir, "the folder of Oxford images <name>.jpg")
    gnd = _read_gnd(gnd_path)
    database = _oxford_database(gnd, gnd_path, image_dir)
    in_database = frozenset(database)
    raw = _oxford_raw_queries(gnd, gnd_path)
    if protocol is not None:
        raw = [entry for entry in (_revisited(entry, protocol, gnd_path, image_dir, in_database)
                                   for entry in raw) if entry["ok"]]
    queries = tuple(
        _oxford_query(entry, f"{gnd_path}: query {index}", gnd_path, image_dir, in_database, crop)
        for index, entry in enumerate(raw)
    )
    if not queries:
        raise DatasetError(f"{gnd_path}: expected at least one query, got none")
    name = "oxford" if protocol is None else f"roxford-{protocol}"
    return RetrievalDataset(name=name, database=database, queries=queries)


def _revisited(entry: dict[str, Any], protocol: str, gnd_path: Path, image_dir: Path,
               in_database: frozenset[Path]) -> dict[str, Any]:
    """A Revisited Oxford entry (easy, hard, junk) as ok and junk lists for ``protocol``;
    the query image, where the database holds it, is ignored as junk."""
    name = entry.get("query")
    lists = {key: _string_list(entry.get(key, []), gnd_path, f"{name}.{key}")
             for key in ("easy", "hard", "junk")}
    ok = lists["hard"] if protocol == "hard" else lists["easy"] + lists["hard"]
    junk = lists["junk"] + (lists["easy"] if protocol == "hard" else [])
    own = {name} if isinstance(name, str) and _image_path(image_dir, name) in in_database \
        else set()
    return {**entry, "ok": [n for n in ok if n != name], "junk": sorted({*junk, *own})}


def _image_path(image_dir: Path, name: str) -> Path:
    """Names are given with or without ``.jpg`` (the subset omits it, some lists do not)."""
    return image_dir / (name if name.lower().endswith(".jpg") else name + ".jpg")


def _read_gnd(gnd_path: Path) -> dict[str, Any]:
    try:
        gnd = json.loads(gnd_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"{gnd_path}: expected JSON ground truth, could not parse it: {error}"
        ) from error
    if not isinstance(gnd, dict):
        raise DatasetError(f"{gnd_path}: expected a JSON object, got {type(gnd).__name__}")
    return gnd


def _oxford_database(gnd: dict[str, Any], gnd_path: Path, image_dir: Path) -> tuple[Path, ...]:
    imlist = gnd.get("imlist_subset", gnd.get("imlist"))
    names = _string_list(imlist, gnd_path, "imlist_subset")
    if not names:
        raise DatasetError(f"{gnd_path}: expected a non-empty imlist_subset, got none")
    database = tuple(_image_path(image_dir, n) for n in names)
    if len(set(database)) != len(database):
        raise DatasetError(f"{gnd_path}: expected each image once in imlist_subset")
    check_present(database, "image of imlist_subset", image_dir)
    return database


def _oxford_query(
    entry: dict[str, Any], where: str, gnd_path: Path, image_dir: Path,
    in_database: frozenset[Path], crop: bool,
) -> RetrievalQuery:
    """One query entry, its ok and junk images checked against the database."""
    name = entry.get("query")
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{where}: expected a 'query' image name, got {name!r}")
    query_path = _image_path(image_dir, name)
    require_file(query_path, f"the image of query {name!r}")
    ok = {_image_path(image_dir, n) for n in _string_list(entry.get("ok"), gnd_path, f"{name}.ok")}
    junk = {_image_path(image_dir, n)
            for n in _string_list(entry.get("junk", []), gnd_path, "junk")}
    outside = sorted((ok | junk) - in_database)
    if outside:
        raise DatasetError(
            f"{where} ({name}): expected ok/junk images from the database, got "
            f"{len(outside)} outside it, e.g. {', '.join(p.name for p in outside[:SHOW])}"
        )
    if not ok:
        raise DatasetError(f"{where} ({name}): expected at least one ok image, got none")
    if ok & junk:
        raise DatasetError(
            f"{where} ({name}): expected ok and junk to be disjoint, got "
            f"{len(ok & junk)} images in both"
        )
    box = _oxford_box(entry, where) if crop else None
    return RetrievalQuery(path=query_path, relevant=frozenset(ok), junk=frozenset(junk), box=box)


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
