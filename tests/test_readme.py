"""The README's commands, walked in order on one collection of the sample photos.

Every ``lookalike`` line of the README's bash blocks runs as written, with its example
paths mapped to the sample photos (scikit-image's, as ``lookalike demo`` uses) and its
example ids to ids the collection has. The lines that cannot run here are skipped by rule,
each rule with its reason, and a test checks that the rules skip nothing else.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lookalike.cli import main

pytestmark = pytest.mark.slow
skimage = pytest.importorskip("skimage")

README = Path(__file__).resolve().parents[1] / "README.md"

# First words of commands not run here, and why.
SKIPPED = {
    ("eval",): "measures a public data set or a truth file the reader brings (tested in "
               "test_eval_runner and test_datasets)",
    ("serve",): "runs until stopped (the server has its own tests)",
    ("train",): "needs labelled classes (test_training walks train, index and eval)",
    ("shard",): "splits for a Ray cluster (test_sharding)",
    ("ranker",): "needs judgements or logged clicks (test_ranking, test_cli_clues)",
    ("vocabulary",): "trains on a large photo set (test_local_channel)",
    # The people edits name example person and face ids (7, 5512, ...) that only a real
    # album has; test_faces and test_cli_exits run each of them.
    ("faces", "name"): "example ids", ("faces", "merge"): "example ids",
    ("faces", "split"): "example ids", ("faces", "reject"): "example ids",
    ("faces", "hide"): "example ids", ("faces", "assign"): "example ids",
}
# Options that need a cluster or a file the reader brings.
SKIPPED_OPTIONS = {"--engine": "a Ray cluster (test_ray)", "--address": "a Ray cluster",
                   "--vocabulary": "a tree trained by lookalike vocabulary",
                   "--fusion": "--fusion learned needs a trained ranker",
                   "products.onnx": "the model lookalike train makes (test_training)"}
# Example ids and paths in the README, mapped when the walk reaches them.
PHOTOS = {"query.jpg": "motorcycle_left", "cover.jpg": "motorcycle_left",
          "shelf.jpg": "coffee", "me.jpg": "astronaut", "group.jpg": "astronaut",
          "dress.jpg": "chelsea", "shop.jpg": "coffee", "street.jpg": "rocket",
          "q.jpg": "horse", "a.jpg": "astronaut", "b.jpg": "astronaut"}
# The README's face box, around the astronaut's face in the photo group.jpg stands for.
BOXES = {"300,80,420,240": "170,40,280,190"}


def readme_commands() -> list[list[str]]:
    """Each ``lookalike`` command of the README's bash blocks, continuation lines joined,
    comments dropped, in order."""
    commands: list[list[str]] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["lookalike"]:
                commands.append(words[1:])
    return commands


def skip_reason(words: list[str]) -> str | None:
    for first, reason in SKIPPED.items():
        if tuple(words[:len(first)]) == first:
            return reason
    found = [option for option in SKIPPED_OPTIONS if option in words]
    return SKIPPED_OPTIONS[found[0]] if found else None


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    from lookalike.samples import DATABASE_SAMPLES, load_sample

    folder = tmp_path_factory.mktemp("Pictures")
    for name in DATABASE_SAMPLES:
        target = folder / ("old" if name == "moon" else "") / f"{name}.png"
        target.parent.mkdir(exist_ok=True)
        Image.fromarray(load_sample(name)).save(target)
    (folder / "captions.csv").write_text(  # the sidecar the README's regions section reads
        "path,caption,tags,categories\nchelsea.png,a kitten on a rug,cat;pet,animals\n"
        "rocket.png,a rocket on the pad,space,holidays\n")
    return folder


def mapped(words: list[str], photos: Path, root: Path) -> list[str]:
    """The command with the README's example paths and ids made real."""
    out = []
    for word in words:
        word = word.replace("~/Pictures", str(photos))
        if word in PHOTOS:
            word = str(photos / f"{PHOTOS[word]}.png")
        elif word == "captions.csv":
            word = str(photos / word)
        elif word.endswith(".lookalike"):
            word = str(root / word)
        out.append(BOXES.get(word, word))
    for option in ("--image-id", "--person"):  # the collection's first image, person
        if option in out:
            out[out.index(option) + 1] = "1"
    return out


def test_the_skip_rules_leave_the_main_path_to_run() -> None:
    commands = readme_commands()
    ran = [words for words in commands if skip_reason(words) is None]
    assert len(commands) >= 40 and len(ran) >= 25
    assert {words[0] for words in ran} >= {"index", "search", "info", "remove", "include",
                                           "duplicates", "models", "faces", "annotate"}
    assert all(skip_reason(words) for words in commands if words[0] in ("eval", "serve"))


def test_every_readme_command_works_in_order_on_one_collection(
        photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOKALIKE_COLLECTION", raising=False)
    walked = 0
    for words in readme_commands():
        if skip_reason(words) is not None:
            continue
        code = main(mapped(words, photos, tmp_path))
        captured = capsys.readouterr()
        assert code == 0, f"lookalike {' '.join(words)}\n{captured.err}"
        walked += 1
    assert walked >= 25
