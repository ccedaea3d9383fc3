"""girml.interpret.inputs: what the interpret stage reads and the model's samples of it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from girml.evaluation.bench import Bench, BenchItem
from girml.interpret.inputs import (
    UNKNOWN_CATEGORY,
    bench_categories,
    load_inputs,
    read_per_family,
    run_samples,
    select_items,
)
from tests.interpret.common import nonlinear_tiny_model


def item(suite: str, family: str, index: int, gt: bool = True) -> BenchItem:
    return BenchItem(
        suite, family, str(index), "", "id", Path("lq.png"), Path("gt.png") if gt else None
    )


def test_select_items_takes_the_first_of_every_group_in_order() -> None:
    items = [
        item("single-id", "noise", 0),
        item("single-id", "blur", 0),
        item("single-id", "noise", 1, gt=False),  # no ground truth: skipped
        item("single-id", "noise", 2),
        item("single-id", "noise", 3),
        item("unseen", "noise", 0),
    ]
    chosen = select_items(items, per_group=2)
    assert [(i.suite, i.family, i.id) for i in chosen] == [
        ("single-id", "noise", "0"),
        ("single-id", "blur", "0"),
        ("single-id", "noise", "2"),
        ("unseen", "noise", "0"),
    ]
    with pytest.raises(ValueError, match="per_group must be >= 1, got 0"):
        select_items(items, 0)


def test_read_per_family_parses_numbers_and_keeps_names(tmp_path: Path) -> None:
    path = tmp_path / "per_family.csv"
    path.write_text(
        "method,suite,family,n,psnr_gain\nmodel,single-id,noise,4,1.5\nnlm,mixed,3,2,\n"
    )
    rows = read_per_family(path)
    assert rows[0] == {
        "method": "model",
        "suite": "single-id",
        "family": "noise",
        "n": 4.0,
        "psnr_gain": 1.5,
    }
    assert rows[1]["family"] == "3" and math.isnan(rows[1]["psnr_gain"])  # empty cell: NaN


def test_load_inputs_reads_what_exists(
    data: Path, evaluated: tuple[Path, Path], tmp_path: Path
) -> None:
    eval_json, per_family = evaluated
    inputs = load_inputs(data / "bench", eval_json, per_family)
    assert inputs.eval_metrics == json.loads(eval_json.read_text())
    assert inputs.per_family is not None and len(inputs.per_family) == 4
    assert len(inputs.bench.items) > 0
    missing = load_inputs(data / "bench", tmp_path / "eval.json", None)
    assert missing.eval_metrics is None and missing.per_family is None
    assert missing.per_image is None
    with pytest.raises(FileNotFoundError):
        load_inputs(tmp_path / "no-bench", None, None)


def test_bench_categories_fall_back_to_the_manifest(data: Path, tmp_path: Path) -> None:
    categories = bench_categories(data / "bench")
    assert set(categories.values()) == {"cat0", "cat1", "scientific"}  # recorded per pair
    bench = tmp_path / "bench" / "single-id" / "noise"
    bench.mkdir(parents=True)
    records = (data / "bench" / "single-id" / "noise" / "recipes.jsonl").read_text().splitlines()
    stripped = []
    for line in records:
        record = json.loads(line)
        record.pop("category", None)  # an older benchmark
        stripped.append(json.dumps(record))
    (bench / "recipes.jsonl").write_text("\n".join(stripped) + "\n")
    old = bench_categories(tmp_path / "bench", data / "clean")
    assert set(old.values()) <= {"cat0", "cat1", "scientific"} and len(old) == len(records)
    assert set(bench_categories(tmp_path / "bench").values()) == {UNKNOWN_CATEGORY}


def test_run_samples_restores_each_item_once_with_its_features(data: Path) -> None:
    bench = Bench(data / "bench")
    items = select_items(bench.items, 2)[:5]
    model = nonlinear_tiny_model()
    feats, samples = run_samples(model, bench, items, {}, "bottleneck")
    assert feats.shape == (5, 8) and feats.dtype == np.float32
    assert [s.item for s in samples] == items
    for s in samples:
        assert s.category == UNKNOWN_CATEGORY  # none given
        assert s.restored.shape == s.gt.shape == s.lq.shape and s.restored.dtype == np.uint8
        assert s.gain == pytest.approx(s.psnr_out - s.psnr_in)
        assert s.group == f"{s.item.suite}/{s.item.family}"
    again, _ = run_samples(model, bench, items, {}, "bottleneck")
    np.testing.assert_array_equal(feats, again)
    with pytest.raises(ValueError, match="no benchmark image"):
        run_samples(model, bench, [], {}, "bottleneck")


def test_load_inputs_reads_the_per_image_rows(data: Path, per_image: Path, tmp_path: Path) -> None:
    inputs = load_inputs(data / "bench", None, None, per_image)
    assert inputs.per_image is not None and len(inputs.per_image) == 3
    assert inputs.per_image[0]["psnr_y"] == 14.0 and inputs.per_image[0]["method"] == "model"
    bad = tmp_path / "per_image.csv"
    bad.write_text("method,suite\nmodel,single-id\n")
    with pytest.raises(ValueError, match="missing column"):
        load_inputs(data / "bench", None, None, bad)
