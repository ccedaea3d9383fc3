"""Fixtures of the interpretation tests: a tiny synthesized benchmark, evaluate's outputs and
one report written from them (built once for the whole folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from girml.config import DegradationsConfig
from girml.evaluation.bench import Bench
from girml.evaluation.report import ROW_COLUMNS
from girml.interpret.report import run_interpretation
from tests.factories import synthesize_tiny
from tests.interpret.common import CFG, nonlinear_tiny_model


@pytest.fixture(scope="package")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/ and bench/ (4 images of 32x32 per suite/family) from the synthesize stage."""
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="package")
def evaluated(data: Path) -> tuple[Path, Path]:
    """A fake ``eval.json`` and ``per_family.csv`` with a specialist, as evaluate writes them."""
    eval_json = data / "metrics" / "eval.json"
    eval_json.parent.mkdir(exist_ok=True)
    metrics = {
        "psnr_y.single-id": 27.5,
        "psnr_gain.single-id": 1.25,
        "psnr_y.unseen": 22.0,
        "psnr_gain.unseen": 0.1,
        "gir_score": 0.7,
        "generalization_gap": 1.1,
        "harm_rate.single-id": 0.25,
        "harm_rate.unseen": 0.5,
        "harm.clean_psnr_y.single-id": 41.5,
        "harm.worst_family_gain": -0.4,
        "best_baseline.noise.name": "nlm",
        "baselines.identity.gir_score": 0.0,
        "champion.promoted": True,
        "champion.reasons": ["first model"],
    }
    eval_json.write_text(json.dumps(metrics))
    per_family = data / "metrics" / "per_family.csv"
    per_family.write_text(
        "method,suite,family,n,psnr_y,psnr_y_input,psnr_gain\n"
        "model,single-id,noise,4,25.0,20.0,5.0\n"
        "model,single-ood,noise,4,21.0,18.0,3.0\n"
        "specialist:noise,single-id,noise,4,26.0,20.0,6.0\n"
        "specialist:noise,single-ood,noise,4,20.0,18.0,2.0\n"
    )
    return eval_json, per_family


@pytest.fixture(scope="package")
def per_image(data: Path) -> Path:
    """A fake ``per_image.csv``: the first clean crop of single-id turned to 14 dB, the first
    noise crop 3 dB worse, and another method's rows (ignored by the report)."""
    items = Bench(data / "bench").items
    clean = next(i for i in items if (i.suite, i.family) == ("single-id", "clean"))
    noise = next(i for i in items if (i.suite, i.family) == ("single-id", "noise"))
    path = data / "metrics" / "per_image.csv"
    path.parent.mkdir(exist_ok=True)
    lines = [",".join(ROW_COLUMNS)]
    for method, item, out, inp in (
        ("model", clean, 14.0, 100.0),
        ("model", noise, 22.0, 25.0),
        ("nlm", clean, 10.0, 100.0),
    ):
        lines.append(
            f"{method},{item.suite},{item.family},{item.id},src,{item.level},"
            f"{out},0.9,{out},0.9,{inp},0.9,"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="package")
def report(
    data: Path,
    spec: DegradationsConfig,
    evaluated: tuple[Path, Path],
    per_image: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict]:
    """The report folder written by :func:`run_interpretation` and the result it returned."""
    out = tmp_path_factory.mktemp("report")
    result = run_interpretation(
        nonlinear_tiny_model(),
        data / "bench",
        spec,
        CFG,
        out,
        eval_json=evaluated[0],
        per_family_csv=evaluated[1],
        clean_dir=data / "clean",
        per_image_csv=per_image,
    )
    return out, result
