"""Vocabulary trees that ship with Lookalike, found by their content id.

A tree trained on a few hundred images has too few, too specialised words to search
them well (BENCHMARKS.md, "A generic vocabulary"), so a collection too small for a tree
of its own quantises with the generic tree trained once on a large varied sample of
photos. Such a collection records only the tree's id, not a copy: the file lives once per
machine, inside the installed package, under ``<id>.npz``. ``GENERIC.json`` names the
generic tree of each feature kind and how it was made. A shipped tree is never replaced,
only joined by newer ones, so that every collection that names one keeps finding it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from lookalike.errors import ValidationError
from lookalike.local.tree import VocabularyTree

SHIPPED_FOLDER = Path(__file__).parent / "vocabularies"
GENERIC_INDEX = "GENERIC.json"


def shipped_path(tree_id: str) -> Path | None:
    """The shipped file of the tree with this id, None when no shipped tree has it."""
    if not tree_id.isalnum():  # an id read from a catalog never names another path
        return None
    path = SHIPPED_FOLDER / f"{tree_id}.npz"
    return path if path.is_file() else None


def generic_info(features: str) -> dict[str, Any] | None:
    """How the generic tree of this feature kind was made (its id, shape and sample), None
    when none ships for it."""
    found = _generic_index().get(features)
    return dict(found) if isinstance(found, dict) else None


def generic_tree(features: str) -> VocabularyTree | None:
    """The generic tree of this feature kind, None when none ships for it."""
    info = generic_info(features)
    return None if info is None else load_shipped(str(info["id"]), features)


@functools.lru_cache(maxsize=4)
def load_shipped(tree_id: str, features: str) -> VocabularyTree:
    """The shipped tree with this id (read once per process: collections share it)."""
    path = shipped_path(tree_id)
    if path is None:
        raise ValidationError(f"expected a vocabulary tree shipped with Lookalike with id "
                              f"{tree_id!r}, got none in {SHIPPED_FOLDER}")
    tree = VocabularyTree.load(path, features=features)
    if tree.id != tree_id:
        raise ValidationError(f"{path}: expected vocabulary tree {tree_id}, got {tree.id}")
    return tree


@functools.lru_cache(maxsize=1)
def _generic_index() -> dict[str, Any]:
    path = SHIPPED_FOLDER / GENERIC_INDEX
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValidationError(f"{path}: not a readable index of shipped trees ({error})") from error
    return found if isinstance(found, dict) else {}
