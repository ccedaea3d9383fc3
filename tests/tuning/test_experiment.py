"""Where the experiment lives and when it resumes (girml/tuning/experiment.py); a real resume:
tests/tuning/test_search.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.config import DegradationsConfig
from girml.tuning.experiment import search_fingerprint, storage_uri
from tests.factories import tiny_params
from tests.tuning.common import BASE, CFG, MODEL, tune_cfg


def test_results_go_to_the_storage_path_or_under_the_work_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert storage_uri(CFG, tmp_path / "work") == str((tmp_path / "work/ray_results").resolve())
    s3 = tune_cfg(storage_path="s3://bucket/tune/")
    assert storage_uri(s3, tmp_path) == "s3://bucket/tune"  # a URI is kept, minus the slash
    monkeypatch.chdir(tmp_path)
    assert storage_uri(tune_cfg(storage_path="results"), Path("w")) == str(tmp_path / "results")


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "pairs.jsonl").write_text(f'{{"split": "{split}"}}\n')
    return tmp_path


def test_the_fingerprint_follows_what_the_search_computes(pairs: Path) -> None:
    base = search_fingerprint(CFG, MODEL, BASE, pairs, None)
    assert len(base) == 64 and base == search_fingerprint(CFG, MODEL, BASE, pairs, None)
    spec = DegradationsConfig.model_validate(tiny_params()["degradations"])
    changed = [
        search_fingerprint(tune_cfg(seed=1), MODEL, BASE, pairs, None),
        search_fingerprint(CFG, MODEL.model_copy(update={"width": 8}), BASE, pairs, None),
        search_fingerprint(CFG, MODEL, BASE.model_copy(update={"lr": 2e-3}), pairs, None),
        search_fingerprint(CFG, MODEL, BASE, pairs, spec),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    (pairs / "val" / "pairs.jsonl").write_text('{"split": "other"}\n')
    assert search_fingerprint(CFG, MODEL, BASE, pairs, None) != base


def test_where_and_how_fast_the_search_runs_is_not_fingerprinted(pairs: Path) -> None:
    base = search_fingerprint(CFG, MODEL, BASE, pairs, None)
    elsewhere = tune_cfg(
        address="10.0.0.9:6379",
        storage_path="s3://bucket/tune",
        time_budget_s=60.0,
        cpus_per_trial=2.0,
        gpus_per_trial=1.0,
    )
    assert search_fingerprint(elsewhere, MODEL, BASE, pairs, None) == base
    cadence = BASE.model_copy(update={"log_every": 7, "num_workers": 2})
    assert search_fingerprint(CFG, MODEL, cadence, pairs, None) == base
