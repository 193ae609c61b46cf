"""The evaluation runner end to end on a small custom dataset made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import THUMBNAIL, pattern
from PIL import Image

from lookalike.eval import evaluate


def make_groups(root: Path, groups: int, size: int) -> list[list[Path]]:
    """Groups of near-duplicates: one pattern each, with small per-image noise."""
    rng = np.random.default_rng(0)
    made = []
    for group in range(groups):
        members = []
        for member in range(size):
            noisy = pattern(group).astype(int) + rng.integers(-6, 7, size=(72, 96, 3))
            path = root / f"g{group}_{member}.png"
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
            members.append(path)
        made.append(members)
    return made


def test_custom_eval_treats_the_query_itself_as_junk(tmp_path: Path) -> None:
    root = tmp_path / "db"
    root.mkdir()
    groups = make_groups(root, groups=4, size=5)
    lines = [f"{query.name}\t{other.name}" for members in groups for query in members
             for other in members if other != query]
    truth = tmp_path / "truth.tsv"
    truth.write_text("\n".join(lines) + "\n")
    report = evaluate("custom", root=root, truth=truth,
                      collection=tmp_path / "c", configs={"global": THUMBNAIL})
    assert report["n_queries"] == 20
    # Each query has 4 relevant images (its group, itself excluded): N-S applies, and with
    # the query's own image ignored a perfect ranking scores 4, not 3.
    assert report["ns_score"] == 4.0
    assert report["map"] == 1.0 and report["recall_at_1"] == 1.0


def test_a_reused_collection_is_not_indexed_again(tmp_path: Path) -> None:
    root = tmp_path / "db"
    root.mkdir()
    groups = make_groups(root, groups=2, size=2)
    truth = tmp_path / "truth.tsv"
    truth.write_text("".join(f"{a.name}\t{b.name}\n" for a, b in groups))
    first = evaluate("custom", root=root, truth=truth, collection=tmp_path / "c",
        configs={"global": THUMBNAIL})
    calls: list[int] = []
    second = evaluate("custom", root=root, truth=truth,
                      collection=tmp_path / "c", progress=lambda done, total: calls.append(total),
                          configs={"global": THUMBNAIL})
    assert calls == [0]  # nothing left to index
    assert second["map"] == first["map"] and second["index_images_per_s"] > 0
