"""Synthesis of pairs and benchmark suites: layout, provenance, reproducibility, held-outs."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from girml.config import ConfigError, DegradationsConfig, SynthesizeConfig, parse_section
from girml.core.imageio import read_image, to_tensor, to_uint8, write_png
from girml.data.records import PairRecord, read_jsonl, write_jsonl
from girml.data.synthesize import CLEAN_SUITES, grid_crops, read_manifest, synthesize
from girml.degradations import Recipe, apply_recipe
from tests.factories import TINY_LAYOUT, make_clean_set, tiny_params


def _configs(**synth) -> tuple[DegradationsConfig, SynthesizeConfig]:
    raw = tiny_params()
    raw["synthesize"].update(synth)
    return (
        parse_section(raw["degradations"], "degradations", DegradationsConfig),
        parse_section(raw["synthesize"], "synthesize", SynthesizeConfig),
    )


def _run(tmp: Path, **synth) -> tuple[Path, Path]:
    clean = make_clean_set(tmp / "clean", TINY_LAYOUT)
    spec, cfg = _configs(**synth)
    images = read_manifest(clean / "manifest.csv", clean / "images")
    synthesize(images, spec, cfg, tmp / "pairs", tmp / "bench")
    return tmp / "pairs", tmp / "bench"


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_layout_and_provenance(tmp_path: Path) -> None:
    pairs, bench = _run(tmp_path, whole_photos=0)  # the crop suites (whole: its own tests)
    train = _records(pairs / "train" / "pairs.jsonl")
    assert len(train) == 24 and len(_records(pairs / "val" / "pairs.jsonl")) == 6
    suites = {p.parent.parent.name + "/" + p.parent.name for p in bench.glob("*/*/recipes.jsonl")}
    assert suites == {
        "single-id/noise", "single-id/blur", "single-id/jpeg", "single-id/clean",
        "single-ood/noise", "single-ood/blur", "single-ood/jpeg",
        "mixed/blur+noise",
        "unseen/haze", "unseen/blur+jpeg",
        "unseen-content/noise", "unseen-content/blur", "unseen-content/jpeg",
        "unseen-content/clean",
    }  # fmt: skip
    for jsonl in bench.glob("*/*/recipes.jsonl"):
        recs = _records(jsonl)
        assert len(recs) == 4
        for rec in recs:
            gt = read_image(jsonl.parent / rec["gt"])
            lq = read_image(jsonl.parent / rec["lq"])
            assert gt.shape == lq.shape == (32, 32, 3)
            # provenance: the stored recipe replays to the stored LQ, byte for byte
            replay = to_uint8(apply_recipe(to_tensor(gt), Recipe.from_dict(rec["recipe"])))
            assert np.array_equal(replay, lq)
    ood = _records(bench / "single-ood" / "noise" / "recipes.jsonl")
    assert all(50 <= r["recipe"]["steps"][0]["params"]["sigma"] <= 70 for r in ood)
    # every file parses into typed records, and writing them back gives the same bytes
    for jsonl in [*pairs.glob("*/pairs.jsonl"), *bench.glob("*/*/recipes.jsonl")]:
        write_jsonl(tmp_path / "again.jsonl", read_jsonl(jsonl, PairRecord))
        assert (tmp_path / "again.jsonl").read_bytes() == jsonl.read_bytes()


def test_clean_family_is_the_ground_truth_on_the_same_crops(tmp_path: Path) -> None:
    _, bench = _run(tmp_path, whole_photos=0)
    assert sorted(p.parent.name for p in bench.glob("*/clean")) == ["single-id", "unseen-content"]
    for suite in CLEAN_SUITES:
        clean = _records(bench / suite / "clean" / "recipes.jsonl")
        noise = _records(bench / suite / "noise" / "recipes.jsonl")
        where = [(r["id"], r["source_id"], r["crop"]) for r in clean]
        assert where == [(r["id"], r["source_id"], r["crop"]) for r in noise]  # same crops
        for rec in clean:
            assert rec["family"] == "clean" and rec["suite"] == suite
            assert rec["recipe"] == {"composer": "single", "level": "id", "steps": []}
            folder = bench / suite / "clean"
            gt, lq = (folder / rec["gt"]).read_bytes(), (folder / rec["lq"]).read_bytes()
            assert lq == gt  # a byte copy
            assert gt == (bench / suite / "noise" / rec["gt"]).read_bytes()  # the same crop


def test_clean_is_a_reserved_family_name() -> None:
    raw = tiny_params()["degradations"]
    raw["families"]["clean"] = raw["families"]["noise"]
    with pytest.raises(ConfigError, match="'clean' is reserved"):
        parse_section(raw, "degradations", DegradationsConfig)


def test_splits_and_held_out_respected(tmp_path: Path) -> None:
    pairs, bench = _run(tmp_path, train_pairs=60)
    train_sources = {r["source_id"] for r in _records(pairs / "train" / "pairs.jsonl")}
    assert train_sources <= {"a0000000000000a1", "a0000000000000a2"}  # train split, not held cat
    assert {r["source_id"] for r in _records(pairs / "val" / "pairs.jsonl")} == {"a0000000000000a3"}
    bench_sources = {
        r["source_id"] for p in bench.glob("single-*/*/recipes.jsonl") for r in _records(p)
    }
    assert bench_sources <= {"a0000000000000a4", "a0000000000000a5"}
    content = {r["source_id"] for p in bench.glob("unseen-content/*/*.jsonl") for r in _records(p)}
    assert content == {"a0000000000000a6"}
    for rec in _records(pairs / "train" / "pairs.jsonl"):
        families = {s["family"] for s in rec["recipe"]["steps"]}
        assert "haze" not in families and not {"blur", "jpeg"} <= families


def test_reproducible_and_worker_independent(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", workers=1)
    b = _run(tmp_path / "b", workers=2)
    for x, y in zip(a, b, strict=True):
        assert _tree_digest(x) == _tree_digest(y)


def test_failure_leaves_previous_outputs_and_no_staging(tmp_path: Path, monkeypatch) -> None:
    pairs, bench = _run(tmp_path)
    before = _tree_digest(bench)

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("girml.data.synthesize.apply_recipe", boom)
    spec, cfg = _configs()
    images = read_manifest(tmp_path / "clean" / "manifest.csv", tmp_path / "clean" / "images")
    with pytest.raises(RuntimeError, match="interrupted"):
        synthesize(images, spec, cfg, pairs, bench)
    assert _tree_digest(bench) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_removes_the_partial_output_and_names_the_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Before: "[Errno 28] No space left on device", naming no path."""
    import errno

    from PIL import Image

    pairs, bench = _run(tmp_path)
    before = _tree_digest(bench)
    written: list[int] = []

    def fills_up(self, fp, *args, **kwargs):  # the PNG writer, under atomic_path
        written.append(1)
        if len(written) > 3:  # some pairs are written first: a partial folder exists
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, fp, *args, **kwargs)

    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", fills_up)  # forked workers inherit it
    spec, cfg = _configs(workers=workers)
    images = read_manifest(tmp_path / "clean" / "manifest.csv", tmp_path / "clean" / "images")
    with pytest.raises(OSError) as info:
        synthesize(images, spec, cfg, pairs, bench)
    exc = info.value
    assert exc.errno == errno.ENOSPC and exc.filename == str(pairs)
    partial = tmp_path / ".pairs.partial"
    assert re.fullmatch(
        rf"No space left on device \(writing {re.escape(str(partial))}/\S+\.png; "
        rf"the partial output {re.escape(str(partial))} was removed\)",
        exc.strerror,
    ), exc.strerror
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert _tree_digest(bench) == before


