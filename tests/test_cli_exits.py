"""Exit codes and messages a script and a new user rely on: nothing is created for a
mistyped folder, empty answers say so, a closed pipe ends quietly, a busy port fails
before it is announced."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_images
from PIL import Image

from lookalike.cli import main
from lookalike.cli.common import counted, progress_bar
from lookalike.faces import FaceAnalyzer


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def indexed(tmp_path: Path, capsys: pytest.CaptureFixture[str], count: int
            ) -> tuple[Path, str]:
    """``count`` pattern images in ``photos/``, indexed by the thumbnail extractor into a
    collection ``c``: the folder and the collection's path."""
    folder = tmp_path / "photos"
    write_images(folder, range(count))
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(folder), "-c", col, "--extractor", "thumbnail")[0] == 0
    return folder, col


def test_a_missing_folder_fails_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "index", str(tmp_path / "no-such-folder"), "-c",
                       str(tmp_path / "c"), "--extractor", "thumbnail")
    assert code == 1 and "no-such-folder" in err and "found nothing" in err
    assert not (tmp_path / "c").exists()


def test_empty_answers_and_a_sidecar_that_matches_nothing_say_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, col = indexed(tmp_path, capsys, 3)
    code, out, err = run(capsys, "search", str(folder / "img001.png"), "-c", col,
                         "--folder", str(tmp_path / "elsewhere"))
    assert code == 0 and out == "" and "no results" in err and "filters" in err
    sidecar = tmp_path / "labels.csv"
    sidecar.write_text("path,category\nnowhere/a.jpg,cat\n")
    code, _, err = run(capsys, "annotate", "-c", col, "--import", str(sidecar))
    assert code == 1 and "annotated no image" in err
    code, _, err = run(capsys, "index", str(folder), "-c", col, "--annotations", str(sidecar))
    assert code == 1 and "annotated no image" in err


def test_a_box_may_start_with_a_minus_sign(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, col = indexed(tmp_path, capsys, 3)
    code, out, err = run(capsys, "search", str(folder / "img001.png"), "-c", col,
                         "--box", "-5,0,60,60", "-k", "1")
    assert "expected one argument" not in err
    assert code in (0, 1) and (out or err)


def test_mistakes_are_named_not_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, col = indexed(tmp_path, capsys, 3)
    query = str(folder / "img001.png")
    for box in ("nan,0,10,10", "0,0,inf,10"):  # refused by argparse, with no traceback
        with pytest.raises(SystemExit) as exited:
            main(["search", query, "-c", col, f"--box={box}"])
        assert exited.value.code == 2 and "finite numbers" in capsys.readouterr().err
    code, _, err = run(capsys, "search", query, "-c", col, "--channel", "bogus")
    assert code == 1 and "the kinds of channel are" in err and "channels add" not in err
    code, _, err = run(capsys, "search", query, "-c", col, "--channel", "local")
    assert code == 1 and "lookalike channels add local" in err
    code, _, err = run(capsys, "remove", str(folder / "typo.png"), "-c", col)
    assert code == 1 and "typo.png" in err and "nothing removed" in err
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "index", str(tmp_path / "empty"), "-c", col)
    assert code == 0 and "no images found in" in err and "empty" in err
    # A file named to index that a pattern keeps out is reported, as a folder is.
    assert run(capsys, "index", str(folder), "-c", col, "--exclude", "img002.png")[0] == 0
    code, out, _ = run(capsys, "index", str(folder / "img002.png"), "-c", col, "--json")
    assert code == 0 and json.loads(out)["kept_out"] == [
        {"path": str(folder / "img002.png"), "excluded_by": "img002.png"}]


