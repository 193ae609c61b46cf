"""The bad-input corpus (tests/badfiles.py) through real indexing runs.

About 190 kinds of bad, odd and hostile files are indexed in one run, twice: with the global
channel alone (quick: it covers everything the image reader and folder discovery decide),
and, marked slow, with all five channels on next to a few real photos (cheap settings: the
thumbnail extractor for the global and regions channels, a small local tree; the faces and
text channels load their small real models). Each run must finish; every file a kind
expects indexed must be, at its upright size; every file it expects to fail must be in the
report, named, with a reason that says what is wrong; nothing else may fail; no FIFO may be
read. Some files change between
the listing and the reading of the run (see :meth:`badfiles.Corpus.change_files`).

The command line then indexes the same corpus again, as it is after those changes, into the
same collection, as a user re-runs it: it must print its report with every failure, and
exit 0.

Kinds with a known defect outside the image reader and folder discovery run alone, each as
a strict expected failure that names the defect: fixing one turns its test red until the
kind's ``defect`` note is removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from badfiles import KINDS, Corpus, FifoWatch, Kind, judge, report_key, restore_permissions
from badfiles import write_corpus as write_bad_corpus
from PIL import Image

from lookalike import (
    Collection,
    FacesChannelConfig,
    GlobalChannelConfig,
    LocalChannelConfig,
)
from lookalike.cli import main
from lookalike.cli.common import printable
from lookalike.collection import (
    ChannelConfig,
    IndexReport,
    RegionsChannelConfig,
    TextChannelConfig,
)

pytestmark = [
    # Pillow warns about the damaged EXIF blocks and the huge sizes the corpus is made of.
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

MAX_PIXELS = 50_000_000  # not the default, so that messages must quote the cap in force
THUMBNAIL = GlobalChannelConfig(extractor="thumbnail")


def all_channels() -> dict[str, ChannelConfig]:
    """Every channel, at settings cheap enough for a test."""
    return {"global": THUMBNAIL,
            "local": LocalChannelConfig(max_features=400, branching=6, depth=4),
            "faces": FacesChannelConfig(),
            "regions": RegionsChannelConfig(extractor="thumbnail", grid_levels=(2,)),
            "text": TextChannelConfig()}


def write_photos(folder: Path, skimage_data: Any) -> list[Path]:
    """Real photos: the local channel trains its tree on their keypoints in the first run."""
    left, right, _ = skimage_data.stereo_motorcycle()
    photos = {"astronaut.png": skimage_data.astronaut(), "camera.png": skimage_data.camera(),
              "coffee.png": skimage_data.coffee(), "chelsea.png": skimage_data.chelsea(),
              "motorcycle_left.png": left, "motorcycle_right.png": right}
    folder.mkdir(parents=True)
    for name, pixels in photos.items():
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
    return sorted(folder / name for name in photos)


def indexed_sizes(collection: Collection) -> dict[str, tuple[int | None, int | None]]:
    return {record.path: (record.width, record.height) for record in collection.images()}


@dataclass
class Run:
    corpus: Corpus
    photos: list[Path]
    report: IndexReport
    indexed: dict[str, tuple[int | None, int | None]]
    freed_fifos: list[str]
    workdir: Path
    inputs: list[Path]  # what was indexed: the corpus, and the photos' folder if any


@pytest.fixture(scope="module", params=[
    pytest.param("global", id="global"),
    pytest.param("all", id="all-channels", marks=pytest.mark.slow),  # faces, text load models
])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Run]:
    """The corpus indexed once: with the global channel alone (quick, every file-level
    case), or with all five channels next to real photos."""
    workdir = tmp_path_factory.mktemp(f"bad-inputs-{request.param}")
    photos: list[Path] = []
    configs: dict[str, ChannelConfig] = {"global": THUMBNAIL}
    if request.param == "all":
        for module in ("cv2", "dlib", "tokenizers"):
            pytest.importorskip(module)
        photos = write_photos(workdir / "photos", pytest.importorskip("skimage.data"))
        configs = all_channels()
    corpus = write_bad_corpus(workdir / "corpus")
    inputs = ([workdir / "photos"] if photos else []) + [corpus.root]
    collection = Collection(workdir / "c", channels=list(configs), configs=configs,
                            max_pixels=MAX_PIXELS)
    with collection.open(), FifoWatch(corpus.root) as watch:
        report = collection.index(inputs, progress=lambda done, total: corpus.change_files())
        sizes = indexed_sizes(collection)
    yield Run(corpus, photos, report, sizes, watch.freed, workdir, inputs)
    restore_permissions(corpus.root)


def test_the_corpus_is_big_varied_and_the_same_every_time(tmp_path: Path) -> None:
    corpus = write_bad_corpus(tmp_path / "one")
    kinds = corpus.kinds
    assert len(kinds) >= 80, f"only {len(kinds)} kinds here; left out: {corpus.left_out}"
    assert {item.group for item in kinds} >= {"garbage", "truncated", "bomb", "size", "mode",
                                              "frames", "metadata", "structure", "extension",
                                              "name", "filesystem", "changed"}
    assert {"fifo", "link_to_dev_zero", "symlink_loop", "avif"} <= {item.name for item in kinds}
    again = write_bad_corpus(tmp_path / "two")
    restore_permissions(tmp_path)  # to read the files locked on purpose
    assert len(again.expected) == len(corpus.expected)
    for key, entry in corpus.expected.items():
        twin = Path(key.replace(str(tmp_path / "one"), str(tmp_path / "two"), 1))
        assert report_key(twin) in again.expected
        if entry.expect.status != "skipped" and Path(key).is_file():
            assert twin.read_bytes() == Path(key).read_bytes(), key


def test_every_kind_is_handled_as_expected(run: Run) -> None:
    verdicts, strays = judge(run.corpus, run.report.failures, run.indexed,
                             max_pixels=MAX_PIXELS)
    wrong = {verdict.kind: verdict.problems for verdict in verdicts if not verdict.ok}
    assert not wrong, "\n".join(f"{kind}: {problem}" for kind, problems in wrong.items()
                                for problem in problems)
    assert not strays


def test_the_photos_index_and_nothing_outside_the_corpus_fails(run: Run) -> None:
    for photo in run.photos:
        assert str(photo) in run.indexed
    corpus_root = report_key(run.corpus.root)
    outside = [(path, reason) for path, reason in run.report.failures
               if not path.startswith(corpus_root)]
    assert outside == []


def test_every_failure_names_its_file_once(run: Run) -> None:
    paths = [path for path, _ in run.report.failures]
    assert len(paths) == len(set(paths))
    assert all(reason.strip() for _, reason in run.report.failures)


def test_no_fifo_is_ever_opened(run: Run) -> None:
    assert run.freed_fifos == []


def test_the_cli_prints_its_report_and_exits_0(run: Run,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Again over the same collection, as a user re-runs it: unchanged files are skipped,
    # every failed one is tried and reported again, the changed ones are caught up with.
    root = run.workdir / "c"
    with FifoWatch(run.corpus.root) as watch:
        code = main(["index", *map(str, run.inputs), "--collection", str(root),
                     "--max-pixels", str(MAX_PIXELS), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and watch.freed == []
    # Three files are gone: one vanished, one became a folder, one a FIFO (which discovery
    # now names instead of listing). The photo swapped in during the first run was indexed
    # from its new bytes then, so it is unchanged now.
    assert re.match(r"indexed 0 new, 0 changed, \d+ unchanged, 3 removed, \d+ failed in ", out)
    with Collection(root).open() as collection:
        sizes = indexed_sizes(collection)
        recorded = [(record.path, record.error or "") for record in collection.failures()]
    for path, reason in recorded:
        assert f"  failed: {printable(path)}: {printable(reason)}\n" in out
    # Discovery's failures (a FIFO, a broken link) are in the report, not in the catalog.
    known = {printable(path) for path, _ in recorded}
    discovered = [(path, reason) for path, reason in _failed_lines(out) if path not in known]
    verdicts, strays = judge(run.corpus, recorded + discovered, sizes, max_pixels=MAX_PIXELS,
                             settled=True)
    wrong = {verdict.kind: verdict.problems for verdict in verdicts if not verdict.ok}
    assert not wrong and not strays, (wrong, strays)
    assert out.count("\n  failed: ") == len(recorded) + len(discovered)


def _failed_lines(out: str) -> list[tuple[str, str]]:
    """(path, reason) from the report's '  failed: PATH: REASON' lines whose path has no
    ': ' and no line break, which is every path discovery fails in the corpus."""
    found = []
    for line in out.splitlines():
        if line.startswith("  failed: "):
            path, _, reason = line.removeprefix("  failed: ").partition(": ")
            found.append((path, reason))
    return found


DEFECTS = [item for item in KINDS if item.defect]


@pytest.mark.parametrize("item", DEFECTS, ids=[item.name for item in DEFECTS])
def test_known_defects(item: Kind, tmp_path: Path) -> None:
    """Each kind with a known defect elsewhere, alone in a run (it may stop the whole run)."""
    assert item.defect
    corpus = write_bad_corpus(tmp_path / "corpus", [item])
    collection = Collection(tmp_path / "c", configs={"global": THUMBNAIL},
                            max_pixels=MAX_PIXELS)
    try:
        with collection.open(), FifoWatch(corpus.root, after_s=3.0) as watch:
            report = collection.index([corpus.root],
                                      progress=lambda done, total: corpus.change_files())
            sizes = indexed_sizes(collection)
    except Exception as error:
        pytest.xfail(f"{item.defect} ({type(error).__name__}: {error})")
    verdicts, _ = judge(corpus, report.failures, sizes, max_pixels=MAX_PIXELS)
    if watch.freed or not all(verdict.ok for verdict in verdicts):
        pytest.xfail(f"{item.defect}: {[v.problems for v in verdicts]}, freed {watch.freed}")
    pytest.fail(f"{item.name} is handled now: remove its defect note in tests/badfiles.py")
