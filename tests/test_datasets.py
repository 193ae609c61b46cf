"""Dataset loaders on tiny fake layouts; optional checks against the real benchmark data."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike.errors import LookalikeError, ValidationError
from lookalike.eval.datasets import (
    DATASETS,
    INPUTS,
    OPTIONS,
    ClusteringDataset,
    DatasetError,
    DatasetSpec,
    RetrievalDataset,
    RetrievalQuery,
    VerificationDataset,
    available_datasets,
    load_custom,
    load_dataset,
    load_lfw_pairs,
    load_orl,
    load_oxford,
    load_ukbench,
    register_dataset,
)

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).parents[2] / "shared" / "data")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _needs(sub: str) -> Path:
    folder = DATA / sub
    if not folder.is_dir():
        pytest.skip(f"benchmark data {folder} is absent")
    return folder


# --------------------------------------------------------------------------- registry


def test_registry() -> None:
    assert {"ukbench", "oxford", "custom", "orl", "lfw", "lfw-people"} <= set(available_datasets())
    assert available_datasets() == sorted(available_datasets()) == DATASETS.names()
    assert DATASETS["orl"].loader is load_orl
    unknown = r"expected a data set among \[.*'orl'.*\], got 'nope'"
    with pytest.raises(ValidationError, match=unknown):
        load_dataset("nope")
    with pytest.raises(LookalikeError, match="already registered"):
        register_dataset("orl")(load_ukbench)
    with pytest.raises(LookalikeError, match="already registered"):
        register_dataset("orl", inputs=("root",))(load_orl)  # same loader, other inputs
    assert register_dataset("orl")(load_orl) is load_orl  # the same declaration again is harmless


def test_declared_inputs_and_options() -> None:
    declared = {name: (DATASETS[name].inputs, DATASETS[name].options)
                for name in ["ukbench", "oxford", "custom", "orl", "lfw", "lfw-people"]}
    assert declared == {
        "ukbench": (("data",), ()),
        "oxford": (("data",), ("crop",)),
        "custom": (("root", "truth"), ()),
        "orl": (("data",), ()),
        "lfw": (("data", "pairs"), ()),
        "lfw-people": (("data",), ("max_people",)),
    }


def test_a_spec_refuses_unknown_inputs_and_options() -> None:
    with pytest.raises(ValidationError, match=r"inputs of data set 'x' among .*got \['folder'\]"):
        DatasetSpec("x", load_orl, inputs=("folder",))
    with pytest.raises(ValidationError, match=r"options of data set 'x' among .*got \['size'\]"):
        DatasetSpec("x", load_orl, options=("size",))


def test_load_dataset_dispatches(tmp_path: Path) -> None:
    for n in range(8):
        _touch(tmp_path / "full" / f"ukbench{n:05d}.jpg")
    dataset = load_dataset("ukbench", data=tmp_path)
    assert isinstance(dataset, RetrievalDataset) and len(dataset.database) == 8


def test_load_dataset_passes_declared_options_only(tmp_path: Path) -> None:
    _oxford(tmp_path)
    cropped = load_dataset("oxford", data=tmp_path)
    whole = load_dataset("oxford", data=tmp_path, crop=False, max_people=1)  # max_people: unused
    assert isinstance(cropped, RetrievalDataset) and isinstance(whole, RetrievalDataset)
    assert all(q.box is not None for q in cropped.queries)
    assert all(q.box is None for q in whole.queries)
    _lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 2, "Cid_C": 1})
    people = load_dataset("lfw-people", data=tmp_path, crop=False)
    assert isinstance(people, ClusteringDataset) and people.labels == (0, 0, 1, 1)
    one = load_dataset("lfw-people", data=tmp_path, max_people=1)
    assert isinstance(one, ClusteringDataset) and one.labels == (0, 0)


def test_load_dataset_passes_inputs_in_declared_order(tmp_path: Path) -> None:
    _lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    (tmp_path / "pairs.txt").write_text("1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t1\n")
    pairs = load_dataset("lfw", data=tmp_path, pairs="pairs.txt", root=tmp_path / "unused")
    assert isinstance(pairs, VerificationDataset) and pairs.name == "lfw:pairs"
    root = _custom_root(tmp_path / "photos")
    (root / "t.tsv").write_text("cats/a.jpg\tf.gif\n")
    custom = load_dataset("custom", root=root, truth="t.tsv")
    assert isinstance(custom, RetrievalDataset) and custom.name == "custom:photos"


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("ukbench", {}, "expected --data DIR for the ukbench dataset, got none"),
        ("lfw-people", {"max_people": 3},
         "expected --data DIR for the lfw-people dataset, got none"),
        ("custom", {"data": "x"}, "expected --root DIR and --truth TSV for the custom dataset"),
        ("custom", {"root": "x"}, "expected --truth TSV for the custom dataset, got none"),
        ("lfw", {"data": "x"},
         "expected --pairs FILE (e.g. pairsDevTest.txt) for the lfw dataset, got none"),
        ("lfw", {"pairs": "x"}, "expected --data DIR for the lfw dataset, got none"),
    ],
)
def test_load_dataset_names_the_missing_flag(name: str, given: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_dataset(name, **given)
    assert str(caught.value).startswith(message)


def test_load_dataset_refuses_what_a_plug_in_returns_wrongly() -> None:
    wrong = register_dataset("test-wrong")
    wrong(lambda folder: {"not": "a data set"})  # type: ignore[type-var]  # wrong on purpose
    try:
        with pytest.raises(ValidationError, match=r"to return a RetrievalDataset.*got dict"):
            load_dataset("test-wrong", data="x")
    finally:
        DATASETS.remove("test-wrong")
    DATASETS.add("test-not-a-spec", load_orl)  # type: ignore[arg-type]  # a broken plug-in
    try:
        with pytest.raises(ValidationError, match="registered as a DatasetSpec, got function"):
            load_dataset("test-not-a-spec", data="x")
    finally:
        DATASETS.remove("test-not-a-spec")


# --------------------------------------------------------------------------- the contract
# Every registered data set, a plug-in's included, declares inputs load_dataset knows how
# to give, asks for a missing one by its flag, and names a folder that is not there.

_GIVEN_ABSENT = {"data": "absent", "root": "absent", "truth": "absent/truth.tsv",
                 "pairs": "absent/pairs.txt"}


@pytest.mark.parametrize("name", DATASETS.names())
def test_contract_declared_names_are_known(name: str) -> None:
    spec = DATASETS[name]
    assert isinstance(spec, DatasetSpec) and spec.name == name
    assert set(spec.inputs) <= set(INPUTS) and len(set(spec.inputs)) == len(spec.inputs)
    assert set(spec.options) <= set(OPTIONS)


@pytest.mark.parametrize("name", DATASETS.names())
def test_contract_a_missing_input_is_a_clear_error(name: str, tmp_path: Path) -> None:
    spec = DATASETS[name]
    flags = {"data": "--data DIR", "root": "--root DIR", "truth": "--truth TSV",
             "pairs": "--pairs FILE"}
    for left_out in spec.inputs:
        given: dict[str, Any] = {i: tmp_path for i in spec.inputs if i != left_out}
        with pytest.raises(ValidationError, match=re.escape(flags[left_out])) as caught:
            load_dataset(name, **given)
        assert f"for the {name} dataset" in str(caught.value)


@pytest.mark.parametrize("name", DATASETS.names())
def test_contract_an_absent_folder_is_named(name: str, tmp_path: Path) -> None:
    spec = DATASETS[name]
    if not spec.inputs:
        pytest.skip(f"{name} reads no folder")
    given: dict[str, Any] = {i: tmp_path / _GIVEN_ABSENT[i] for i in spec.inputs}
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "absent"))):
        load_dataset(name, **given)


# --------------------------------------------------------------------------- UKBench


def _ukbench_groups(root: Path, n: int = 8) -> None:
    rows = ["image\tobject_id"]
    for i in range(n):
        _touch(root / "full" / f"ukbench{i:05d}.jpg")
        rows.append(f"ukbench{i:05d}.jpg\t{i // 4}")
    (root / "groups.tsv").write_text("\n".join(rows) + "\n")


def test_ukbench_groups_tsv(tmp_path: Path) -> None:
    _ukbench_groups(tmp_path)
    dataset = load_ukbench(tmp_path)
    assert len(dataset.database) == 8 and len(dataset.queries) == 8
    assert dataset.database[0] == tmp_path / "full" / "ukbench00000.jpg"
    first = dataset.queries[0]
    assert first.path == dataset.database[0]
    assert first.relevant == frozenset(dataset.database[:4])  # itself included
    assert first.junk == frozenset() and first.box is None
    assert dataset.queries[5].relevant == frozenset(dataset.database[4:])
    assert dataset.ns_applicable


def test_ukbench_original_layout(tmp_path: Path) -> None:
    for i in range(6):
        _touch(tmp_path / "full" / "sub" / f"ukbench{i:05d}.jpg")
    _touch(tmp_path / "full" / "readme.jpg")
    _touch(tmp_path / ".hidden" / "ukbench00009.jpg")
    dataset = load_ukbench(tmp_path)
    assert [p.name for p in dataset.database] == [f"ukbench{i:05d}.jpg" for i in range(6)]
    assert len(dataset.queries[0].relevant) == 4
    assert len(dataset.queries[5].relevant) == 2  # object 1 has only 4, 5 here
    assert not dataset.ns_applicable


def test_ukbench_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_ukbench(tmp_path / "absent")
    with pytest.raises(DatasetError, match=r"ukbenchNNNNN\.jpg"):
        load_ukbench(tmp_path)
    _ukbench_groups(tmp_path)
    (tmp_path / "full" / "ukbench00003.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 are missing: .*ukbench00003\.jpg"):
        load_ukbench(tmp_path)
    (tmp_path / "groups.tsv").write_text("name\tgroup\nukbench00000.jpg\t0\n")
    with pytest.raises(DatasetError, match=r"groups\.tsv:1: expected the header"):
        load_ukbench(tmp_path)
    (tmp_path / "groups.tsv").write_text("image\tobject_id\nukbench00000.jpg\tzero\n")
    with pytest.raises(DatasetError, match=r"groups\.tsv:2: expected"):
        load_ukbench(tmp_path)


def test_ukbench_duplicate_number(tmp_path: Path) -> None:
    _touch(tmp_path / "a" / "ukbench00000.jpg")
    _touch(tmp_path / "b" / "ukbench00000.jpg")
    with pytest.raises(DatasetError, match="each UKBench image once"):
        load_ukbench(tmp_path)


# --------------------------------------------------------------------------- Oxford


def _oxford(root: Path) -> None:
    names = ["all_souls_000001", "all_souls_000002", "all_souls_000003", "radcliffe_000001"]
    for name in names:
        _touch(root / "jpg" / f"{name}.jpg")
    gnd = {
        "note": "fake",
        "imlist_subset": names,
        "queries": [
            {
                "query": "all_souls_000001",
                "bbx_scaled": [10.0, 20.5, 100, 200.0],
                "ok": ["all_souls_000001", "all_souls_000002"],
                "junk": ["all_souls_000003"],
            },
            {
                "query": "radcliffe_000001",
                "bbx_scaled": [0, 0, 50, 60],
                "ok": ["radcliffe_000001"],
                "junk": [],
            },
        ],
    }
    (root / "gnd_subset.json").write_text(json.dumps(gnd))


def test_oxford(tmp_path: Path) -> None:
    _oxford(tmp_path)
    dataset = load_oxford(tmp_path)
    jpg = tmp_path / "jpg"
    assert dataset.database[0] == jpg / "all_souls_000001.jpg" and len(dataset.database) == 4
    query = dataset.queries[0]
    assert query == RetrievalQuery(
        path=jpg / "all_souls_000001.jpg",
        relevant=frozenset({jpg / "all_souls_000001.jpg", jpg / "all_souls_000002.jpg"}),
        junk=frozenset({jpg / "all_souls_000003.jpg"}),
        box=(10.0, 20.5, 100.0, 200.0),
    )
    assert dataset.queries[1].box == (0.0, 0.0, 50.0, 60.0)
    assert all(q.box is None for q in load_oxford(tmp_path, crop=False).queries)


def test_revisited_oxford_medium_and_hard(tmp_path: Path) -> None:
    """Medium counts easy and hard images, hard only the hard ones; the query image is
    ignored, and a query with nothing relevant left is left out."""
    from lookalike.eval.datasets import load_dataset

    names = ["q", "easy", "hard", "junk", "other", "lonely"]
    for name in names:
        _touch(tmp_path / "jpg" / f"{name}.jpg")
    gnd = {"imlist_subset": names, "queries": [
        {"query": "q", "bbx_scaled": [0, 0, 9, 9], "easy": ["easy"], "hard": ["hard"],
         "junk": ["junk"]},
        {"query": "lonely", "bbx_scaled": [0, 0, 9, 9], "easy": ["lonely", "other"], "hard": [],
         "junk": []}]}
    (tmp_path / "gnd_roxford_subset.json").write_text(json.dumps(gnd))
    jpg = tmp_path / "jpg"
    medium = load_dataset("roxford-medium", data=tmp_path)
    hard = load_dataset("roxford-hard", data=tmp_path)
    assert isinstance(medium, RetrievalDataset) and isinstance(hard, RetrievalDataset)
    assert medium.name == "roxford-medium" and len(medium.queries) == 2
    assert medium.queries[0].relevant == {jpg / "easy.jpg", jpg / "hard.jpg"}
    assert medium.queries[0].junk == {jpg / "junk.jpg", jpg / "q.jpg"}
    assert len(hard.queries) == 1  # "lonely" has no hard image
    assert hard.queries[0].relevant == {jpg / "hard.jpg"}
    assert hard.queries[0].junk == {jpg / "easy.jpg", jpg / "junk.jpg", jpg / "q.jpg"}


def test_oxford_revisitop_layout(tmp_path: Path) -> None:
    _touch(tmp_path / "jpg" / "a.jpg")
    _touch(tmp_path / "jpg" / "b.jpg")
    gnd = {"imlist": ["a", "b"], "qimlist": ["a"], "gnd": [{"bbx": [0, 0, 5, 5], "ok": ["b"]}]}
    (tmp_path / "gnd.json").write_text(json.dumps(gnd))
    dataset = load_oxford(tmp_path, gnd_file="gnd.json")
    assert dataset.queries[0].relevant == frozenset({tmp_path / "jpg" / "b.jpg"})
    assert dataset.queries[0].junk == frozenset()


def test_oxford_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"gnd_subset\.json: expected the Oxford ground truth"):
        _touch(tmp_path / "jpg" / "x.jpg")
        load_oxford(tmp_path)
    _oxford(tmp_path)
    gnd_path = tmp_path / "gnd_subset.json"
    gnd = json.loads(gnd_path.read_text())
    (tmp_path / "jpg" / "all_souls_000002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 are missing: .*all_souls_000002\.jpg"):
        load_oxford(tmp_path)
    _touch(tmp_path / "jpg" / "all_souls_000002.jpg")
    gnd["queries"][0]["ok"].append("nowhere_000001")
    gnd_path.write_text(json.dumps(gnd))
    with pytest.raises(DatasetError, match=r"outside it, e\.g\. nowhere_000001\.jpg"):
        load_oxford(tmp_path)
    gnd["queries"][0]["ok"].pop()
    gnd["queries"][0]["bbx_scaled"] = [10, 10, 5, 20]
    gnd_path.write_text(json.dumps(gnd))
    with pytest.raises(DatasetError, match="x0 < x1"):
        load_oxford(tmp_path)
    assert load_oxford(tmp_path, crop=False).queries[0].box is None
    gnd_path.write_text("{not json")
    with pytest.raises(DatasetError, match="expected JSON"):
        load_oxford(tmp_path)


# --------------------------------------------------------------------------- custom


def _custom_root(root: Path) -> Path:
    for rel in ["cats/a.jpg", "cats/b.JPEG", "cats/c.png", "dogs/d.webp", "dogs/e.bmp", "f.gif"]:
        _touch(root / rel)
    _touch(root / "notes.txt")
    _touch(root / ".thumbs" / "a.jpg")
    _touch(root / "cats" / ".hidden.jpg")
    return root


def test_custom(tmp_path: Path) -> None:
    root = _custom_root(tmp_path / "photos")
    external = _touch(tmp_path / "query.jpg")
    truth = tmp_path / "truth.tsv"
    truth.write_text(
        "query\trelevant\n"
        "# a comment\n"
        "\n"
        "cats/a.jpg\tcats/b.JPEG\n"
        f"{external}\tdogs/d.webp\n"
        f"cats/a.jpg\t{root / 'cats' / 'c.png'}\n"
        "dogs/e.bmp\tdogs/e.bmp\n"
        "dogs/e.bmp\tdogs/d.webp\n"
    )
    dataset = load_custom(root, truth)
    assert [p.relative_to(root).as_posix() for p in dataset.database] == [
        "cats/a.jpg",
        "cats/b.JPEG",
        "cats/c.png",
        "dogs/d.webp",
        "dogs/e.bmp",
        "f.gif",
    ]
    a, ext, e = dataset.queries
    # grouped by query, in order of first appearance
    assert a.path == root / "cats" / "a.jpg"
    assert a.relevant == frozenset({root / "cats" / "b.JPEG", root / "cats" / "c.png"})
    # own image in the database and not listed as relevant to itself -> junk
    assert a.junk == frozenset({root / "cats" / "a.jpg"})
    # a query outside the database has no junk
    assert ext.path == external and ext.junk == frozenset()
    # listed as relevant to itself -> counts, not junk
    assert e.relevant == frozenset({root / "dogs" / "e.bmp", root / "dogs" / "d.webp"})
    assert e.junk == frozenset()
    # truth path relative to root works too
    (root / "t.tsv").write_text("cats/a.jpg\tf.gif\n")
    assert load_custom(root, "t.tsv").queries[0].relevant == frozenset({root / "f.gif"})


def test_custom_errors(tmp_path: Path) -> None:
    root = _custom_root(tmp_path / "photos")
    truth = tmp_path / "truth.tsv"
    with pytest.raises(DatasetError, match=r"truth\.tsv: expected a ground-truth TSV"):
        load_custom(root, truth)
    truth.write_text("# header comment\ncats/a.jpg\tcats/b.JPEG\ncats/a.jpg\tnotes.txt\n")
    with pytest.raises(DatasetError, match=r"truth\.tsv:3: expected the relevant image 'notes"):
        load_custom(root, truth)
    truth.write_text("cats/a.jpg\t.thumbs/a.jpg\n")
    with pytest.raises(DatasetError, match=r"truth\.tsv:1: expected the relevant image"):
        load_custom(root, truth)
    truth.write_text("cats/a.jpg cats/b.JPEG\n")
    with pytest.raises(DatasetError, match=r"truth\.tsv:1: expected 'query_path<TAB>"):
        load_custom(root, truth)
    truth.write_text("cats/zzz.jpg\tcats/b.JPEG\n")
    with pytest.raises(DatasetError, match=r"truth\.tsv:1: expected the query image"):
        load_custom(root, truth)
    truth.write_text("# nothing\n\n")
    with pytest.raises(DatasetError, match="at least one"):
        load_custom(root, truth)
    empty = tmp_path / "empty"
    empty.mkdir()
    truth.write_text("a.jpg\tb.jpg\n")
    with pytest.raises(DatasetError, match="found none"):
        load_custom(empty, truth)
    with pytest.raises(DatasetError, match="does not exist"):
        load_custom(tmp_path / "absent", truth)


# --------------------------------------------------------------------------- ORL


def _orl(root: Path, people: int = 3, images: int = 3) -> Path:
    for s in range(1, people + 1):
        for m in range(1, images + 1):
            _touch(root / "orl_faces" / f"s{s}" / f"{m}.pgm")
    (root / "orl_faces" / "README").write_text("fake")
    return root


@pytest.mark.parametrize("inner", [False, True])
def test_orl(tmp_path: Path, inner: bool) -> None:
    _orl(tmp_path, people=2, images=10)
    _touch(tmp_path / "orl_faces" / "s10" / "1.pgm")  # single image: distractor only
    dataset = load_orl(tmp_path / "orl_faces" if inner else tmp_path)
    faces = tmp_path / "orl_faces"
    # persons numerically (s1, s2, s10), images numerically (1..10)
    assert dataset.database[:3] == (
        faces / "s1" / "1.pgm",
        faces / "s1" / "2.pgm",
        faces / "s1" / "3.pgm",
    )
    assert dataset.database[9] == faces / "s1" / "10.pgm"
    assert dataset.database[-1] == faces / "s10" / "1.pgm"
    assert len(dataset.database) == 21 and len(dataset.queries) == 20
    q = dataset.queries[0]
    assert q.path == faces / "s1" / "1.pgm"
    assert q.junk == frozenset({q.path})
    assert q.relevant == frozenset(faces / "s1" / f"{m}.pgm" for m in range(2, 11))


def test_orl_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"person folders s1\.\.s40"):
        load_orl(tmp_path)
    (tmp_path / "s1").mkdir()
    with pytest.raises(DatasetError, match=r"s1: expected M\.pgm face images"):
        load_orl(tmp_path)


# --------------------------------------------------------------------------- LFW


def _lfw_images(root: Path, people: dict[str, int]) -> None:
    for name, count in people.items():
        for n in range(1, count + 1):
            _touch(root / "lfw" / name / f"{name}_{n:04d}.jpg")


def test_lfw_view1(tmp_path: Path) -> None:
    # N = 20: fold f gets same lines 2f, 2f+1 and different lines 2f, 2f+1
    _lfw_images(tmp_path, {"Ann_A": 3, "Bob_B": 2})
    same = ["Ann_A\t1\t2"] * 20
    diff = ["Ann_A\t3\tBob_B\t2"] * 20
    (tmp_path / "pairsDevTrain.txt").write_text("\n".join(["20", *same, *diff]) + "\n")
    dataset = load_lfw_pairs(tmp_path, "pairsDevTrain.txt")
    assert isinstance(dataset, VerificationDataset)
    assert dataset.n_folds == 10 and len(dataset.pairs) == 40
    first = dataset.pairs[0]
    assert first.a == tmp_path / "lfw" / "Ann_A" / "Ann_A_0001.jpg"
    assert first.b == tmp_path / "lfw" / "Ann_A" / "Ann_A_0002.jpg"
    assert first.same and first.fold == 0
    last = dataset.pairs[-1]
    assert last.b == tmp_path / "lfw" / "Bob_B" / "Bob_B_0002.jpg"
    assert not last.same and last.fold == 9
    assert dataset.folds.tolist() == [f for f in range(10) for _ in range(2)] * 2
    assert dataset.same.tolist() == [True] * 20 + [False] * 20
    assert np.bincount(dataset.folds[dataset.same]).tolist() == [2] * 10
    assert len(dataset.images) == 4


def test_lfw_view1_uneven_blocks(tmp_path: Path) -> None:
    # N = 12 -> parts of sizes 2, 2, 1 x 8 (np.array_split)
    _lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    lines = ["12", *["Ann_A 1 2"] * 12, *["Ann_A 1 Bob_B 1"] * 12]
    (tmp_path / "p.txt").write_text("\n".join(lines))
    folds = load_lfw_pairs(tmp_path / "lfw", tmp_path / "p.txt").folds  # names folder directly
    assert folds[:12].tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert folds[12:].tolist() == folds[:12].tolist()


def test_lfw_view2(tmp_path: Path) -> None:
    _lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    block = ["Ann_A\t1\t2", "Ann_A\t2\t1", "Ann_A\t1\tBob_B\t1", "Bob_B\t1\tAnn_A\t2"]
    (tmp_path / "pairs.txt").write_text("\n".join(["3\t2", *block * 3]) + "\n")
    dataset = load_lfw_pairs(tmp_path, "pairs.txt")
    assert dataset.n_folds == 3
    assert dataset.folds.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert dataset.same.tolist() == [True, True, False, False] * 3
    assert dataset.pairs[3].a == tmp_path / "lfw" / "Bob_B" / "Bob_B_0001.jpg"


def test_lfw_errors(tmp_path: Path) -> None:
    _lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    pairs = tmp_path / "pairs.txt"
    with pytest.raises(DatasetError, match=r"pairs\.txt: expected an LFW pairs file"):
        load_lfw_pairs(tmp_path, "pairs.txt")
    pairs.write_text("1\nAnn_A\t1\t2\n")
    with pytest.raises(DatasetError, match="expected 2 pair lines after the header '1', got 1"):
        load_lfw_pairs(tmp_path, pairs)
    pairs.write_text("1\nAnn_A\t1\tBob_B\t1\nAnn_A\t1\t2\n")
    with pytest.raises(DatasetError, match=r"pairs\.txt:2: expected a same-person line"):
        load_lfw_pairs(tmp_path, pairs)
    pairs.write_text("1\nAnn_A\t1\t2\nAnn_A\t1\t2\n")
    with pytest.raises(DatasetError, match=r"pairs\.txt:3: expected a different-person line"):
        load_lfw_pairs(tmp_path, pairs)
    pairs.write_text("one\n")
    with pytest.raises(DatasetError, match="expected a header 'N'"):
        load_lfw_pairs(tmp_path, pairs)
    pairs.write_text("1\nAnn_A\tx\t2\nAnn_A\t1\tBob_B\t1\n")
    with pytest.raises(DatasetError, match="positive image number"):
        load_lfw_pairs(tmp_path, pairs)
    pairs.write_text("1\nAnn_A\t1\t7\nCid_C\t1\tBob_B\t9\n")
    with pytest.raises(DatasetError, match=r"3 are missing: .*Ann_A_0007\.jpg"):
        load_lfw_pairs(tmp_path, pairs)


# --------------------------------------------------------------------------- real data (optional)


@pytest.mark.data
def test_real_ukbench56() -> None:
    dataset = load_ukbench(_needs("ukbench56"))
    assert len(dataset.database) == 56 and len(dataset.queries) == 56
    assert dataset.ns_applicable


@pytest.mark.data
def test_real_oxford_subset() -> None:
    dataset = load_oxford(_needs("oxford5k_subset"))
    assert len(dataset.database) == 1008 and len(dataset.queries) == 10
    assert all(q.box is not None and q.relevant for q in dataset.queries)


@pytest.mark.data
def test_real_lfw_view1() -> None:
    folder = _needs("lfw")
    train = load_lfw_pairs(folder, "pairsDevTrain.txt")
    test = load_lfw_pairs(folder, "pairsDevTest.txt")
    assert len(train.pairs) == 2200 and int(train.same.sum()) == 1100
    assert len(test.pairs) == 1000 and int(test.same.sum()) == 500
    assert train.n_folds == 10 and np.bincount(train.folds).tolist() == [220] * 10


@pytest.mark.data
def test_real_orl() -> None:
    dataset = load_orl(_needs("orl_faces"))
    assert len(dataset.database) == 400 and len(dataset.queries) == 400
    assert all(len(q.relevant) == 9 for q in dataset.queries)
