"""The fp16 check (girml/artifacts/fp16.py): the rule on given numbers, and the numbers measured
as the evaluate stage measures them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from girml.artifacts.fp16 import Fp16Check, measure_fp16, suite_psnr_y
from girml.artifacts.release import CARD_FILE, load_release
from girml.config import DegradationsConfig, EvaluateConfig
from girml.evaluation.bench import Bench
from girml.evaluation.harness import evaluate_method
from girml.evaluation.report import headline, summarize
from girml.evaluation.restorers import model_restorer
from girml.evaluation.scores import fit_pristine_niqe
from tests.artifacts.common import TINY, export, tiny_model
from tests.factories import synthesize_tiny


def test_fp16_rule_on_given_numbers(tmp_path: Path, spec: DegradationsConfig) -> None:
    fp32 = {"single-id": 30.0, "unseen": 25.0}
    assert Fp16Check(fp32, {"single-id": 30.004, "unseen": 24.991}).ok
    refused = Fp16Check(fp32, {"single-id": 30.0, "unseen": 24.98})
    assert not refused.ok and refused.max_abs_diff == pytest.approx(0.02)
    assert not Fp16Check(fp32, {"single-id": float("nan"), "unseen": 25.0}).ok
    with pytest.raises(ValueError, match="same non-empty suites"):
        Fp16Check(fp32, {"single-id": 30.0})

    out = tmp_path / "release"
    with pytest.raises(ValueError, match=r"fp16 storage refused: .*unseen -0\.0200"):
        export(tmp_path, spec, tiny_model(7), out, fp16_check=refused)
    assert not out.exists()


def test_fp16_measured_on_a_real_bench(tmp_path: Path, spec: DegradationsConfig) -> None:
    root = synthesize_tiny(tmp_path / "data")
    model = tiny_model(8)
    check = measure_fp16(model, TINY, root / "bench")
    assert set(check.fp32) == {"single-id", "single-ood", "mixed", "unseen", "unseen-content"}
    # the fp32 numbers are the evaluate stage's psnr_y.<suite> for the same model
    cfg = EvaluateConfig(niqe_patch_size=16)
    rows = evaluate_method(
        model_restorer(model, None),
        Bench(root / "bench"),
        cfg,
        fit_pristine_niqe(root / "clean", 16),
        None,
    )
    stage = headline(summarize(rows))
    for suite, value in check.fp32.items():
        assert value == pytest.approx(stage[f"psnr_y.{suite}"], abs=1e-9)
    assert check.ok, check.describe()

    out = tmp_path / "release"
    result = export(tmp_path, spec, model, out, fp16_check=check)
    assert result.dtype == "float16"
    assert yaml.safe_load((out / "config.yaml").read_text())["weights"]["dtype"] == "float16"
    loaded = load_release(out)
    assert next(loaded.parameters()).dtype == torch.float32
    assert suite_psnr_y(loaded, Bench(root / "bench")) == pytest.approx(check.fp16, abs=1e-9)
    assert "fp16 storage: re-evaluated on the benchmark suites" in (out / CARD_FILE).read_text()
    with pytest.raises(FileNotFoundError, match="release in float32"):
        measure_fp16(model, TINY, tmp_path / "no-bench")
