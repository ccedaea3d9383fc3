"""The release model: safetensors export, pickle-free loading, the model card, the fp16 rule,
the size limit, restore's default-model order and the `girml release` verb (real MLflow store)."""

from __future__ import annotations

import csv
import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from girml.cli import app
from girml.config import DegradationsConfig, EvaluateConfig, ModelConfig, TrainConfig
from girml.evaluation.harness import Bench, evaluate_method, fit_pristine_niqe, model_restorer
from girml.evaluation.report import headline, summarize
from girml.imageio import write_png
from girml.models import build_model
from girml.models.card import (
    CardMetrics,
    Coverage,
    card_metrics,
    known_limits,
    method_for_version,
    read_per_family,
)
from girml.models.release import (
    CARD_FILE,
    FORMAT,
    WEIGHTS_FILE,
    Fp16Check,
    Provenance,
    ReleaseInputs,
    TrainingData,
    export_release,
    is_release_dir,
    load_release,
    make_release,
    measure_fp16,
    read_real_photos,
    spec_sha256,
    suite_psnr_y,
    training_data,
)
from girml.models.store import (
    choose_default_model,
    default_model_uri,
    load_model,
    read_model_config,
    save_model_dir,
)
from tests.factories import synthesize_tiny, textured_image, tiny_params, write_params

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
) -> object:
    return export_release(
        model,
        TINY,
        out,
        provenance=provenance(tmp_path, spec),
        metrics=metrics_for(per_family_rows()),
        coverage=coverage(spec),
        **kwargs,
    )


# --------------------------------------------------------------------------- format


def test_export_then_load_is_bitwise_identical(tmp_path: Path, spec: DegradationsConfig) -> None:
    model = tiny_model(0)
    out = tmp_path / "models" / "release"
    result = export(tmp_path, spec, model, out)

    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, "config.yaml", CARD_FILE])
    assert result.dtype == "float32" and result.max_output_diff == 0.0
    assert result.bytes == sum(p.stat().st_size for p in out.iterdir())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["format"] == FORMAT
    assert config["model"] == TINY.model_dump(mode="json")
    assert config["provenance"]["registered_version"] == 3
    assert config["weights"]["dtype"] == "float32"
    assert config["metrics"]["suites"]["single-id"]["psnr_y"] == pytest.approx(22.75)

    x = torch.rand(2, 3, 29, 41, generator=torch.Generator().manual_seed(1))  # odd size
    for loaded in (load_release(out), load_model(str(out))):
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    assert not list(tmp_path.glob("models/.*")), "temporary folders left behind"


def test_loading_a_release_never_unpickles(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(1), out)

    def refuse(*args, **kwargs):
        raise AssertionError("a release must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert is_release_dir(out)
    model = load_model(str(out))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_corrupt_or_mismatched_release_names_the_file(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(2), out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["model"]["width"] = 8  # the tensors no longer fit
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=rf"{WEIGHTS_FILE}: corrupt or does not match"):
        load_release(out)
    config["model"]["width"] = 4
    config["format"] = "girml-release/99"
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="format must be 'girml-release/1'"):
        load_release(out)
    with pytest.raises(FileNotFoundError, match="run `girml release`"):
        load_release(tmp_path / "nothing")


