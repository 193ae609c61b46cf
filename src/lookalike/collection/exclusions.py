"""What a collection keeps out, and the folders it was filled from.

An exclusion is either a path (a file or a folder, absolute: what ``remove`` took out),
or a pattern: matched with shell wildcards against the whole path when it holds a ``/``,
else against the file's name and each folder name on its path (``*.tmp``, ``@eaDir``,
``.thumbnails``). Indexing skips what an exclusion covers, so a removed file does not
come back with the next ``index`` of its folder; naming the removed path itself to
``index`` takes it back. Both lists live in the catalog's meta table, written in the same
transaction as the rows they concern.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from lookalike.errors import expect
from lookalike.paths import catalog_key
from lookalike.storage import Catalog, Transaction

EXCLUSIONS = "exclusions"
ROOTS = "indexed_roots"


@dataclass(frozen=True)
class Exclusions:
    """The paths and patterns a collection keeps out (see the module's doc)."""

    patterns: tuple[str, ...] = ()

    def excludes(self, path: str, roots: Sequence[str] = ()) -> bool:
        """Whether ``path`` is kept out. A bare name is looked for among the file's name and
        the folders below the indexed root it lies in (``roots``), never above it: ``.*``
        must not exclude a library that lives under ``~/.local``."""
        below = _below_root(path, roots)
        return any(_covers(pattern, path, below) for pattern in self.patterns)

    def covering(self, roots: Sequence[str]) -> list[tuple[str, str]]:
        """(root, exclusion) for each of ``roots`` that an exclusion keeps out whole: a
        folder named to ``index`` inside a removed one, or a file an exclusion matches,
        which indexing skips."""
        found = []
        for root in roots:
            # A bare name counts only below a named folder (see excludes), never for it; a
            # named file is kept out by its own name too, like every file indexing meets.
            below = (PurePath(root).name,) if os.path.isfile(root) else ()
            hit = next((pattern for pattern in self.patterns
                        if _covers(pattern, root, below)), None)
            if hit is not None:
                found.append((root, hit))
        return found

    def adding(self, patterns: Iterable[str]) -> Exclusions:
        return Exclusions(tuple(dict.fromkeys([*self.patterns, *map(_checked, patterns)])))

    def without(self, patterns: Iterable[str]) -> Exclusions:
        dropped = set(patterns)
        return Exclusions(tuple(p for p in self.patterns if p not in dropped))


def _checked(pattern: str) -> str:
    """The pattern as stored: stripped, without a trailing slash, a plain absolute path in
    its normal form (as the catalog writes paths), so that naming it again finds it."""
    expect(isinstance(pattern, str) and bool(pattern.strip()),
           f"expected a path or a pattern to exclude, got {pattern!r}")
    cleaned = pattern.strip()
    if cleaned != os.sep:
        cleaned = cleaned.rstrip(os.sep)
    if os.path.isabs(cleaned) and not _has_wildcards(cleaned):
        cleaned = os.path.normpath(cleaned)
    return cleaned


def _below_root(path: str, roots: Sequence[str]) -> tuple[str, ...]:
    """The parts of ``path`` below the deepest of ``roots`` that holds it, or its name."""
    holding = [root for root in roots if path.startswith(root.rstrip(os.sep) + os.sep)]
    if not holding:
        return (PurePath(path).name,)
    return PurePath(path).relative_to(max(holding, key=len)).parts


def _covers(pattern: str, path: str, below: tuple[str, ...]) -> bool:
    if os.path.isabs(pattern):
        if not _has_wildcards(pattern):
            return path == pattern or path.startswith(pattern.rstrip(os.sep) + os.sep)
        return fnmatch.fnmatchcase(path, pattern)
    if "/" in pattern:  # a relative path: the end of a path, or a folder anywhere in it
        return (fnmatch.fnmatchcase(path, f"*/{pattern}")
                or fnmatch.fnmatchcase(path, f"*/{pattern}/*"))
    return any(fnmatch.fnmatchcase(part, pattern) for part in below)


def _has_wildcards(pattern: str) -> bool:
    return any(mark in pattern for mark in "*?[")


def read_exclusions(catalog: Catalog) -> Exclusions:
    return Exclusions(tuple(json.loads(catalog.meta(EXCLUSIONS) or "[]")))


def write_exclusions(conn: Transaction, exclusions: Exclusions) -> None:
    Catalog.put_meta(conn, EXCLUSIONS, json.dumps(list(exclusions.patterns)))


def read_roots(catalog: Catalog) -> list[str]:
    """The folders and files given to ``index``, first given first."""
    return list(json.loads(catalog.meta(ROOTS) or "[]"))


def record_roots(conn: Transaction, roots: list[str]) -> None:
    Catalog.put_meta(conn, ROOTS, json.dumps(roots))


def linked_twice(roots: Sequence[str], known: Sequence[str]) -> list[tuple[str, str]]:
    """(root, the path it is indexed under) for each of ``roots`` that reaches, through a
    symbolic link, a folder or file that ``known`` (the roots given before) or an earlier
    one of ``roots`` already names under another path: indexing it would store every image
    a second time. A root inside another by its own path is not such a one."""
    found: list[tuple[str, str]] = []
    seen: list[tuple[str, str]] = [(name, os.path.realpath(name)) for name in known]
    for root in roots:
        real = os.path.realpath(root)
        same = next((name for name, other in seen
                     if name != root and not root.startswith(name.rstrip(os.sep) + os.sep)
                     and (real == other or real.startswith(other.rstrip(os.sep) + os.sep))),
                    None)
        if same is not None and root not in known:
            found.append((root, same))
        else:
            seen.append((root, real))
    return found


def keep_out(catalog: Catalog, paths: list[str]) -> None:
    """Add ``paths`` (absolute) to the collection's exclusions."""
    if not paths:
        return
    with catalog.transaction() as conn:
        write_exclusions(conn, read_exclusions(catalog).adding(paths))


def let_in(catalog: Catalog, patterns: Iterable[str]) -> list[str]:
    """Drop ``patterns`` from the exclusions; returns the ones that were there. Each is
    looked for as ``adding`` stores it, as written and as an absolute path (a path may be
    given relative to the current folder)."""
    known = read_exclusions(catalog)
    found = {}
    for pattern in patterns:
        stored = [key for key in (_checked(pattern), _checked(catalog_key(pattern)))
                  if key in known.patterns]
        if stored:
            found[pattern] = stored[0]
    if found:
        with catalog.transaction() as conn:
            write_exclusions(conn, known.without(found.values()))
    return list(found)