def test_too_few_bench_crops_is_a_clear_error(tmp_path: Path) -> None:
    clean = make_clean_set(tmp_path / "clean", TINY_LAYOUT)
    spec, cfg = _configs(bench_per_family=500)
    images = read_manifest(clean / "manifest.csv", clean / "images")
    with pytest.raises(ValueError, match=r"single-id: only \d+ non-overlapping 32px crops"):
        synthesize(images, spec, cfg, tmp_path / "pairs", tmp_path / "bench")


def test_grid_crops_do_not_overlap() -> None:
    from girml.data.synthesize import CleanImage

    img = CleanImage("x", Path("x.png"), width=100, height=70, category="c", split="test")
    crops = [c for _, c in grid_crops([img], 32, per_image=10)]
    assert len(crops) == 6
    mask = torch.zeros(70, 100)
    for y, x, h, w in crops:
        mask[y : y + h, x : x + w] += 1
    assert mask.max() == 1


def test_whole_suite_holds_whole_test_photos(tmp_path: Path) -> None:
    _, bench = _run(tmp_path)
    folders = sorted(p.name for p in (bench / "whole").iterdir())
    assert folders == ["blur", "clean", "jpeg", "noise"]  # trained families (haze held out)
    for family in folders:
        records = _records(bench / "whole" / family / "recipes.jsonl")
        assert {r["source_id"] for r in records} == {"a0000000000000a4", "a0000000000000a5"}
        for rec in records:
            assert rec["crop"] == [0, 0, 96, 128] and rec["suite"] == "whole"  # full size
            gt = read_image(bench / "whole" / family / rec["gt"])
            assert gt.shape == (96, 128, 3)
            steps = rec["recipe"]["steps"]
            assert [s["family"] for s in steps] == ([] if family == "clean" else [family])
            assert rec["recipe"]["level"] == "id"
    gt, lq = (bench / "whole" / "clean" / d / "a0000000000000a4.png" for d in ("gt", "lq"))
    assert gt.read_bytes() == lq.read_bytes()


