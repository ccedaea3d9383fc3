"""Evaluation harness, reports, champion promotion and specialists on a tiny synthesized bench.

Real parts throughout: a bench written by the synthesize stage, the real baselines and NIQE, a
temporary SQLite MLflow store with registered models.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from pydantic import ValidationError

from girml.config import (
    DegradationsConfig,
    EvaluateConfig,
    ModelConfig,
    PromotionConfig,
    TrainConfig,
)
from girml.evaluation import harness
from girml.evaluation.harness import (
    MAX_PSNR,
    Bench,
    evaluate_baselines,
    evaluate_method,
    fit_pristine_niqe,
    model_restorer,
)
from girml.evaluation.promotion import (
    Decision,
    RegisteredModel,
    SpecialistInputs,
    decide,
    evaluate_and_promote,
    group_psnr,
    registered_model,
)
from girml.evaluation.report import (
    HARM_MARGIN_DB,
    best_baselines,
    gir_score,
    harm_metrics,
    harm_rate,
    headline,
    summarize,
)
from girml.evaluation.specialists import specialist_spec, train_specialists
from girml.imageio import ImageReadError, write_png
from girml.metrics import LpipsMetric, NiqeModel, load_lpips, psnr
from girml.models import build_model
from girml.models.store import read_model_config, save_model_dir, training_run
from girml.tracking.mlflow import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    get_alias_version,
    log_and_register_model,
    start_run,
)
from tests.factories import textured_image

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TINY_TRAIN = TrainConfig(
    steps=2, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0
)
ROW_KEYS = [
    "method",
    "suite",
    "family",
    "id",
    "source_id",
    "level",
    "psnr",
    "ssim",
    "psnr_y",
    "ssim_y",
    "psnr_y_input",
    "ssim_y_input",
    "niqe",
]
# per suite of tiny_params(): the family folders synthesize writes
TINY_GROUPS = {
    "single-id": {"noise", "blur", "jpeg", "clean"},
    "single-ood": {"noise", "blur", "jpeg"},
    "mixed": {"blur+noise"},
    "unseen": {"haze", "blur+jpeg"},
    "unseen-content": {"noise", "blur", "jpeg", "clean"},
}
N_DEGRADED_GROUPS = sum(len(f - {"clean"}) for f in TINY_GROUPS.values())
HARM_KEYS = {f"harm_rate.{s}" for s in TINY_GROUPS} | {
    "harm.clean_psnr_y.single-id",
    "harm.clean_psnr_y.unseen-content",
    "harm.worst_family_gain",
}


def identity(lq: np.ndarray) -> np.ndarray:
    return lq.copy()


# --------------------------------------------------------------------------- fixtures
# (data, pristine, bench and registry are in conftest.py)


@pytest.fixture(scope="module")
def identity_rows(bench: Bench, pristine: NiqeModel) -> list[dict]:
    return evaluate_method(identity, bench, CFG, pristine, None, method="identity")


CFG = EvaluateConfig(niqe_patch_size=16, baselines=["identity", "deblock", "gamma"])


def tiny_model(seed: int, noise: float) -> torch.nn.Module:
    """A tiny NAFNet; ``noise`` perturbs its (near-identity) init, making it worse."""
    torch.manual_seed(seed)
    model = build_model(TINY)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(noise * torch.randn_like(param))
    return model.eval()


def register(model: torch.nn.Module, root: Path, model_dir: Path) -> tuple[str, int]:
    """Log and register ``model`` like the train stage; write its folder and ``train.json``.

    The run record goes to ``root/metrics/train.json`` (:data:`TRAIN_JSON` under ``root``).
    """
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with start_run("gir", root, log_system_metrics=False) as run:
        version = log_and_register_model(model, example, model_cfg=TINY)
    save_model_dir(model, TINY, model_dir, extra={"train": TINY_TRAIN})
    record = {
        "weights_sha256": read_model_config(model_dir)["weights_sha256"],
        "mlflow_run_id": run.info.run_id,
        "registered_version": version,
    }
    (root / TRAIN_JSON).parent.mkdir(parents=True, exist_ok=True)
    (root / TRAIN_JSON).write_text(json.dumps({"steps": 1, "run": record}), encoding="utf-8")
    return run.info.run_id, version


TRAIN_JSON = Path("metrics/train.json")


def test_registered_model_reads_train_json_and_older_folders(tmp_path: Path) -> None:
    folder = save_model_dir(tiny_model(0, 0.0), TINY, tmp_path / "latest")
    sha = read_model_config(folder)["weights_sha256"]
    train_json = tmp_path / "train.json"
    record = {"weights_sha256": sha, "mlflow_run_id": "r1", "registered_version": 3}
    train_json.write_text(json.dumps({"run": record}))
    assert registered_model(folder, train_json) == RegisteredModel("r1", 3)
    with pytest.raises(ValueError, match=r"config\.yaml has no mlflow\.run_id"):
        registered_model(folder)  # the folder alone does not know its run
    # a train.json that describes other weights is not this folder's
    train_json.write_text(json.dumps({"run": {**record, "weights_sha256": "0" * 64}}))
    with pytest.raises(ValueError, match=r"train\.json \(run\) or .*no mlflow\.run_id"):
        registered_model(folder, train_json)
    # folders written before the run record moved to train.json name it themselves
    old = save_model_dir(
        tiny_model(0, 0.0),
        TINY,
        tmp_path / "old",
        extra={"mlflow": {"run_id": "r0", "registered_version": 2}, "hardware": "Old CPU"},
    )
    assert registered_model(old, train_json) == RegisteredModel("r0", 2)
    assert training_run(old, tmp_path / "missing.json").hardware == "Old CPU"


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


# --------------------------------------------------------------------------- harness


def test_rows_are_complete_and_identity_gains_nothing(
    bench: Bench, identity_rows: list[dict]
) -> None:
    assert len(identity_rows) == len(bench) == 4 * sum(len(f) for f in TINY_GROUPS.values())
    assert all(list(row) == ROW_KEYS for row in identity_rows)
    groups = {}
    for row in identity_rows:
        groups.setdefault(row["suite"], set()).add(row["family"])
        assert row["psnr_y"] == row["psnr_y_input"] and row["ssim_y"] == row["ssim_y_input"]
        assert row["level"] == ("ood" if row["suite"] == "single-ood" else "id")
        assert math.isfinite(row["niqe"])
        assert row["ssim"] == 1 if row["family"] == "clean" else 0 < row["ssim"] < 1
    assert groups == TINY_GROUPS
    assert list(groups) == list(TINY_GROUPS)  # suites in the design's order
    per_family = summarize(identity_rows)
    assert len(per_family) == sum(len(f) for f in TINY_GROUPS.values())
    assert all(row["psnr_gain"] == 0 and row["n"] == 4 for row in per_family)
    head = headline(per_family, "identity")
    assert head["gir_score"] == 0 and head["generalization_gap"] == 0
    # identity does no harm: nothing made worse, clean images untouched (PSNR at the cap)
    assert {k: v for k, v in head.items() if k.startswith("harm")} == {
        **{f"harm_rate.{s}": 0.0 for s in TINY_GROUPS},
        "harm.clean_psnr_y.single-id": MAX_PSNR,
        "harm.clean_psnr_y.unseen-content": MAX_PSNR,
        "harm.worst_family_gain": 0.0,
    }
    clean = [r for r in identity_rows if r["family"] == "clean"]
    assert len(clean) == 8 and all(r["psnr_y_input"] == MAX_PSNR for r in clean)


def test_brightness_shift_harms_every_image(bench: Bench, pristine: NiqeModel) -> None:
    def brighter(lq: np.ndarray) -> np.ndarray:
        return np.clip(lq.astype(np.int16) + 40, 0, 255).astype(np.uint8)

    rows = evaluate_method(brighter, bench, CFG, pristine, None, method="bright")
    head = headline(summarize(rows), "bright")
    assert all(head[f"harm_rate.{s}"] == 1.0 for s in TINY_GROUPS)
    for suite in ("single-id", "unseen-content"):
        expected = np.mean(
            [
                psnr(brighter(gt), gt, test_y=True)
                for item in bench.items
                if (item.suite, item.family) == (suite, "clean")
                for _, gt in [bench.load(item)]
            ]
        )
        assert head[f"harm.clean_psnr_y.{suite}"] == pytest.approx(expected)
        assert 10 < expected < 30  # about 40 levels brighter, less where 255 clips


def test_perfect_restorer_scores_clipped_psnr(bench: Bench, pristine: NiqeModel) -> None:
    truth = {}
    for item in bench.items:
        lq, gt = bench.load(item)
        truth[lq.tobytes()] = gt

    def oracle(lq: np.ndarray) -> np.ndarray:
        return truth[lq.tobytes()]

    rows = evaluate_method(oracle, bench, CFG, pristine, None, method="oracle")
    assert all(r["psnr"] == r["psnr_y"] == MAX_PSNR for r in rows)
    assert all(r["ssim"] == pytest.approx(1.0) for r in rows)
    head = headline(summarize(rows), "oracle")
    assert head["psnr_y.single-id"] == MAX_PSNR
    assert 0 < head["gir_score"] < MAX_PSNR
    json.dumps(head, allow_nan=False)  # finite, so valid JSON


def test_input_scores_are_computed_once_per_image(
    data: Path, pristine: NiqeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"y": 0}
    real_psnr = harness.psnr

    def counting(a, b, crop_border=0, test_y=False):
        calls["y"] += test_y
        return real_psnr(a, b, crop_border, test_y)

    monkeypatch.setattr(harness, "psnr", counting)
    fresh = Bench(data / "bench")
    evaluate_method(identity, fresh, CFG, pristine, None, method="a")
    evaluate_method(identity, fresh, CFG, pristine, None, method="b")
    assert calls["y"] == 3 * len(fresh)  # output of a, output of b, the input once


def test_crop_border_is_applied(bench: Bench, pristine: NiqeModel) -> None:
    def dark_border(lq: np.ndarray) -> np.ndarray:
        out = lq.copy()
        out[:4], out[-4:], out[:, :4], out[:, -4:] = 0, 0, 0, 0
        return out

    plain = evaluate_method(dark_border, bench, CFG, pristine, None, method="m")
    cropped_cfg = CFG.model_copy(update={"crop_border": 4})
    cropped = evaluate_method(dark_border, bench, cropped_cfg, pristine, None, method="m")
    assert all(c["psnr_y"] == c["psnr_y_input"] for c in cropped)  # border ignored
    assert all(p["psnr_y"] < p["psnr_y_input"] for p in plain)


def test_broken_bench_image_fails_naming_the_file(data: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(data / "bench", tmp_path / "bench")
    broken = copy / "single-id" / "noise" / "lq" / "0001.png"
    broken.write_bytes(b"not a png")
    pristine = fit_pristine_niqe(data / "clean", patch_size=16)
    with pytest.raises(ImageReadError, match=str(broken)):
        evaluate_method(identity, copy, CFG, pristine, None)
    (copy / "mixed" / "blur+noise" / "recipes.jsonl").write_text('{"id": "0000"}\n')
    with pytest.raises(ValueError, match=r"recipes.jsonl:1: record lacks key"):
        Bench(copy)
    with pytest.raises(FileNotFoundError, match="girml synthesize"):
        Bench(tmp_path / "nowhere")


def test_real_suite_scores_niqe_and_skips_broken_photos(
    bench: Bench, pristine: NiqeModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "real"
    write_png(real / "a.png", textured_image(1, 40, 48))
    write_png(real / "sub" / "b.png", textured_image(2, 64, 40))
    (real / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (real / "notes.txt").write_text("not an image")
    cfg = CFG.model_copy(update={"real_dir": str(real)})
    with caplog.at_level(logging.WARNING, logger="girml.evaluation.harness"):
        rows = evaluate_method(identity, bench, cfg, pristine, None)
    real_rows = [r for r in rows if r["suite"] == "real"]
    assert [r["id"] for r in real_rows] == ["a.png", "sub/b.png"]
    assert all(math.isfinite(r["niqe"]) and math.isnan(r["psnr_y"]) for r in real_rows)
    assert "broken.jpg" in caplog.text
    head = headline(summarize(rows), "model")
    assert "niqe.real" in head and "psnr_y.real" not in head


def test_undefined_niqe_is_nan_with_a_warning(
    bench: Bench, pristine: NiqeModel, caplog: pytest.LogCaptureFixture
) -> None:
    def flat(lq: np.ndarray) -> np.ndarray:
        return np.full_like(lq, 128)

    with caplog.at_level(logging.WARNING, logger="girml.evaluation.harness"):
        rows = evaluate_method(flat, bench, CFG, pristine, None, method="flat")
    assert all(math.isnan(r["niqe"]) for r in rows)
    assert "NIQE undefined for flat on" in caplog.text
    assert "niqe.single-id" not in headline(summarize(rows), "flat")


def test_bad_restorer_output_is_reported(bench: Bench, pristine: NiqeModel) -> None:
    with pytest.raises(ValueError, match=r"method 'half' returned \(16, 32, 3\) for .*0000.png"):
        evaluate_method(lambda lq: lq[::2], bench, CFG, pristine, None, method="half")
    with pytest.raises(RuntimeError, match="method 'boom' failed on"):
        evaluate_method(lambda lq: 1 / 0, bench, CFG, pristine, None, method="boom")


def test_lpips_column_only_when_configured(
    bench: Bench, pristine: NiqeModel, identity_rows: list[dict], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "lpips.pt"
    torch.save(LpipsMetric().state_dict(), weights)
    rows = evaluate_method(identity, bench, CFG, pristine, load_lpips(weights))
    assert all(math.isfinite(r["lpips"]) for r in rows)
    assert "lpips" not in identity_rows[0]
    assert "lpips.single-id" in headline(summarize(rows), "model")


def test_baselines_run_through_the_harness(bench: Bench, pristine: NiqeModel) -> None:
    rows = evaluate_baselines(["identity", "deblock", "gamma"], bench, CFG, pristine, None)
    assert [r["method"] for r in rows[:: len(bench)]] == ["identity", "deblock", "gamma"]
    per_family = summarize(rows)
    best = best_baselines(per_family, ["identity", "deblock", "gamma"])
    assert set(best) == TINY_GROUPS["single-id"] - {"clean"}  # nothing to restore on clean
    for family, (name, value) in best.items():
        scores = {
            r["method"]: r["psnr_y"]
            for r in per_family
            if (r["suite"], r["family"]) == ("single-id", family)
        }
        assert name in ("deblock", "gamma")
        assert value == max(scores["deblock"], scores["gamma"])
    with pytest.raises(KeyError, match=r"unknown baseline 'nope'; available: .*identity"):
        evaluate_baselines(["identity", "nope"], bench, CFG, pristine, None)


# --------------------------------------------------------------------------- aggregation


def _group(
    method: str, suite: str, family: str, psnr_y: float, psnr_in: float, harm: float = 0.0
) -> dict:
    return {
        "method": method,
        "suite": suite,
        "family": family,
        "n": 2,
        "psnr_y": psnr_y,
        "ssim_y": 0.5,
        "psnr_y_input": psnr_in,
        "psnr_gain": psnr_y - psnr_in,
        "harm_rate": math.nan if family == "clean" else harm,
        "niqe": 5.0,
    }


def test_headline_keys_and_hand_computed_scores() -> None:
    table = [
        _group("model", "single-id", "noise", 30.0, 24.0),  # gain 6
        _group("model", "single-id", "blur", 28.0, 26.0),  # gain 2
        _group("model", "single-ood", "noise", 25.0, 22.0),  # gain 3
        _group("model", "mixed", "blur+noise", 24.0, 23.0),  # gain 1
        _group("model", "unseen", "rain", 20.0, 20.0),  # gain 0
        _group("model", "unseen-content", "noise", 29.0, 24.0),  # gain 5, not in gir_score
        {**_group("model", "real", "real", math.nan, math.nan), "niqe": 7.0},
        _group("other", "single-id", "noise", 99.0, 24.0),  # another method: ignored
    ]
    head = headline(table, "model")
    suites = ["single-id", "single-ood", "mixed", "unseen", "unseen-content"]
    expected = {f"{m}.{s}" for m in ("psnr_y", "ssim_y", "psnr_gain", "niqe") for s in suites}
    expected |= {f"harm_rate.{s}" for s in suites} | {"harm.worst_family_gain"}
    assert set(head) == expected | {"niqe.real", "gir_score", "generalization_gap"}
    assert head["psnr_y.single-id"] == 29.0 and head["psnr_gain.single-id"] == 4.0
    # mean over the five (suite, family) groups of single-id/ood, mixed, unseen
    assert head["gir_score"] == pytest.approx((6 + 2 + 3 + 1 + 0) / 5)
    # psnr_gain.single-id - mean(psnr_gain.single-ood, psnr_gain.unseen)
    assert head["generalization_gap"] == pytest.approx(4.0 - (3.0 + 0.0) / 2)
    assert head["niqe.real"] == 7.0
    assert gir_score(table, "other") == 75.0
    with pytest.raises(ValueError, match=r"no \(suite, family\) group"):
        gir_score(table, "missing")


def test_clean_family_changes_no_comparable_number() -> None:
    """gir_score, the suite means and the generalization gap ignore the clean family."""
    table = [
        _group("model", "single-id", "noise", 30.0, 24.0),
        _group("model", "single-ood", "noise", 25.0, 22.0),
        _group("model", "unseen", "rain", 20.0, 20.0),
        _group("model", "unseen-content", "noise", 29.0, 24.0),
    ]
    with_clean = [
        *table,
        _group("model", "single-id", "clean", 45.0, MAX_PSNR),
        _group("model", "unseen-content", "clean", 40.0, MAX_PSNR),
    ]
    before, after = headline(table, "model"), headline(with_clean, "model")
    assert after == {
        **before,
        "harm.clean_psnr_y.single-id": 45.0,
        "harm.clean_psnr_y.unseen-content": 40.0,
    }
    assert gir_score(with_clean, "model") == gir_score(table, "model") == pytest.approx(3.0)
    assert group_psnr(with_clean, "model") == group_psnr(table, "model")


def test_harm_keys_on_hand_made_rows() -> None:
    def row(family: str, out: float, inp: float, suite: str = "single-id") -> dict:
        ident = {"method": "m", "suite": suite, "family": family, "id": "0", "source_id": "s"}
        return {**ident, "psnr_y": out, "psnr_y_input": inp, "niqe": math.nan}

    margin = HARM_MARGIN_DB
    rows = [
        row("noise", 30.0, 25.0),  # better
        row("noise", 25.0 - margin / 2, 25.0),  # worse, but within the margin: not harmed
        row("noise", 25.0 - 2 * margin, 25.0),  # harmed
        row("noise", 20.0, 25.0),  # harmed
        row("blur", 26.0, 27.0),  # harmed; blur: 1 of 1
        row("clean", 42.0, MAX_PSNR),  # judged by the clean PSNR, not counted in harm_rate
        row("clean", 44.0, MAX_PSNR),
        row("noise", 10.0, 20.0, suite="single-ood"),
        row("noise", 21.0, 20.0, suite="single-ood"),
        row("real", math.nan, math.nan, suite="real"),
    ]
    assert harm_rate(rows[:4]) == 0.5 and math.isnan(harm_rate(rows[-1:]))
    per_family = summarize(rows)
    rates = {(r["suite"], r["family"]): r["harm_rate"] for r in per_family}
    assert rates[("single-id", "noise")] == 0.5 and rates[("single-id", "blur")] == 1.0
    assert math.isnan(rates[("single-id", "clean")]) and math.isnan(rates[("real", "real")])
    harm = harm_metrics(per_family, "m")
    assert harm == {
        "harm_rate.single-id": pytest.approx(3 / 5),  # images, not families: (2 + 1) / (4 + 1)
        "harm.clean_psnr_y.single-id": 43.0,
        "harm_rate.single-ood": 0.5,
        # noise gains (5 - 0.05 - 0.2 - 5) / 4 = -0.0625 dB, blur -1 dB
        "harm.worst_family_gain": pytest.approx(-1.0),
    }
    assert harm_metrics(per_family, "other") == {}


def test_summarize_means_skip_nan() -> None:
    base = {"method": "m", "suite": "single-id", "family": "noise", "id": "0", "source_id": "s"}
    scores = {"psnr": 20.0, "ssim": 0.5, "psnr_y": 22.0, "ssim_y": 0.6}
    rows = [
        {**base, **scores, "psnr_y_input": 20.0, "ssim_y_input": 0.4, "niqe": 4.0},
        {**base, **scores, "psnr_y": 26.0, "psnr_y_input": 21.0, "ssim_y_input": 0.4},
    ]
    rows[1]["niqe"] = math.nan
    (group,) = summarize(rows)
    assert group["n"] == 2 and group["niqe"] == 4.0
    assert group["psnr_y"] == 24.0 and group["psnr_gain"] == pytest.approx(24.0 - 20.5)


# --------------------------------------------------------------------------- promotion


def test_decide_rules() -> None:
    cfg = PromotionConfig(min_gir_gain=0.05, max_family_regression=0.25)
    old = {("single-id", "noise"): 30.0, ("single-ood", "noise"): 25.0, ("mixed", "a+b"): 24.0}

    first = decide(old, 5.0, None, None, cfg)
    assert first.promoted and first.alias == CHAMPION and "first model" in first.reasons[0]

    better = {key: v + 0.3 for key, v in old.items()}
    up = decide(better, 5.21, old, 4.90, cfg)
    assert up.promoted and up.alias == CHAMPION
    assert up.reasons[0] == "gir_score 5.21 dB vs champion 4.90 dB: +0.31 >= 0.05"

    regressed = {**better, ("single-ood", "noise"): 25.0 - 0.42}
    down = decide(regressed, 5.21, old, 4.90, cfg)
    assert not down.promoted and down.alias == CHALLENGER
    assert "single-ood/noise regressed 0.42 dB > 0.25" in down.reasons

    flat = decide(old, 4.92, old, 4.90, cfg)
    assert not flat.promoted and flat.reasons[0].endswith("+0.02 < 0.05")

    # unseen-content is not a gir suite: a regression there does not block promotion
    content = {**better, ("unseen-content", "noise"): 10.0}
    assert decide(content, 5.21, {**old, ("unseen-content", "noise"): 30.0}, 4.90, cfg).promoted
    with pytest.raises(ValueError, match="champion_gir"):
        decide(old, 5.0, old, None, cfg)


def test_decide_refuses_more_harm() -> None:
    cfg = PromotionConfig(max_harm_rate_increase=0.05, max_clean_psnr_drop=1.0)
    old = {("single-id", "noise"): 30.0}
    better = {("single-id", "noise"): 31.0}
    champion_harm = {
        "harm_rate.single-id": 0.10,
        "harm_rate.unseen": 0.20,
        "harm.clean_psnr_y.single-id": 45.0,
        "harm.worst_family_gain": 1.0,
    }

    def run(changes: dict[str, float] | None = None) -> Decision:
        new = {**champion_harm, **(changes or {})}
        return decide(better, 5.5, old, 4.5, cfg, new, champion_harm)

    same = run()
    assert same.promoted
    assert "no harm_rate rose more than 5.0 points (largest change: harm_rate.single-id +0.0)" in (
        same.reasons
    )
    assert any(r.startswith("no clean PSNR-Y dropped more than 1.00 dB") for r in same.reasons)

    harmful = run({"harm_rate.unseen": 0.30})
    assert not harmful.promoted and harmful.alias == CHALLENGER
    assert "harm_rate.unseen 30.0% vs champion 20.0%: +10.0 points > 5.0" in harmful.reasons
    assert run({"harm_rate.unseen": 0.25}).promoted  # exactly at the threshold is allowed

    blurry = run({"harm.clean_psnr_y.single-id": 43.5})
    assert not blurry.promoted
    assert (
        "harm.clean_psnr_y.single-id 43.50 dB vs champion 45.00 dB: -1.50 dB, a drop > 1.00"
        in blurry.reasons
    )
    assert run({"harm.clean_psnr_y.single-id": 44.5}).promoted
    # a lower harm rate or a higher clean PSNR never blocks
    assert run({"harm_rate.single-id": 0.0, "harm.clean_psnr_y.single-id": 60.0}).promoted

    # an older champion without harm metrics: the checks are skipped, with a note
    older = decide(better, 5.5, old, 4.5, cfg, {**champion_harm, "harm_rate.unseen": 0.9}, {})
    assert older.promoted
    assert "champion has no harm metrics (older run): harm checks skipped" in older.reasons
    partial = {k: v for k, v in champion_harm.items() if not k.startswith("harm.clean")}
    no_clean = decide(better, 5.5, old, 4.5, cfg, champion_harm, partial)
    assert no_clean.promoted
    assert "champion has no harm.clean_psnr_y.single-id: that check skipped" in no_clean.reasons
    # without harm for the new version (older callers): the rules are the gir and family ones
    assert decide(better, 5.5, old, 4.5, cfg).reasons == same.reasons[:2]


def test_decide_refuses_tile_patches_and_whole_photo_regressions() -> None:
    cfg = PromotionConfig(max_block_shift_rise=1.0, max_family_regression=0.25)
    old = {("single-id", "noise"): 30.0, ("whole", "jpeg"): 33.0}
    champion_harm = {"harm.block_shift.whole": 0.8, "harm.clean_psnr_y.whole": 50.0}

    def run(new_scores: dict, changes: dict[str, float] | None = None) -> Decision:
        return decide(
            new_scores, 5.5, old, 4.5, cfg, {**champion_harm, **(changes or {})}, champion_harm
        )

    better = {("single-id", "noise"): 31.0, ("whole", "jpeg"): 33.0}
    same = run(better)
    assert same.promoted
    assert any(r.startswith("no block shift rose more than 1.0 grey levels") for r in same.reasons)
    patches = run(better, {"harm.block_shift.whole": 12.0})
    assert not patches.promoted
    assert "harm.block_shift.whole 12.0 vs champion 0.8 grey levels: +11.2 > 1.0" in patches.reasons
    assert run(better, {"harm.block_shift.whole": 1.8}).promoted  # at the threshold
    # crops better, whole photos worse: refused (girml restore restores whole photos)
    crops_only = run({("single-id", "noise"): 31.0, ("whole", "jpeg"): 32.0})
    assert not crops_only.promoted
    assert "whole/jpeg regressed 1.00 dB > 0.25" in crops_only.reasons


# --------------------------------------------------------------------------- end to end


def test_evaluate_and_promote_end_to_end(
    data: Path, spec: DegradationsConfig, registry: Path
) -> None:
    metrics_dir, plots_dir = registry / "metrics", registry / "plots"
    model_dir = registry / "models" / "latest"
    cfg = CFG.model_copy(update={"specialists": True, "specialist_families": ["noise"]})
    run1, v1 = register(tiny_model(0, 0.0), registry, model_dir)
    first = evaluate_and_promote(
        model_dir,
        data / "bench",
        data / "clean",
        cfg,
        metrics_dir,
        plots_dir,
        registry,
        SpecialistInputs(spec, data / "pairs", registry / "specialists"),
        train_metrics=registry / TRAIN_JSON,
    )
    assert first.decision.promoted and get_alias_version(REGISTERED_MODEL, CHAMPION) == v1
    assert {r["method"] for r in first.rows} == {
        "model",
        "identity",
        "deblock",
        "gamma",
        "specialist:noise",
    }
    assert "version 1 promoted to @champion" in first.summary()
    run = MlflowClient().get_run(run1)
    assert run.data.tags["champion.promoted"] == "true"
    assert run.data.tags["champion.previous_version"] == "none"
    assert run.data.metrics["gir_score"] == pytest.approx(first.metrics["gir_score"])
    for key in HARM_KEYS:  # the harm keys reach MLflow too
        assert run.data.metrics[key] == pytest.approx(first.metrics[key])
    assert "harm rate: single-id " in first.summary() and "clean PSNR-Y: single-id " in (
        first.summary()
    )
    logged = MlflowClient().list_artifacts(run1, "evaluation")
    assert sorted(a.path for a in logged) == ["evaluation/eval.json", "evaluation/per_family.csv"]

    result = json.loads((metrics_dir / "eval.json").read_text())
    suites = list(TINY_GROUPS)
    headline_keys = {
        f"{m}.{s}" for m in ("psnr_y", "ssim_y", "psnr_gain", "niqe") for s in suites
    } | {"gir_score", "generalization_gap"}
    assert headline_keys | HARM_KEYS <= set(result)
    assert 0 <= result["harm_rate.single-id"] <= 1
    assert result["harm.clean_psnr_y.single-id"] <= MAX_PSNR
    assert result["lpips"] == "not computed (no weights configured)"
    assert {k for k in result if k.startswith("baselines.")} == {
        f"baselines.{b}.{k}"
        for b in ("identity", "deblock", "gamma")
        for k in ("gir_score", *HARM_KEYS)
    }
    assert result["baselines.identity.gir_score"] == 0
    assert result["baselines.identity.harm_rate.single-id"] == 0
    assert result["baselines.identity.harm.clean_psnr_y.single-id"] == MAX_PSNR
    assert "specialists.noise.harm_rate.single-id" in result
    assert "best_baseline.clean.name" not in result
    assert isinstance(result["specialists.noise.gir_score"], float)
    assert result["champion.promoted"] is True and result["champion.version"] == v1
    assert result["champion.previous_version"] is None
    assert result["best_baseline.noise.name"] in ("deblock", "gamma")

    header, rows = read_csv(metrics_dir / "per_image.csv")
    n_whole = len(Bench(data / "bench", whole=True))
    assert header == [*ROW_KEYS, "block_shift"]
    assert len(rows) == 5 * len(Bench(data / "bench")) + n_whole  # whole photos: model only
    whole_rows = [r for r in rows if r["suite"] == "whole"]
    assert {r["method"] for r in whole_rows} == {"model"} and len(whole_rows) == n_whole
    assert all(float(r["block_shift"]) >= 0 for r in whole_rows)
    assert all(r["block_shift"] == "" for r in rows if r["suite"] != "whole")
    # the whole-photo suite's keys: gain per suite, clean PSNR-Y and the patch metric
    assert {"psnr_gain.whole", "harm.clean_psnr_y.whole", "harm.block_shift.whole"} <= set(result)
    assert "gir_score" in result  # unchanged: the GIR suites only
    header, rows = read_csv(metrics_dir / "per_family.csv")
    assert header[:4] == ["method", "suite", "family", "n"] and "psnr_gain" in header
    assert "harm_rate" in header
    clean = [r for r in rows if r["family"] == "clean"]
    assert len(clean) == 2 * 5 + 1  # the crop suites' two, and the model's whole photos
    assert all(r["harm_rate"] == "" for r in clean)  # NaN: not judged
    header, rows = read_csv(plots_dir / "psnr_per_family.csv")
    assert header == ["suite", "family", "method", "psnr_y", "label"]
    # model, best baseline, identity per crop group; the model alone per whole-photo family
    assert len(rows) == 3 * N_DEGRADED_GROUPS + 3  # clean left out
    header, rows = read_csv(plots_dir / "generalization.csv")
    assert header == [
        "suite_index",
        "suite",
        "model",
        "identity",
        "deblock",
        "gamma",
        "specialist:noise",
        "best_baseline",
    ]
    assert [r["suite"] for r in rows] == suites
    assert all(float(r["identity"]) == 0 for r in rows)

    # a much worse second version is compared with the champion and kept as challenger
    second_cfg = CFG.model_copy(update={"baselines": ["identity"]})
    run2, v2 = register(tiny_model(1, 0.2), registry, model_dir)
    second = evaluate_and_promote(
        model_dir,
        data / "bench",
        data / "clean",
        second_cfg,
        metrics_dir,
        plots_dir,
        registry,
        train_metrics=registry / TRAIN_JSON,
    )
    assert not second.decision.promoted
    assert any("regressed" in reason for reason in second.decision.reasons)
    harm_checked = ("harm_rate.", "no harm_rate rose", "harm.clean_psnr_y.", "no clean PSNR-Y")
    assert any(reason.startswith(harm_checked) for reason in second.decision.reasons)
    for reason in second.decision.reasons:  # printed with the decision
        assert f"  - {reason}" in second.summary()
    assert {r["method"] for r in second.rows} == {"model", "identity", "champion"}
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == v1
    assert get_alias_version(REGISTERED_MODEL, CHALLENGER) == v2
    result = json.loads((metrics_dir / "eval.json").read_text())
    assert result["champion.promoted"] is False and result["champion.previous_version"] == v1
    assert result["champion.previous_gir_score"] > result["gir_score"]
    tags = MlflowClient().get_run(run2).data.tags
    assert tags["champion.promoted"] == "false" and tags["champion.alias"] == CHALLENGER
    assert tags["champion.reasons"] == "\n".join(second.decision.reasons)
    assert tags["champion.previous_version"] == str(v1)


def test_evaluate_and_promote_needs_registry_info(data: Path, tmp_path: Path) -> None:
    model_dir = save_model_dir(tiny_model(0, 0.0), TINY, tmp_path / "latest")
    with pytest.raises(ValueError, match=r"no mlflow\.run_id"):
        evaluate_and_promote(
            model_dir, data / "bench", data / "clean", CFG, tmp_path, tmp_path, tmp_path
        )
    with pytest.raises(KeyError, match="unknown baseline"):
        evaluate_and_promote(
            model_dir,
            data / "bench",
            data / "clean",
            CFG.model_copy(update={"baselines": ["nope"]}),
            tmp_path,
            tmp_path,
            tmp_path,
        )


# --------------------------------------------------------------------------- specialists


def test_specialist_spec_and_training(data: Path, spec: DegradationsConfig, tmp_path: Path) -> None:
    only = specialist_spec(spec, "blur")
    assert list(only.families) == ["blur"] and only.train_composers == {"single": 1.0}
    assert only.held_out.families == [] and only.held_out.combinations == []
    with pytest.raises(ValueError, match="unknown family 'rain'"):
        specialist_spec(spec, "rain")
    models = train_specialists(TINY, TINY_TRAIN, spec, ["blur"], data / "pairs", tmp_path)
    assert list(models) == ["blur"] and not models["blur"].training
    assert (tmp_path / "blur" / "checkpoint-2").is_dir()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert models["blur"](x).shape == x.shape
    with pytest.raises(ValueError, match="families is empty"):
        train_specialists(TINY, TINY_TRAIN, spec, [], data / "pairs", tmp_path)


def test_the_models_are_scored_with_evaluate_self_ensemble() -> None:
    class Ramp(torch.nn.Module):  # not flip-equivariant: the x8 views average the ramp out
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.linspace(0, 0.2, x.shape[-1])

    lq = np.zeros((8, 8, 3), np.uint8)
    once, plus = model_restorer(Ramp(), None), model_restorer(Ramp(), None, 8)
    assert once(lq)[0, -1, 0] == 51 and (plus(lq) == 26).all()  # 0.2 -> 51; mean 0.1 -> 26
    assert EvaluateConfig().self_ensemble == 8
    with pytest.raises(ValidationError, match="self_ensemble"):
        EvaluateConfig(self_ensemble=3)
