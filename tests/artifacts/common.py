"""What the release tests share: a tiny model, per-family rows, provenance, a release folder and
a ``benchmarks/real_photos.py --json`` record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from girml.artifacts.card import Coverage
from girml.artifacts.card_metrics import CardMetrics, card_metrics
from girml.artifacts.provenance import Provenance, TrainingData, spec_sha256
from girml.artifacts.release import ReleaseResult, export_release
from girml.config import DegradationsConfig, ModelConfig
from girml.models import build_model
from tests.factories import synthesize_tiny, tiny_params, write_params

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0, sca_max=True)
SUITES = ("single-id", "unseen")
FAMILIES = ("noise", "blur")
# (method, suite, family) -> psnr_y; the input (identity) scores 20 dB everywhere
PSNR = {
    ("model", "single-id", "noise"): 26.0,
    ("model", "single-id", "blur"): 19.5,  # worse than the input: a known limit
    ("model", "unseen", "noise"): 24.0,
    ("model", "unseen", "blur"): 21.0,
    ("wiener", "single-id", "noise"): 21.0,
    ("wiener", "single-id", "blur"): 23.0,  # the best classical beats the model
    ("wiener", "unseen", "noise"): 20.5,
    ("wiener", "unseen", "blur"): 20.0,
    ("nlm", "single-id", "noise"): 25.0,
    ("nlm", "single-id", "blur"): 20.0,
    ("nlm", "unseen", "noise"): 23.0,
    ("nlm", "unseen", "blur"): 19.0,
}
HARM = {
    "harm.clean_psnr_y.single-id": 48.25,
    "harm_rate.single-id": 0.25,
    "harm.worst_family_gain": -0.5,
}


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(TINY)
    with torch.no_grad():  # a fresh NAFNet is near identity; make every weight matter
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def row(method: str, suite: str, family: str, psnr_y: float, psnr_y_input: float = 20.0) -> dict:
    return {
        "method": method,
        "suite": suite,
        "family": family,
        "n": 4,
        "psnr": psnr_y - 0.5,
        "ssim": 0.7,
        "psnr_y": psnr_y,
        "ssim_y": 0.8,
        "psnr_y_input": psnr_y_input,
        "ssim_y_input": 0.6,
        "psnr_gain": psnr_y - psnr_y_input,
        "harm_rate": 0.0,
        "niqe": 7.0,
    }


def per_family_rows(clean: bool = True) -> list[dict]:
    """Rows like metrics/per_family.csv: PSNR above, identity, and (``clean``) the clean family.

    The model harms half of the single-id/blur images (harm_rate 0.5 there).
    """
    rows = [row(method, suite, family, psnr_y) for (method, suite, family), psnr_y in PSNR.items()]
    rows += [row("identity", suite, family, 20.0) for suite in SUITES for family in FAMILIES]
    rows[1]["harm_rate"] = 0.5
    if clean:  # input = ground truth: capped at 100 dB; never part of suite means
        rows += [row("model", "single-id", "clean", 48.25, 100.0)]
        rows += [
            row(m, "single-id", "clean", v, 100.0) for m, v in [("nlm", 60.0), ("identity", 100.0)]
        ]
        for r in rows[-3:]:
            r["harm_rate"] = float("nan")
    else:
        for r in rows:
            del r["harm_rate"]
    return rows


def write_metrics(metrics_dir: Path, version: int, harm: bool = True) -> None:
    metrics_dir.mkdir(parents=True, exist_ok=True)
    rows = per_family_rows()
    with (metrics_dir / "per_family.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    eval_json = {"gir_score": 1.0, "champion.version": version, "champion.previous_version": None}
    if harm:
        eval_json |= HARM
    (metrics_dir / "eval.json").write_text(json.dumps(eval_json), encoding="utf-8")


def provenance(tmp_path: Path, spec: DegradationsConfig, ids: int = 3) -> Provenance:
    return Provenance(
        source="models/latest",
        registered_model="gir-restorer",
        registered_version=3,
        run_id="0123abcd",
        git_commit="f" * 40,
        git_dirty="false",
        params_hash="aa11bb22cc33dd44",
        train_command="girml train --params params.yaml",
        release_command="girml release --model models/latest -o models/release",
        steps=1900,
        train_seconds=553.6,
        hardware="Test CPU, 2 cores (CPU)",
        degradation_spec_sha256=spec_sha256(spec),
        degradation_spec_source="params.yaml: degradations",
        dvc_hashes={"data/pairs": "9e03.dir"},
        data=TrainingData(
            manifest="data/clean/manifest.csv",
            manifest_sha256="b" * 64,
            n_clean_train=ids,
            clean_train_ids=[f"{i:016x}" for i in range(ids)],
            clean_train_ids_sha256="c" * 64,
            pairs="data/pairs/train/pairs.jsonl",
            pairs_sha256="d" * 64,
            n_train_pairs=24,
        ),
    )


def metrics_for(rows: list[dict], harm: bool = True) -> CardMetrics:
    eval_json = {"champion.version": 3, **(HARM if harm else {})}
    return card_metrics(rows, "model", ["identity", "wiener", "nlm"], eval_json)


def coverage(spec: DegradationsConfig) -> Coverage:
    return Coverage.from_spec(spec, "scientific", 64)


def export(
    tmp_path: Path, spec: DegradationsConfig, model: torch.nn.Module, out: Path, **kwargs
) -> ReleaseResult:
    return export_release(
        model,
        TINY,
        out,
        provenance=provenance(tmp_path, spec),
        metrics=metrics_for(per_family_rows()),
        coverage=coverage(spec),
        **kwargs,
    )


def project_files(root: Path) -> None:
    """params.yaml and data/ (clean, pairs, bench) of a tiny project."""
    params = tiny_params()
    params["evaluate"] = {"crop_border": 0, "baselines": ["identity", "wiener", "nlm"]}
    write_params(root / "params.yaml", params)
    synthesize_tiny(root / "data")


def real_record(weights_sha256: str | None) -> dict:
    """A small hand-written ``benchmarks/real_photos.py --json`` record (2 degradations)."""

    def method_row(psnr_y: float | None, gain: float | None, shift: float | None) -> dict:
        return {"psnr_y": psnr_y, "gain": gain, "shift": shift}

    return {
        "command": "python benchmarks/real_photos.py --model models/release --json real.json",
        "model": "models/release",
        "weights_sha256": weights_sha256,
        "methods": ["model", "identity", "nlm"],
        "photos": [
            {"path": "/x/grace_hopper.jpg", "crops": 2, "width": 512, "height": 600},
            {"path": "/y/f3.jpg", "crops": 1},  # an older record: no size
        ],
        "crops": 3,
        "crop": 256,
        "seed": 0,
        "harm_db": -0.1,
        "rows": {
            "gaussian_noise_25": {
                "psnr_y_input": 20.5,
                "shift_input": 0.4,
                "methods": {"model": method_row(27.25, 6.75, 0.3), "nlm": method_row(25, 4.5, 1)},
                "best_classical": "nlm",
                "best_classical_gain": 4.5,
            },
            "haze_b1.0_A0.9": {
                "psnr_y_input": 12.0,
                "shift_input": 30.0,
                "methods": {"model": method_row(11.5, -0.5, 31.25), "nlm": method_row(12, 0, 30)},
                "best_classical": None,  # every classical method failed: NaN
                "best_classical_gain": None,
            },
            "clean": {
                "psnr_y_input": 100.0,
                "shift_input": 0.0,
                "methods": {"model": method_row(44.5, None, 0.2), "nlm": method_row(40, None, 0)},
                "best_classical": None,
                "best_classical_gain": None,
            },
        },
        "mean_degraded": {"psnr_y_input": 16.25, "shift_input": 15.2, "best_classical_gain": 4.5},
        "per_method": {
            "model": {"mean_gain": 3.125, "mean_shift": 15.775, "harm_count": 1, "nan_rows": 0},
            "nlm": {"mean_gain": 2.25, "mean_shift": 15.5, "harm_count": 0, "nan_rows": 0},
        },
    }