def test_whole_photos_limits_the_suite_and_moves_no_recipe(tmp_path: Path) -> None:
    _, all_photos = _run(tmp_path / "all")
    _, one = _run(tmp_path / "one", whole_photos=1)
    records = _records(one / "whole" / "noise" / "recipes.jsonl")
    assert [r["source_id"] for r in records] == ["a0000000000000a4"]  # the first by id
    same = [
        r
        for r in _records(all_photos / "whole" / "noise" / "recipes.jsonl")
        if r["id"] == "a0000000000000a4"
    ]
    assert same == records  # fewer photos: the same recipe for the one kept
    _, none = _run(tmp_path / "none", whole_photos=0)
    assert not (none / "whole").exists()


def test_several_held_content_categories(tmp_path: Path) -> None:
    # cat1 (a train and a test photo) is held out beside scientific
    pairs, bench = _run(tmp_path, unseen_content_category=["scientific", "cat1"])
    train_sources = {r["source_id"] for r in _records(pairs / "train" / "pairs.jsonl")}
    assert train_sources == {"a0000000000000a1"}  # cat0, train split: the only one left
    content = {r["source_id"] for p in bench.glob("unseen-content/*/*.jsonl") for r in _records(p)}
    assert content == {"a0000000000000a2", "a0000000000000a5", "a0000000000000a6"}
    with pytest.raises(ValueError, match=r"\['illustration'\] matches no clean image"):
        _run(tmp_path / "bad", unseen_content_category=["scientific", "illustration"])


def test_selection_set_is_the_validation_photos_whole_and_reduced(tmp_path: Path) -> None:
    pairs, _ = _run(tmp_path, select_side=64)
    records = _records(pairs / "select" / "pairs.jsonl")
    assert sorted(r["family"] for r in records) == ["blur", "clean", "jpeg", "noise"]
    assert {r["source_id"] for r in records} == {"a0000000000000a3"}  # the val photo
    for rec in records:
        assert rec["suite"] == "select" and rec["crop"] == [0, 0, 96, 128]
        gt = read_image(pairs / "select" / rec["gt"])
        assert gt.shape == (48, 64, 3)  # 128 px reduced by 2 to at most 64
    _run(tmp_path / "none", select_side=0)
    assert not (tmp_path / "none" / "pairs" / "select").exists()


def test_flat_crops_never_enter_a_benchmark(tmp_path: Path) -> None:
    clean = make_clean_set(tmp_path / "clean", TINY_LAYOUT)
    flat = read_image(clean / "images" / "a0000000000000a4.png")
    flat[:64, :64] = 120  # the test photo's first 32-px grid cells are one solid colour
    write_png(clean / "images" / "a0000000000000a4.png", flat)
    spec, cfg = _configs()
    images = read_manifest(clean / "manifest.csv", clean / "images")
    synthesize(images, spec, cfg, tmp_path / "pairs", tmp_path / "bench")
    for jsonl in (tmp_path / "bench").glob("single-*/*/recipes.jsonl"):
        for rec in _records(jsonl):
            y, x, _, _ = rec["crop"]
            assert not (rec["source_id"] == "a0000000000000a4" and y < 64 and x < 64), rec["id"]
