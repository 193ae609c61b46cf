"""The evaluation runner end to end on a small custom dataset made here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern
from PIL import Image

from lookalike.cli import main
from lookalike.eval import evaluate
from lookalike.eval.datasets import DatasetError


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


def test_the_classes_protocol_every_image_queries_the_others(tmp_path: Path) -> None:
    data = tmp_path / "classes"
    for group, members in enumerate(make_groups(tmp_path, groups=4, size=3)):
        (data / f"class{group}").mkdir(parents=True)
        for path in members:
            path.rename(data / f"class{group}" / path.name)
    (data / "alone").mkdir()  # a class of one image: a distractor, never a query
    Image.fromarray(pattern(99)).save(data / "alone" / "x.png")
    report = evaluate("classes", data=data, collection=tmp_path / "c",
                      configs={"global": THUMBNAIL})
    assert (report["images"], report["classes"], report["n_queries"]) == (13, 5, 12)
    assert report["recall_at_1"] == report["map_at_r"] == 1.0
    assert {"recall_at_2", "recall_at_4", "recall_at_8"} <= set(report)


def test_the_classes_cli_reports_json(tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "classes"
    for group, members in enumerate(make_groups(tmp_path, groups=2, size=2)):
        (data / f"c{group}").mkdir(parents=True)
        for path in members:
            path.rename(data / f"c{group}" / path.name)
    assert main(["eval", "classes", "--data", str(data), "--extractor", "thumbnail",
                 "--collection", str(tmp_path / "c"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recall_at_1"] == 1.0 and report["extractor"] == "thumbnail"
    (tmp_path / "flat").mkdir()
    Image.fromarray(pattern(1)).save(tmp_path / "flat" / "a.png")
    assert main(["eval", "classes", "--data", str(tmp_path / "flat"), "--json"]) == 1
    assert "one per class" in capsys.readouterr().err


def test_one_class_alone_is_refused(tmp_path: Path) -> None:
    # A folder holding the class folders' parent would be one class: a perfect score
    # whatever the model.
    for i in range(3):
        (tmp_path / "outer" / "inner").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pattern(i)).save(tmp_path / "outer" / "inner" / f"{i}.png")
    with pytest.raises(DatasetError, match="at least two classes"):
        evaluate("classes", data=tmp_path / "outer", configs={"global": THUMBNAIL})
