"""Which vocabulary tree a local channel quantises with, and where its file is.

``LocalChannelConfig.vocabulary`` chooses: a tree file trained elsewhere (copied into the
collection, so that the collection travels whole), ``"generic"`` (the tree that ships with
Lookalike, recorded by id and read from the package), ``"own"`` (trained on a sample of
the first images indexed), or, by default, the generic tree for a first run of fewer than
``own_tree_images`` images and a tree of its own above. The choice is made once, when the
first images are indexed: every word stored after names the same tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lookalike.errors import CollectionError, ManifestMismatchError
from lookalike.local.tree import VocabularyTree
from lookalike.local.vocabularies import generic_info, generic_tree, load_shipped, shipped_path

GENERIC = "generic"
OWN = "own"
KEYWORDS = (GENERIC, OWN)


class VocabularySettings(Protocol):
    """What of ``LocalChannelConfig`` chooses the tree."""

    @property
    def features(self) -> str: ...
    @property
    def branching(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def vocabulary(self) -> str | None: ...
    @property
    def own_tree_images(self) -> int: ...


def given_tree(config: VocabularySettings, images: int) -> VocabularyTree | None:
    """The tree to adopt for a first run of ``images`` images; None: train one on them."""
    if config.vocabulary == OWN:
        return None
    if config.vocabulary is not None and config.vocabulary != GENERIC:
        tree = VocabularyTree.load(Path(config.vocabulary), features=config.features)
        check_shape(tree, config, config.vocabulary)
        return tree
    if config.vocabulary == GENERIC:
        generic = generic_tree(config.features)
        if generic is None:
            raise ManifestMismatchError(f"expected a generic vocabulary tree for "
                                        f"'{config.features}' features, got none shipped")
        check_shape(generic, config, "the generic vocabulary tree")
        return generic
    if trains_on_images(config, images):
        return None
    generic = generic_tree(config.features)
    if generic is not None:  # the file, not only its index, must have the shape
        check_shape(generic, config, "the generic vocabulary tree")
    return generic


def trains_on_images(config: VocabularySettings, images: int) -> bool:
    """Whether a first run of ``images`` images trains a tree of its own (else it adopts
    one). By the generic tree's recorded shape: a run large enough for its own tree never
    reads the file."""
    if config.vocabulary is not None:
        return config.vocabulary == OWN
    info = generic_info(config.features)
    fits = info is not None and (info["branching"], info["depth"]) == (config.branching,
                                                                      config.depth)
    return not fits or images >= config.own_tree_images


def trains_own(config: VocabularySettings) -> bool:
    """Whether a first run may train a tree (and so should read a sample for it)."""
    return config.vocabulary is None or config.vocabulary == OWN


def check_shape(tree: VocabularyTree, config: VocabularySettings, name: str) -> None:
    if (tree.branching, tree.depth) != (config.branching, config.depth):
        raise ManifestMismatchError(
            f"{name}: expected a tree with branching {config.branching} and depth "
            f"{config.depth}, got {tree.branching} and {tree.depth}")


def keeps_copy(tree: VocabularyTree) -> bool:
    """Whether the collection stores the tree's file: every tree but a shipped one."""
    return shipped_path(tree.id) is None


def recorded_tree(path: Path, recorded: str, config: VocabularySettings) -> VocabularyTree:
    """The tree the catalog names: the collection's own file, or else a shipped tree."""
    if path.exists():
        tree = VocabularyTree.load(path, features=config.features)
    elif shipped_path(recorded) is not None:
        tree = load_shipped(recorded, config.features)
    else:
        raise CollectionError(f"{path}: the vocabulary tree of the stored words ({recorded}) is "
                              "missing, and no tree shipped with this Lookalike has its id; "
                              "restore it, or index into a new collection")
    if tree.id != recorded:
        raise CollectionError(f"{path}: expected vocabulary tree {recorded}, got "
                              f"{tree.id}; restore the collection's own tree")
    if config.vocabulary is not None and config.vocabulary not in KEYWORDS:
        given = VocabularyTree.load(Path(config.vocabulary))
        if given.id != tree.id:
            raise ManifestMismatchError(
                f"{config.vocabulary}: the collection's words come from vocabulary tree "
                f"{tree.id}, this file is tree {given.id}; open it without a vocabulary, "
                "or index into a new collection")
    return tree