def test_a_link_to_an_indexed_folder_is_not_indexed_twice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, col = indexed(tmp_path, capsys, 3)
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    (tmp_path / "inner").symlink_to(folder / "img001.png")
    code, out, _ = run(capsys, "index", str(tmp_path / "link"), str(tmp_path / "inner"),
                       str(folder), "-c", col, "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 0 and report["unchanged"] == 3
    assert report["same_as"] == [{"path": str(tmp_path / "link"), "indexed_as": str(folder)},
                                 {"path": str(tmp_path / "inner"), "indexed_as": str(folder)}]
    code, out, _ = run(capsys, "index", str(tmp_path / "link"), "-c", col)
    assert code == 0 and f"not indexed again: {tmp_path / 'link'} is {folder}" in out
    code, out, _ = run(capsys, "info", "-c", col)
    assert "3 indexed" in out
    # A new collection that takes both at once keeps the first named.
    fresh = str(tmp_path / "fresh")
    code, out, _ = run(capsys, "index", str(tmp_path / "link"), str(folder), "-c", fresh,
                       "--extractor", "thumbnail", "--json")
    assert json.loads(out)["added"] == 3 and json.loads(out)["same_as"] == [
        {"path": str(folder), "indexed_as": str(tmp_path / "link")}]


def test_counts_read_in_the_right_number() -> None:
    assert [counted(n, "face") for n in (0, 1, 2)] == ["0 faces", "1 face", "2 faces"]
    assert counted(1, "person", "people") == "1 person" and counted(3, "person", "people") == (
        "3 people")


def test_a_progress_bar_follows_a_job_that_grows(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("indexing", quiet=False) as update:
        update(2, 2)
        update(2, 4)  # a second pass over the same images
        update(4, 4)
    err = capsys.readouterr().err
    # Past its total, tqdm drops the bar and counts alone: "indexing: 6img [00:00, ...]".
    assert "4/4" in err and re.search(r": \d+img \[", err) is None, err


def test_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(12))
    col = str(tmp_path / "c")
    command = [sys.executable, "-m", "lookalike.cli", "index", str(folder), "-c", col,
               "--extractor", "thumbnail", "-q"]
    subprocess.run(command, check=True, capture_output=True)
    search = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli", "search", str(folder / "img001.png"), "-c",
         col, "-k", "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert search.stdout is not None and search.stderr is not None
    search.stdout.close()  # the reader goes away before the first line, as `| head -0` does
    error = search.stderr.read().decode()
    search.wait(timeout=120)
    assert "Traceback" not in error and "BrokenPipeError" not in error


def test_serve_on_a_busy_port_fails_before_announcing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    _, col = indexed(tmp_path, capsys, 2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "-c", col, "--port", str(port))
    assert code == 1 and "serving" not in err and f"127.0.0.1:{port}" in err
    assert "pick another --port" in err


def test_verify_takes_image_files(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    result = FaceAnalyzer().verify(path, str(path))
    assert result.same and result.similarity > 0.99


def test_removed_images_stay_out_until_let_back_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(4))
    write_images(folder / "@eaDir", range(10, 12))
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(folder), "-c", col, "--extractor", "thumbnail")[0] == 0
    assert run(capsys, "remove", str(folder / "img001.png"), "-c", col)[0] == 0
    # The next index of the folder does not bring it back; a pattern keeps a folder out and
    # takes out what was already indexed under it.
    code, out, _ = run(capsys, "index", str(folder), "-c", col, "--exclude", "@eaDir",
                       "--json")
    assert code == 0 and '"added": 0' in out and '"removed": 2' in out
    code, out, _ = run(capsys, "info", "-c", col)
    assert f"indexed     {folder}" in out and "excluded    @eaDir" in out
    assert f"excluded    {folder / 'img001.png'}" in out and "3 indexed" in out
    # Let back in by name: the next index adds it; naming the file to index does too.
    assert run(capsys, "include", str(folder / "img001.png"), "-c", col)[0] == 0
    code, out, _ = run(capsys, "index", str(folder), "-c", col, "--json")
    assert code == 0 and '"added": 1' in out
    assert run(capsys, "remove", str(folder / "img002.png"), "-c", col)[0] == 0
    code, out, _ = run(capsys, "index", str(folder / "img002.png"), "-c", col, "--json")
    assert code == 0 and '"added": 1' in out
    code, _, err = run(capsys, "include", "never-excluded", "-c", col)
    assert code == 1 and "not excluded: never-excluded" in err
    # A folder named to index inside a removed one is not indexed, and the report says why
    # and how to take it back, instead of a silent "0 new".
    write_images(folder / "raw" / "2024", range(20, 22))
    assert run(capsys, "index", str(folder), "-c", col)[0] == 0
    assert run(capsys, "remove", str(folder / "raw"), "-c", col)[0] == 0
    inside = folder / "raw" / "2024"
    code, out, _ = run(capsys, "index", str(inside), "-c", col, "--json")
    assert code == 0 and json.loads(out)["added"] == 0 and json.loads(out)["kept_out"] == [
        {"path": str(inside), "excluded_by": str(folder / "raw")}]
    code, out, err = run(capsys, "index", str(inside), "-c", col)
    assert (f"kept out: {inside} lies in the excluded {folder / 'raw'}; 'lookalike include "
            f"{folder / 'raw'}' takes it back") in out + err


def test_more_like_an_indexed_image_and_a_default_collection(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(5))
    col = tmp_path / "c"
    monkeypatch.setenv("LOOKALIKE_COLLECTION", str(col))  # read when the parser is built
    assert run(capsys, "index", str(folder), "--extractor", "thumbnail")[0] == 0
    code, out, _ = run(capsys, "search", str(folder / "img003.png"), "-k", "1", "--json")
    image_id = json.loads(out)["results"][0]["image_id"]
    code, out, _ = run(capsys, "search", "--image-id", str(image_id), "-k", "1", "--json")
    found = json.loads(out)
    assert code == 0 and found["query"] == f"image {image_id}"
    assert found["results"][0]["path"] == str(folder / "img003.png")
    code, _, err = run(capsys, "search", "--image-id", "999", "-k", "1")
    assert code == 1 and "999" in err
    monkeypatch.delenv("LOOKALIKE_COLLECTION")
    with pytest.raises(SystemExit):  # no -c and no variable: argparse names the option
        main(["info"])
    assert "--collection" in capsys.readouterr().err


