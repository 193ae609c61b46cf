"""The command-line contract: each command, its JSON, and its errors."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern, write_images
from PIL import Image

import lookalike.cli
from lookalike.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_index_search_info_remove(
    tmp_path: Path, image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (image_folder / "broken.jpg").write_bytes(b"nope")
    col = str(tmp_path / "c")
    code, out, _ = run(capsys, "index", str(image_folder), "--collection", col,
                       "--extractor", "thumbnail", "--workers", "2", "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 12 and report["failed"] == 1
    assert report["stage_seconds"]["extract.global"] > 0
    assert report["failures"][0]["path"].endswith("broken.jpg") and report["failures"][0]["reason"]

    code, out, _ = run(capsys, "search", str(image_folder / "img005.png"), "--collection", col,
                       "-k", "3", "--json")
    results = json.loads(out)["results"]
    assert code == 0 and [r["rank"] for r in results] == [1, 2, 3]
    assert results[0]["path"].endswith("img005.png")
    assert set(results[0]) >= {"path", "score", "rank", "reason", "evidence"}
    assert results[0]["evidence"]["channel_scores"] == {"global": results[0]["fused_score"]}
    assert results[0]["reason"].startswith("looks similar")

    # A box around the left half of a side-by-side pair finds the left image.
    pair = np.concatenate([pattern(9), pattern(3)], axis=1)
    Image.fromarray(pair).save(tmp_path / "pair.png")
    for box, expected in (("0,0,96,72", "img009.png"), ("96,0,192,72", "img003.png")):
        code, out, _ = run(capsys, "search", str(tmp_path / "pair.png"), "--collection", col,
                           "--box", box, "-k", "1")
        assert code == 0 and f"/{expected}  (looks similar" in out.strip()

    # Search-time settings can change on an existing collection without naming its model.
    code, out, _ = run(capsys, "index", str(image_folder), "--collection", col,
                       "--index", "hnsw", "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 12

    code, out, _ = run(capsys, "info", "--collection", col, "--json", "--failures")
    info = json.loads(out)
    assert info["images"] == 12 and info["failed"] == 1 and info["failures"][0]["reason"]
    # The thumbnail extractor's 192 values per image, as int8 after a float32 scale.
    assert info["channels"]["global"]["stored_bytes_per_image"] == 4 + 192

    code, out, _ = run(capsys, "remove", str(image_folder / "img005.png"), "--collection", col)
    assert code == 0 and "removed 1" in out
    code, out, _ = run(capsys, "info", "--collection", col)
    assert "11 indexed" in out and "196 bytes per image" in out


def test_errors_are_one_clear_line(
    tmp_path: Path, image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", str(image_folder / "img000.png"),
                       "--collection", str(tmp_path / "none"))
    assert code == 1 and err.startswith("error:") and "no collection here" in err
    col = str(tmp_path / "c")
    run(capsys, "index", str(image_folder), "--collection", col, "--extractor", "thumbnail", "-q")
    code, _, err = run(capsys, "search", str(tmp_path / "missing.png"), "--collection", col)
    assert code == 1 and "missing.png" in err and "not found" in err
    code, _, err = run(capsys, "search", str(image_folder / "img000.png"), "--collection", col,
                       "--channel", "faces")
    assert code == 1 and "expected a channel" in err
    with pytest.raises(SystemExit):
        main(["search", "x.png", "--collection", col, "--box", "1,2"])


def test_printed_paths_cannot_drive_the_terminal(
    tmp_path: Path, image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name with an escape sequence, a newline or a bidi mark is printed escaped:
    it can neither recolour the screen nor forge a line of the report."""
    hostile = "evil\x1b[2J\nindexed 999 new\u202egpj.png"
    (image_folder / hostile).write_bytes(b"not an image")
    code, out, _ = run(capsys, "index", str(image_folder), "--collection", str(tmp_path / "c"),
                       "--extractor", "thumbnail", "-q")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out
    failed = [line for line in out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "evil\\x1b[2J\\x0aindexed 999 new\\u202egpj.png" in failed[0]
    assert not any(line.startswith("indexed 999") for line in out.splitlines())


def test_eval_custom_reports_the_contract_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "db"
    write_images(root, range(8))
    # Each query is a brightened copy of one database image: that image is its one relevant.
    queries = tmp_path / "queries"
    queries.mkdir()
    lines = []
    for seed in range(4):
        source = Image.open(root / f"img{seed:03d}.png")
        source.point(lambda value: min(255, value + 10)).save(queries / f"q{seed}.png")
        lines.append(f"{queries / f'q{seed}.png'}\timg{seed:03d}.png")
    truth = tmp_path / "truth.tsv"
    truth.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "eval", "custom", "--root", str(root), "--truth", str(truth),
                       "--extractor", "thumbnail", "--collection", str(tmp_path / "c"), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["map"] == 1.0 and report["top1"] == 1.0 and report["recall_at_1"] == 1.0
    assert report["n_queries"] == 4 and "ns_score" not in report
    assert {"index_images_per_s", "query_ms_p50", "query_ms_p99", "recall_at_5",
            "recall_at_10"} <= set(report)


def test_annotate_and_ranker_without_the_text_channel(
    tmp_path: Path, image_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (image_folder / "broken.jpg").write_bytes(b"nope")
    col = str(tmp_path / "c")
    run(capsys, "index", str(image_folder), "--collection", col, "--extractor", "thumbnail", "-q")
    code, out, _ = run(capsys, "annotate", str(image_folder / "img004.png"), "-c", col,
                       "--tag", "vintage", "--json")
    assert code == 0 and [(n["kind"], n["text"]) for n in json.loads(out)["annotations"]] == [
        ("tag", "vintage")]
    # Not in the collection: the error names the path. A file that failed to index keeps
    # the user's text about it.
    code, _, err = run(capsys, "annotate", str(image_folder / "absent.png"), "-c", col)
    assert code == 1 and err.startswith("error:") and "absent.png" in err
    assert "expected an indexed image" in err
    code, out, _ = run(capsys, "annotate", str(image_folder / "broken.jpg"), "-c", col,
                       "--caption", "grandma's garden", "--json")
    assert code == 0 and json.loads(out)["annotations"][0]["text"] == "grandma's garden"

    code, out, _ = run(capsys, "ranker", "show", "-c", col)
    assert code == 0 and out == "logged searches 0, clicks 0 on 0 searches\nno ranker trained yet\n"
    code, _, err = run(capsys, "ranker", "train", "-c", col, "--clicks")
    assert code == 1 and "expected logged searches with clicks, got none" in err


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "lookalike.cli", "--version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("lookalike ")


def test_the_cli_uses_only_the_collection_package() -> None:
    """An adapter goes through Collection's public API, never a collection module or the
    catalog (lazy imports inside functions included)."""
    for source in sorted(Path(lookalike.cli.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            modules = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                       [alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [])
            inside = [name for name in modules if name.startswith("lookalike.collection.")]
            assert not inside, f"{source.name}:{node.lineno}: expected lookalike.collection, " \
                               f"got {inside}"
            assert not (isinstance(node, ast.Attribute) and node.attr == "catalog"), \
                f"{source.name}:{node.lineno}: expected no access to the catalog, got .catalog"