def test_a_config_that_does_not_rebuild_the_model_is_refused(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    model = tiny_model(3)
    wrong = TINY.model_copy(update={"sca_max": False})  # same channels, no max-pool branch
    with pytest.raises(ValueError):
        export_release(
            model,
            wrong,
            tmp_path / "release",
            provenance=provenance(tmp_path, spec),
            metrics=metrics_for(per_family_rows()),
            coverage=coverage(spec),
        )
    assert not (tmp_path / "release").exists()


def test_size_limit_is_enforced_and_leaves_the_old_release(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(4), out)
    before = (out / WEIGHTS_FILE).read_bytes()
    with pytest.raises(ValueError, match=r"MiB, over the 0\.00 MiB limit.*--fp16"):
        export(tmp_path, spec, tiny_model(5), out, max_bytes=1000)
    assert (out / WEIGHTS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["release"]


def test_spec_hash_is_canonical(spec: DegradationsConfig) -> None:
    raw = tiny_params()["degradations"]
    reordered = dict(reversed(list(raw.items())))
    same = DegradationsConfig.model_validate(reordered)
    assert spec_sha256(same) == spec_sha256(spec)
    raw_changed = json.loads(json.dumps(raw))
    raw_changed["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"]["id"] = [15, 51]
    assert spec_sha256(DegradationsConfig.model_validate(raw_changed)) != spec_sha256(spec)


# --------------------------------------------------------------------------- card


def test_card_metrics_tables_against_identity_and_best_classical() -> None:
    metrics = metrics_for(per_family_rows(), harm=False)  # harm computed from the rows
    suites = {s.suite: s for s in metrics.suites}
    assert [s.suite for s in metrics.suites] == list(SUITES)
    assert all(g.family != "clean" for g in metrics.groups)
    assert suites["single-id"].psnr_y == pytest.approx((26.0 + 19.5) / 2)
    assert suites["single-id"].input_psnr_y == pytest.approx(20.0)
    # suite means: nlm (25+20)/2 = 22.5 beats wiener (21+23)/2 = 22.0
    assert suites["single-id"].best_name == "nlm"
    assert suites["single-id"].vs_best == pytest.approx(0.25)
    groups = {(g.suite, g.family): g for g in metrics.groups}
    assert groups["single-id", "blur"].best_name == "wiener"
    assert groups["single-id", "blur"].vs_best == pytest.approx(-3.5)
    assert groups["single-id", "blur"].vs_identity == pytest.approx(-0.5)
    assert groups["unseen", "noise"].best_name == "nlm"
    limits = known_limits(metrics)
    assert any(line.startswith("single-id/blur: the output is 0.50 dB below") for line in limits)
    assert any("classical `wiener` is 3.50 dB better" in line for line in limits)
    assert any(line.startswith("single-id: 25% of the degraded images") for line in limits)
    assert len(limits) == 3
    assert metrics.harm == {
        "harm.clean_psnr_y.single-id": 48.25,
        "harm.clean_psnr_y.unseen-content": None,
        "harm_rate.single-id": 0.25,
        "harm_rate.unseen-content": None,
        "harm.worst_family_gain": -0.5,
        "harm_rate.unseen": 0.0,
    }


def test_card_renders_every_section(tmp_path: Path, spec: DegradationsConfig) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(6), out)
    card = (out / CARD_FILE).read_text()
    for heading in (
        "# Model card",
        "## Provenance",
        "### Training data",
        "## Metrics",
        "## Harm",
        "## Known limits",
    ):
        assert heading in card
    assert "| single-id | 2 | 22.75 | 0.800 | 20.00 | nlm 22.50 | +2.75 | +0.25 |" in card
    assert "| single-id/blur | 4 | 19.50 | 20.00 | wiener 23.00 | -0.50 | -3.50 |" in card
    assert "| `harm.clean_psnr_y.single-id` | 48.250 |" in card
    assert "| `harm_rate.unseen-content` | not measured |" in card
    assert f"`{'f' * 40}`" in card and "| steps | 1900 |" in card and "554 s" in card
    assert "Test CPU, 2 cores (CPU)" in card
    assert spec_sha256(spec) in card
    assert "`0000000000000000`, `0000000000000001`, `0000000000000002`" in card
    assert "DVC md5 of `data/pairs` when the model was trained: `9e03.dir`" in card
    assert "no real camera noise" in card
    assert "`noise`, `blur`, `jpeg`" in card and "`haze`, `blur+jpeg`" in card
    assert "`scientific`" in card and "64x64 crops" in card
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["weights"]["sha256"] in card


def test_harm_not_measured_without_clean_family_and_computed_for_the_champion() -> None:
    rows = per_family_rows(clean=False)
    absent = metrics_for(rows, harm=False)
    assert absent.harm["harm.worst_family_gain"] == -0.5  # from psnr_gain: always measurable
    assert absent.harm["harm.clean_psnr_y.single-id"] is None
    assert absent.harm["harm_rate.single-id"] is None
    assert absent.harm_note.startswith("Not measured (no clean family")
    # eval.json's keys describe the "model" method; the champion's come from its own rows
    rows = per_family_rows()
    worse = {"method": "champion"}  # the champion scores 1 dB lower everywhere
    rows += [
        {**r, **worse, "psnr_y": r["psnr_y"] - 1, "psnr_gain": r["psnr_gain"] - 1}
        for r in rows
        if r["method"] == "model"
    ]
    other = card_metrics(rows, "champion", ["identity", "nlm"], {"champion.version": 4, **HARM})
    assert other.harm["harm.clean_psnr_y.single-id"] == pytest.approx(47.25)
    assert other.harm["harm.worst_family_gain"] == pytest.approx(-1.5)


def test_metrics_must_describe_the_released_version(tmp_path: Path) -> None:
    eval_json = {"champion.version": 4, "champion.previous_version": 1}
    assert method_for_version(eval_json, 4, "x") == "model"
    assert method_for_version(eval_json, 1, "x") == "champion"
    with pytest.raises(
        ValueError, match=r"is version 2, but metrics/eval.json describes version 4"
    ):
        method_for_version(eval_json, 2, "models:/gir-restorer/2")
    with pytest.raises(ValueError, match="names no registered version"):
        method_for_version(eval_json, None, "some/folder")
    bad = tmp_path / "per_family.csv"
    bad.write_text("method,suite,family\nmodel,single-id,noise\n")
    with pytest.raises(ValueError, match=r"per_family.csv: missing column\(s\) n, psnr_y"):
        read_per_family(bad)


def test_training_data_lists_train_ids_and_hashes(tmp_path: Path) -> None:
    root = synthesize_tiny(tmp_path)
    data = training_data(root / "clean" / "manifest.csv", root / "pairs" / "train" / "pairs.jsonl")
    assert data.clean_train_ids == ["a0000000000000a1", "a0000000000000a2", "a0000000000000a6"]
    assert data.n_clean_train == 3 and data.n_train_pairs == 24
    assert len(data.manifest_sha256 or "") == 64 and len(data.pairs_sha256 or "") == 64
    missing = training_data(tmp_path / "no.csv", tmp_path / "no.jsonl")
    assert missing.n_clean_train is None and missing.pairs_sha256 is None
    assert data.photo_credits == [] and data.package_pins_sha256 is None  # builtin only


def test_package_photos_are_credited_on_the_card(tmp_path: Path, spec: DegradationsConfig) -> None:
    manifest = tmp_path / "manifest.csv"
    origin = "lomiri-wallpapers-16.04:/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"
    manifest.write_text(
        "id,source,origin,width,height,category,split\n"
        f"e3a66fd24e87ebd3,packages,{origin},1451,816,photo,train\n"
        "27026bce76d47536,builtin,china,640,427,scene,test\n",
        encoding="utf-8",
    )
    data = training_data(manifest, tmp_path / "no.jsonl")
    assert data.photo_credits == [
        {
            "package": "lomiri-wallpapers-16.04",
            "path": "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
            "category": "photo",
            "split": "train",
            "author": "Sander Klootwijk",
            "license": "CC-BY-SA-4.0",
        }
    ]
    assert len(data.package_pins_sha256 or "") == 64
    base = provenance(tmp_path, spec)
    prov = base.model_copy(
        update={
            "data": base.data.model_copy(
                update={
                    "photo_credits": data.photo_credits,
                    "package_pins_sha256": data.package_pins_sha256,
                }
            )
        }
    )
    out = tmp_path / "release"
    export_release(
        tiny_model(21),
        TINY,
        out,
        provenance=prov,
        metrics=metrics_for(per_family_rows()),
        coverage=coverage(spec),
    )
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "### Photo credits" in card
    assert (
        "| `/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg` | lomiri-wallpapers-16.04 "
        "| photo | train | Sander Klootwijk | CC-BY-SA-4.0 |"
    ) in card


# --------------------------------------------------------------------------- fp16


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


# --------------------------------------------------------------------------- default model


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder as cwd, MLflow offline and pointed at that folder's default store."""
    project = tmp_path / "project"
    project.mkdir()
    before = mlflow.get_tracking_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(project)
    yield project
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(before)


def test_restore_default_order_without_a_registry(offline: Path, spec: DegradationsConfig) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        choose_default_model()
    export(offline, spec, tiny_model(9), Path("models/release"))
    choice = choose_default_model()
    assert (choice.uri, choice.kind) == ("models/release", "release")
    assert choice.describe() == (
        "models/release (release: no MLflow store, so no champion; no models/latest)"
    )
    save_model_dir(tiny_model(10), TINY, Path("models/latest"))
    assert default_model_uri() == "models/latest"
    assert choose_default_model().kind == "latest"
    assert not (offline / "mlflow.db").exists(), "looking must not create a store"

    (offline / "mlflow.db").write_bytes(b"this is not a database")  # a broken store
    Path("models/latest/weights.pt").unlink()
    choice = choose_default_model()
    assert choice.kind == "release" and "MLflow registry unreadable" in choice.reason


def test_release_of_a_model_folder_without_a_store(offline: Path, spec: DegradationsConfig) -> None:
    """metrics/train.json names the run of models/latest, but there is no store."""
    root = synthesize_tiny(offline / "data")
    model = tiny_model(12)
    folder = save_model_dir(
        model, TINY, Path("models/latest"), extra={"train": TrainConfig(patch_size=48)}
    )
    run = {
        "weights_sha256": read_model_config(folder)["weights_sha256"],
        "mlflow_run_id": "abc123",
        "registered_version": 5,
        "hardware": "Test CPU, 2 cores (CPU)",
    }
    Path("metrics").mkdir(exist_ok=True)
    train_json = {"steps": 40.0, "train_seconds": 3.5, "run": run}
    Path("metrics/train.json").write_text(json.dumps(train_json))
    write_metrics(Path("metrics"), 5)
    lock = {"stages": {"train": {"cmd": "girml train --params params.yaml"}}}
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    inputs = ReleaseInputs(
        eval_json=Path("metrics/eval.json"),
        per_family_csv=Path("metrics/per_family.csv"),
        manifest=root / "clean" / "manifest.csv",
        pairs_jsonl=root / "pairs" / "train" / "pairs.jsonl",
        bench_dir=root / "bench",
        dvc_lock=Path("dvc.lock"),
        spec=spec,
        spec_source="params.yaml: degradations",
        train_metrics=Path("metrics/train.json"),
    )
    result, prov, metrics = make_release("models/latest", Path("models/release"), inputs, offline)
    assert result.dtype == "float32" and metrics.method == "model"
    assert (prov.registered_version, prov.run_id, prov.steps) == (5, "abc123", 40)
    assert prov.train_seconds == 3.5 and prov.hardware == "Test CPU, 2 cores (CPU)"
    assert prov.train_command == "girml train --params params.yaml"
    assert prov.git_commit == "unknown"  # only the run's tags know it
    assert prov.data.n_clean_train == 3 and prov.data.n_train_pairs == 24
    assert any(note.startswith("no MLflow store") for note in prov.notes)
    assert not (offline / "mlflow.db").exists()
    card = Path("models/release", CARD_FILE).read_text()
    assert "48x48 crops" in card and "Note: no MLflow store" in card
    assert "| git commit | not recorded |" in card
    with pytest.raises(ValueError, match="already a release"):
        make_release("models/release", Path("models/other"), inputs, offline)


# --------------------------------------------------------------------------- CLI


def project_files(root: Path) -> None:
    """params.yaml and data/ (clean, pairs, bench) of a tiny project."""
    params = tiny_params()
    params["evaluate"] = {"crop_border": 0, "baselines": ["identity", "wiener", "nlm"]}
    write_params(root / "params.yaml", params)
    synthesize_tiny(root / "data")


def test_cli_release_from_the_champion_then_restore_without_training(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from girml.tracking import mlflow as tracking

    project_files(offline)
    runner = CliRunner()
    no_champion = runner.invoke(app, ["release"])
    assert no_champion.exit_code == 2
    assert "no gir-restorer@champion" in no_champion.output
    assert "--model models/latest" in no_champion.output

    model = tiny_model(11)
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    tags = {"git_commit": "e" * 40, "git_dirty": "false", "hardware": "Test GPU x1"}
    tags["dvc.data/pairs"] = "1234.dir"
    with tracking.start_run("girml-test", offline, tags=tags, log_system_metrics=False):
        tracking.log_params_flat({"model": TINY, "train": TrainConfig(steps=7, patch_size=32)})
        tracking.log_metrics(7, {"steps": 7.0, "train_seconds": 12.5})
        version = tracking.log_and_register_model(model, example, model_cfg=TINY)
    tracking.set_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION, version)

    write_metrics(offline / "metrics", version + 1)  # the metrics describe another version
    stale = runner.invoke(app, ["release"])
    assert stale.exit_code == 1
    assert f"is version {version}, but metrics/eval.json describes version {version + 1}" in (
        stale.output
    )
    write_metrics(offline / "metrics", version)
    done = runner.invoke(app, ["release"])
    assert done.exit_code == 0, done.output
    assert f"(version {version}) into models/release: float32 weights" in done.output

    out = offline / "models" / "release"
    config = yaml.safe_load((out / "config.yaml").read_text())
    prov = config["provenance"]
    assert prov["source"] == "models:/gir-restorer@champion"
    assert (prov["registered_version"], prov["steps"], prov["train_seconds"]) == (version, 7, 12.5)
    assert (prov["git_commit"], prov["hardware"]) == ("e" * 40, "Test GPU x1")
    assert prov["dvc_hashes"] == {"data/pairs": "1234.dir"}
    assert prov["data"]["n_train_pairs"] == 24
    assert (
        prov["release_command"]
        == "girml release --model models:/gir-restorer@champion -o models/release"
    )
    card = (out / CARD_FILE).read_text()
    assert "`gir-restorer` version 1" in card and "32x32 crops" in card
    x = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(load_release(out)(x), model(x))

    # fp16 is measured on data/bench; a tiny model's outputs barely move, so it is kept
    half = runner.invoke(app, ["release", "--fp16", "-o", "models/release16"])
    assert half.exit_code == 0, half.output
    assert "float16 weights" in half.output
    assert (out.parent / "release16" / WEIGHTS_FILE).stat().st_size < (
        out / WEIGHTS_FILE
    ).stat().st_size

    # a fresh clone: no store, no models/latest: restore falls back to the release
    (offline / "mlflow.db").unlink()
    write_png(offline / "photo.png", textured_image(0, 40, 56))
    restored = runner.invoke(app, ["restore", "photo.png", "-o", "restored"])
    assert restored.exit_code == 0, restored.output
    assert "model: models/release (release: no MLflow store, so no champion; no models/latest)" in (
        restored.output
    )
    assert (offline / "restored" / "photo.png").is_file()


# --------------------------------------------------------------------------- real photos


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


def test_real_photos_section_only_for_the_released_weights(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    model = tiny_model(13)
    out, again = tmp_path / "release", tmp_path / "again"
    export(tmp_path, spec, model, out)
    export(tmp_path, spec, model, again)  # a re-release of the same model: the same bytes
    weights = (out / WEIGHTS_FILE).read_bytes()
    assert (again / WEIGHTS_FILE).read_bytes() == weights
    card = (out / CARD_FILE).read_text()
    assert "Real photos" not in card and "real_photos.py" not in card

    sha = yaml.safe_load((out / "config.yaml").read_text())["weights"]["sha256"]
    path = tmp_path / "real.json"
    path.write_text(json.dumps(real_record(sha)))
    export(tmp_path, spec, model, out, real_photos=read_real_photos(path))
    card = (out / CARD_FILE).read_text()
    section = card[card.index("## Real photos outside the project") :]
    assert "`python benchmarks/real_photos.py --model models/release --json real.json`" in section
    assert "3 crops of 256x256 px" in section
    assert "`grace_hopper.jpg` (512x600), 2 crop(s)," in section
    assert "`f3.jpg`, 1 crop(s)." in section
    assert "| gaussian_noise_25 | 20.50 | +6.75 | +4.50 (nlm) | 0.30 / 0.40 |" in section
    assert "| haze_b1.0_A0.9 | 12.00 | -0.50 | n/a (n/a) | 31.25 / 30.00 |" in section
    assert "| **mean of the 2 degraded** | 16.25 | +3.12 | +4.50 (per-row best) |" in section
    assert "scores 44.50 dB PSNR-Y\nagainst the clean input" in section
    assert "on 1 of\n2 degradations (`haze_b1.0_A0.9`)." in section
    assert (out / WEIGHTS_FILE).read_bytes() == weights
    assert "real" not in yaml.safe_load((out / "config.yaml").read_text())  # card only

    before = card
    for record, match in (
        (real_record("0" * 64), r"real\.json: scored on other weights \(models/release"),
        (real_record(None), r"real\.json: records no weights sha256"),
    ):
        path.write_text(json.dumps(record))
        with pytest.raises(ValueError, match=match):
            export(tmp_path, spec, tiny_model(13), out, real_photos=read_real_photos(path))
        assert (out / CARD_FILE).read_text() == before  # the old release is untouched
    path.write_text(json.dumps(real_record(sha)))  # another model, the old hash
    with pytest.raises(ValueError, match="scored on other weights"):
        export(tmp_path, spec, tiny_model(14), out, real_photos=read_real_photos(path))


def test_real_photos_script_json_is_accepted_on_a_re_release(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual flow: release, score the release with the script, release again with it."""
    import importlib.util
    import sys

    # as `python benchmarks/real_photos.py` runs it: its folder first on the path
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    loader = importlib.util.spec_from_file_location(
        "real_photos", Path(__file__).parents[2] / "benchmarks" / "real_photos.py"
    )
    script = importlib.util.module_from_spec(loader)
    sys.modules["real_photos"] = script  # dataclasses look their module up
    try:
        loader.loader.exec_module(script)
        model, out = tiny_model(15), tmp_path / "release"
        export(tmp_path, spec, model, out)
        write_png(tmp_path / "photo.png", textured_image(1, 40, 72))
        argv = ["--model", str(out), "--photos", str(tmp_path / "photo.png"), "--crop", "32"]
        argv += ["--methods", "model,identity,wiener", "--json", str(tmp_path / "real.json")]
        assert script.main(argv) == 0
    finally:
        del sys.modules["real_photos"]
    real = read_real_photos(tmp_path / "real.json")
    assert real.photos[0].width == 72 and real.crops == 2 and len(real.degraded) == 12
    assert real.command is not None and real.command.endswith("real.json")
    export(tmp_path, spec, model, out, real_photos=real)
    assert "`photo.png` (72x40), 2 crop(s)." in (out / CARD_FILE).read_text()


def test_malformed_real_photos_json_is_refused_naming_the_file(
    offline: Path, spec: DegradationsConfig
) -> None:
    bad = offline / "real.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"real\.json: not valid JSON"):
        read_real_photos(bad)
    record = real_record("a" * 64)
    del record["rows"]["clean"]["methods"]["model"]
    bad.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"real\.json: .*rows without a 'model' score: clean"):
        read_real_photos(bad)
    bad.write_text(json.dumps({**real_record("a" * 64), "crops": "many"}))
    with pytest.raises(ValueError, match=r"real\.json: not a benchmarks/real_photos.py .* crops:"):
        read_real_photos(bad)
    with pytest.raises(FileNotFoundError, match=r"nothing\.json not found"):
        read_real_photos(offline / "nothing.json")

    # the verb fails with one line naming the file, before anything is loaded or written
    write_params(offline / "params.yaml", tiny_params())
    export(offline, spec, tiny_model(16), Path("models/release"))
    before = Path("models/release", CARD_FILE).read_bytes()
    for name in ("real.json", "nothing.json"):
        result = CliRunner().invoke(
            app, ["release", "--model", "models/latest", "--real-photos", name]
        )
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"error: {name}") and result.output.count("\n") == 1
    assert Path("models/release", CARD_FILE).read_bytes() == before