def test_faces_list_and_shell_completion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], astronaut: np.ndarray) -> None:
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(tmp_path / "astronaut.png"), "-c", col, "--channels",
               "faces")[0] == 0
    code, out, _ = run(capsys, "faces", "list", str(tmp_path / "astronaut.png"), "-c", col,
                       "--json")
    faces = json.loads(out)["faces"]
    assert code == 0 and len(faces) == 1 and faces[0]["box"][2] > faces[0]["box"][0]
    code, out, _ = run(capsys, "faces", "list", str(tmp_path / "astronaut.png"), "-c", col)
    assert out.startswith(f"face {faces[0]['face_id']}  box ")
    pytest.importorskip("argcomplete")
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0 and "lookalike" in out and "complete" in out


def test_duplicates_are_grouped_exact_and_near(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    paths = write_images(folder, range(6))
    (folder / "copy.png").write_bytes(paths[1].read_bytes())  # byte-identical
    Image.open(paths[2]).resize((64, 48)).save(folder / "smaller.png")  # near
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(folder), "-c", col, "--extractor", "thumbnail")[0] == 0
    code, out, _ = run(capsys, "duplicates", "-c", col, "--json", "--threshold", "0.99")
    groups = json.loads(out)["groups"]
    kinds = {group["kind"]: sorted(Path(i["path"]).name for i in group["images"])
             for group in groups}
    assert code == 0 and kinds == {"exact": ["copy.png", "img001.png"],
                                   "near": ["img002.png", "smaller.png"]}
    code, out, _ = run(capsys, "duplicates", "-c", col, "--exact")
    assert code == 0 and out.startswith("group 1: 2 images, exact copies")
    # In a near group, the byte-identical copies among the others are named as such.
    (folder / "smaller-copy.png").write_bytes((folder / "smaller.png").read_bytes())
    assert run(capsys, "index", str(folder), "-c", col)[0] == 0
    code, out, _ = run(capsys, "duplicates", "-c", col, "--json", "--threshold", "0.99")
    [near] = [group for group in json.loads(out)["groups"] if group["kind"] == "near"]
    ids = {Path(image["path"]).name: image["id"] for image in near["images"]}
    same = {Path(image["path"]).name: image["same_bytes_as"] for image in near["images"]}
    assert sorted(ids) == ["img002.png", "smaller-copy.png", "smaller.png"]
    assert same["img002.png"] is None and {same["smaller.png"], same["smaller-copy.png"]} == {
        None, min(ids["smaller.png"], ids["smaller-copy.png"])}
    code, out, _ = run(capsys, "duplicates", "-c", col, "--threshold", "0.99")
    assert code == 0 and out.count("(same bytes as") == 1


def test_faces_assign_and_hide_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], astronaut: np.ndarray) -> None:
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    Image.fromarray(astronaut[:, ::-1]).save(tmp_path / "b.png")
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-c", col,
               "--channels", "faces")[0] == 0
    code, out, _ = run(capsys, "faces", "people", "-c", col, "--json")
    person = json.loads(out)["people"][0]["id"]
    code, out, _ = run(capsys, "faces", "list", str(tmp_path / "b.png"), "-c", col, "--json")
    face = json.loads(out)["faces"][0]["face_id"]
    assert run(capsys, "faces", "reject", "-c", col, str(face))[0] == 0
    code, out, _ = run(capsys, "faces", "assign", "-c", col, str(face), str(person), "--json")
    assert code == 0 and json.loads(out)["faces"] == 2
    code, out, _ = run(capsys, "faces", "hide", "-c", col, str(face))
    assert code == 0 and out.startswith("hid 1 face")
    code, out, _ = run(capsys, "faces", "list", str(tmp_path / "b.png"), "-c", col, "--json")
    assert json.loads(out)["faces"][0]["person"] is None


def test_exclusion_patterns_match_below_the_indexed_folder_only(tmp_path: Path) -> None:
    from lookalike.collection import Exclusions

    root = str(tmp_path / ".local" / "photos")
    hidden = Exclusions().adding([".*", "raw/", "2019/tmp", str(tmp_path / "old") + "/"])
    assert hidden.patterns[1:] == ("raw", "2019/tmp", str(tmp_path / "old"))
    assert not hidden.excludes(f"{root}/a.jpg", [root])  # .local is above the root
    assert hidden.excludes(f"{root}/.thumbs/a.jpg", [root])
    assert hidden.excludes(f"{root}/raw/a.jpg", [root])
    assert hidden.excludes(f"{root}/2019/tmp/a.jpg", [root])
    assert not hidden.excludes(f"{root}/2019/a.jpg", [root])
    assert hidden.excludes(str(tmp_path / "old" / "a.jpg"), [root])


def test_include_finds_patterns_as_they_were_stored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(2))
    col = str(tmp_path / "c")
    assert run(capsys, "index", str(folder), "-c", col, "--extractor", "thumbnail",
               "--exclude", "raw/", "--exclude", "2019/tmp")[0] == 0
    code, out, _ = run(capsys, "include", "raw/", "2019/tmp", "-c", col, "--json")
    assert code == 0 and json.loads(out) == {"included": ["raw/", "2019/tmp"],
                                             "not_excluded": []}
