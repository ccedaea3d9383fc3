"""Record models at the file boundary: pair/recipe JSONL records and the tuned overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from girml.config import ConfigError
from girml.data.records import (
    BenchContent,
    BenchPair,
    PairRecord,
    TrainPair,
    read_jsonl,
    write_jsonl,
)
from girml.degradations import Recipe, Step
from girml.tuning.results import load_tuned_overrides

BLUR = Step("gaussian_blur", "blur", {"sigma": 1.8802991327489016})
NOISE = Step("gaussian_noise", "noise", {"seed": 1427853177, "sigma": 46.73654360723417})
RECIPE = Recipe("mixed", "id", (BLUR, NOISE))


def _raw(**changes: Any) -> dict[str, Any]:
    """A record as synthesize writes it (a plain mapping), with ``changes`` laid over it."""
    raw = {
        "id": "train-000007",
        "gt": "gt/train-000007.png",
        "lq": "lq/train-000007.png",
        "source_id": "a0000000000000a1",
        "category": "cat0",
        "crop": [43, 40, 32, 32],
        "suite": "train",
        "family": "blur+noise",
        "recipe": RECIPE.to_dict(),
    }
    return {**raw, **changes}


def _one_step(op: str, family: str) -> str:
    """A record line whose recipe is one parameterless step ``op`` filed under ``family``."""
    step = {"op": op, "family": family, "params": {}}
    return json.dumps(_raw(recipe={"composer": "single", "level": "id", "steps": [step]}))


def _jsonl(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_record_round_trips_byte_for_byte(tmp_path: Path) -> None:
    raw = [_raw(), _raw(id="train-000008", crop=[0, 8, 32, 32], suite="val")]
    # the line format synthesize has always written: keys sorted, nested ones too
    written = "".join(json.dumps(r, sort_keys=True) + "\n" for r in raw)
    path = _jsonl(tmp_path / "pairs.jsonl", *written.splitlines())
    records = read_jsonl(path, PairRecord)
    assert [r.id for r in records] == ["train-000007", "train-000008"]
    assert records[0].recipe == RECIPE and records[0].crop == (43, 40, 32, 32)
    write_jsonl(tmp_path / "again.jsonl", records)
    assert (tmp_path / "again.jsonl").read_text(encoding="utf-8") == written
    built = PairRecord(**_raw(crop=(43, 40, 32, 32), recipe=RECIPE))  # as synthesize builds it
    assert built == records[0]


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "pairs.jsonl", json.dumps(_raw()), "", "  ", json.dumps(_raw(gt=1)))
    with pytest.raises(ValueError, match=r"pairs\.jsonl:4: field 'gt'"):
        read_jsonl(path, PairRecord)
    assert read_jsonl(_jsonl(tmp_path / "empty.jsonl", ""), PairRecord) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (json.dumps(_raw(gt=None)), r"field 'gt': Input should be a valid string"),
        (
            json.dumps({k: v for k, v in _raw().items() if k != "gt"}),
            r"record lacks key\(s\) \['gt'\]",
        ),
        (
            json.dumps({k: v for k, v in _raw().items() if k not in ("lq", "crop")}),
            r"record lacks key\(s\) \['crop', 'lq'\]",
        ),
        (json.dumps(_raw(id=7)), r"field 'id': Input should be a valid string \(got 7\)"),
        (json.dumps(_raw(crop=[1, "a", 3, 4])), r"field 'crop\[1\]': Input should be a valid int"),
        (json.dumps(_raw(crop=[1, 2, 3])), r"field 'crop\[3\]': Field required"),
        (json.dumps(_raw(recipe=5)), r"field 'recipe': recipe must be a mapping, got 5"),
        (
            json.dumps(_raw(recipe={"composer": "single", "level": "id"})),
            r"field 'recipe': recipe keys must be",
        ),
        (  # a step filed under a family its op does not belong to
            _one_step("gaussian_blur", "haze"),
            r"field 'recipe': step 'gaussian_blur' belongs to family 'blur', not 'haze'",
        ),
        (
            _one_step("jpg", "jpeg"),
            r"field 'recipe': unknown degradation op 'jpg'; available: .*jpeg",
        ),
        ('{"id": "a", ', r"not valid JSON"),
        ("[1, 2]", r"record must be a JSON object, got \[1, 2\]"),
    ],
)
def test_a_bad_record_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = _jsonl(tmp_path / "recipes.jsonl", json.dumps(_raw()), json.dumps(_raw()), line)
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: ") + message):
        read_jsonl(path, PairRecord)


@pytest.mark.parametrize(
    ("model", "keys", "missing"),
    [
        (TrainPair, {"id", "gt", "lq", "family"}, "['family', 'lq']"),
        (BenchPair, {"id", "gt", "lq", "source_id", "recipe"}, "['lq', 'recipe', 'source_id']"),
        (PairRecord, set(_raw()), "['category', 'crop', 'family', 'lq', 'recipe', 'source_id'"),
    ],
)
def test_each_reader_needs_its_keys_only(
    tmp_path: Path, model: type[BaseModel], keys: set[str], missing: str
) -> None:
    only = {k: v for k, v in _raw().items() if k in keys}
    (rec,) = read_jsonl(_jsonl(tmp_path / "a.jsonl", json.dumps(only | {"extra": 1})), model)
    assert set(rec.model_dump()) == keys  # unknown keys ignored
    path = _jsonl(tmp_path / "b.jsonl", json.dumps({"id": "a", "gt": "gt/a.png"}))
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: record lacks key(s) {missing}")):
        read_jsonl(path, model)


def test_bench_content_tolerates_records_without_category(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "recipes.jsonl", '{"id": "0001"}', json.dumps(_raw()))
    old, new = read_jsonl(path, BenchContent)
    assert (old.id, old.category, old.source_id) == ("0001", None, None)
    assert (new.category, new.source_id) == ("cat0", "a0000000000000a1")


def _best(tmp_path: Path, params: Any) -> Path:
    path = tmp_path / "tune" / "best.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"metric": "val.psnr_y_model", "score": 1.0, "params": params}))
    return path


def test_tuned_overrides_keep_only_what_the_file_sets(tmp_path: Path) -> None:
    path = _best(tmp_path, {"train": {"lr": 0.002, "loss": "l1"}})
    assert load_tuned_overrides(path) == {"train": {"lr": 0.002, "loss": "l1"}}
    assert load_tuned_overrides(_best(tmp_path, {})) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"train": {"lrr": 1, "lr": 1e-3, "stepz": 2}},
            r"params.train has unknown fields \['lrr', 'stepz'\]",
        ),
        ({"optim": {"lr": 1}}, "params.optim must be a model/train mapping"),
        ({"model": [16]}, "params.model must be a model/train mapping"),
        (
            {"train": {"lr": "fast"}},
            r"params.train.lr: Input should be a valid number.*\(got 'fast'\)",
        ),
        (
            {"model": {"width": 2}},
            r"params.model.width: Input should be greater than or equal to 4",
        ),
        ({"train": {"loss": "l3"}}, r"params.train.loss: Input should be 'l1'"),
        (
            {"train": {"betas": [0.9, "x"]}},
            r"params.train.betas\[1\]: Input should be a valid number",
        ),
        ("lr=1", "needs a `params` mapping"),
    ],
)
def test_bad_tuned_overrides_are_refused_naming_the_file(
    tmp_path: Path, params: Any, message: str
) -> None:
    path = _best(tmp_path, params)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: ") + message):
        load_tuned_overrides(path)
