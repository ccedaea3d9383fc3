"""The study's approaches (girml/evaluation/approaches.py): equal compute, training each kind,
oracle and classifier routing, scoring, and the study stage ranking them."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from girml.config import (
    ApproachConfig,
    DegradationsConfig,
    EvaluateConfig,
    ModelConfig,
    StudyConfig,
    TrainConfig,
    parse_section,
)
from girml.evaluation.approaches import (
    APPROACH_FILE,
    CLASSIFIER_FILE,
    approach_model_config,
    classifier_classes,
    evaluate_approach,
    forward_flops,
    load_classifier,
    load_restorer,
    matched_steps,
    oracle_restorer,
    read_approach,
    routing_table,
    train_approach,
    write_approach_outputs,
)
from girml.evaluation.harness import BenchItem
from girml.evaluation.report import ROW_COLUMNS
from girml.evaluation.study import run_study
from girml.models.classifier import DegradationClassifier
from girml.models.store import load_model_dir
from girml.records import BenchPair, read_jsonl
from girml.training.data import load_pairs
from tests.factories import tiny_params

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TRAIN = TrainConfig(
    steps=6, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0, val_every=6
)
CFG = EvaluateConfig(niqe_patch_size=16, baselines=["identity", "median"])


@pytest.fixture(scope="module")
def spec() -> DegradationsConfig:
    return parse_section(tiny_params()["degradations"], "degradations", DegradationsConfig)


def _train(kind: str, data: Path, spec: DegradationsConfig, root: Path, **extra) -> Path:
    folder = root / "approaches" / kind
    train_approach(
        ApproachConfig(kind=kind, **extra),
        TINY,
        TRAIN,
        spec,
        data / "pairs",
        folder,
        root / "ckpt" / kind,
        classifier_steps=5,
    )
    return folder


@pytest.fixture(scope="module")
def trained(data: Path, spec: DegradationsConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/approaches/ with a plain_cnn, the specialists, the routed classifier, a release."""
    root = tmp_path_factory.mktemp("study")
    _train("unified", data, spec, root, model={"type": "plain_cnn", "plain_blocks": 2})
    _train("specialists", data, spec, root)
    _train("routed", data, spec, root)
    _train("release", data, spec, root)
    return root / "approaches"


# --------------------------------------------------------------------------- compute


def test_equal_compute_gives_a_costlier_network_fewer_steps() -> None:
    assert matched_steps(2600, 100, 100) == 2600
    assert matched_steps(2600, 100, 200) == 1300
    assert matched_steps(2600, 100, 100, share=6) == 433
    assert matched_steps(3, 1, 1000) == 1  # at least one step
    with pytest.raises(ValueError, match="FLOPs must be > 0"):
        matched_steps(10, 0, 1)
    plain = approach_model_config(TINY, ApproachConfig(kind="unified", model={"type": "plain_cnn"}))
    assert plain.type == "plain_cnn" and plain.width == TINY.width
    assert forward_flops(plain, 16) != forward_flops(TINY, 16)
    with pytest.raises(ValidationError, match="no_such_key"):
        approach_model_config(TINY, ApproachConfig(kind="unified", model={"no_such_key": 1}))


def test_study_config_checks_names_kinds_and_routing() -> None:
    ok = StudyConfig(
        approaches={"s": {"kind": "specialists"}, "r": {"kind": "routed", "specialists": "s"}}
    )
    assert ok.approaches["r"].specialists == "s"
    with pytest.raises(ValidationError, match="routes to 'specialists'"):
        StudyConfig(approaches={"r": {"kind": "routed"}})
    with pytest.raises(ValidationError, match="routes to 'u'"):
        StudyConfig(
            approaches={"u": {"kind": "unified"}, "r": {"kind": "routed", "specialists": "u"}}
        )
    with pytest.raises(ValidationError, match="lower case"):
        StudyConfig(approaches={"Prompt-Net": {"kind": "unified"}})
    with pytest.raises(ValidationError, match="taken by the evaluate stage"):
        StudyConfig(approaches={"model": {"kind": "unified"}})
    with pytest.raises(ValidationError, match="trains no restorer"):
        StudyConfig(approaches={"r": {"kind": "release", "model": {"type": "nafnet"}}})
    with pytest.raises(ValidationError, match="kind"):
        StudyConfig(approaches={"x": {"kind": "ensemble"}})


# --------------------------------------------------------------------------- training


def test_unified_approach_trains_its_network_at_the_matched_steps(trained: Path) -> None:
    record = read_approach(trained / "unified")
    plain = approach_model_config(
        TINY, ApproachConfig(kind="unified", model={"type": "plain_cnn", "plain_blocks": 2})
    )
    want = matched_steps(TRAIN.steps, forward_flops(TINY, 16), forward_flops(plain, 16))
    assert record["kind"] == "unified" and record["model"] == "plain_cnn"
    assert record["steps"] == want
    model = load_model_dir(trained / "unified" / "model")
    assert record["params"] == sum(p.numel() for p in model.parameters())
    assert record["tflop"] == pytest.approx(record["budget_tflop"], rel=0.5)


def test_specialists_share_the_budget_one_model_per_training_family(trained: Path) -> None:
    record = read_approach(trained / "specialists")
    assert record["families"] == ["noise", "blur", "jpeg"]  # haze is held out
    assert record["steps"] == matched_steps(TRAIN.steps, 1, 1, share=3)
    for family in record["families"]:
        assert (trained / "specialists" / family / "weights.pt").is_file()


def test_routed_classifier_is_safetensors_and_loads_without_pickle(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = read_approach(trained / "routed")
    assert record["classes"] == ["clean", "noise", "blur", "jpeg"]
    assert 0.0 <= record["val_accuracy"] <= 1.0
    assert (trained / "routed" / CLASSIFIER_FILE).is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    model, classes = load_classifier(trained / "routed")
    assert classes == record["classes"]
    with torch.no_grad():
        assert model(torch.rand(2, 3, 40, 56)).shape == (2, 4)  # any image size
    assert read_approach(trained / "release") == {"kind": "release", "budget_tflop": pytest.approx(
        read_approach(trained / "routed")["budget_tflop"])}  # fmt: skip


def test_classifier_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        DegradationClassifier(1)
    with pytest.raises(ValueError, match=r"expected \(B,3,H,W\)"):
        DegradationClassifier(3)(torch.rand(1, 1, 16, 16))
    assert classifier_classes(
        parse_section(tiny_params()["degradations"], "degradations", DegradationsConfig)
    ) == ["clean", "noise", "blur", "jpeg"]


def test_a_failed_training_leaves_no_folder(
    data: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    out = tmp_path / "approaches" / "broken"
    with pytest.raises(FileNotFoundError):
        train_approach(
            ApproachConfig(kind="unified"), TINY, TRAIN, spec, tmp_path / "no-pairs", out,
            tmp_path / "ckpt", classifier_steps=5,
        )  # fmt: skip
    assert not out.exists()
    assert not [p for p in out.parent.glob("*") if p.name.startswith(".")]


def test_read_approach_names_the_stage_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dvc repro approach@nothing"):
        read_approach(tmp_path / "nothing")


# --------------------------------------------------------------------------- routing


def _item(suite: str, family: str, id_: str) -> BenchItem:
    return BenchItem(suite, family, id_, "", "", Path("lq.png"), Path("gt.png"))


def test_oracle_undoes_the_recipe_last_applied_family_first(data: Path) -> None:
    bench = data / "bench"
    record = read_jsonl(next((bench / "mixed" / "blur+noise").glob("recipes.jsonl")), BenchPair)[0]
    applied = [step.family for step in record.recipe.steps]
    calls: list[str] = []

    def mark(family: str):
        def fn(image: np.ndarray) -> np.ndarray:
            calls.append(family)
            return image + 1

        return fn

    restore = oracle_restorer({"noise": mark("noise"), "blur": mark("blur")}, bench)
    out = restore(_item("mixed", "blur+noise", record.id), np.zeros((2, 2, 3), np.uint8))
    assert calls == list(reversed(applied)) and int(out[0, 0, 0]) == len(applied)
    calls.clear()  # a held-out family has no specialist; clean and unknown images pass through
    haze = read_jsonl(bench / "unseen" / "haze" / "recipes.jsonl", BenchPair)[0]
    assert (
        int(restore(_item("unseen", "haze", haze.id), np.zeros((2, 2, 3), np.uint8))[0, 0, 0]) == 0
    )
    assert int(restore(_item("single-id", "clean", "x"), np.zeros((2, 2, 3), np.uint8)).max()) == 0
    assert calls == []


def test_routing_table_takes_the_best_method_on_each_familys_validation_pairs(data: Path) -> None:
    val = load_pairs(data / "pairs" / "val" / "pairs.jsonl")
    families = set(val.families)
    present = next(f for f in ("noise", "blur", "jpeg") if f in families)
    cheat = {id(lq): gt for lq, gt in zip(val.lq, val.gt, strict=True)}

    def oracle(lq: np.ndarray) -> np.ndarray:  # returns the ground truth: the best possible
        return cheat.get(id(lq), lq)

    def darken(lq: np.ndarray) -> np.ndarray:
        return (lq // 2).astype(np.uint8)

    candidates = {
        present: {"darken": darken, "oracle": oracle, "identity": lambda x: x.copy()},
        "missing": {"first": darken, "second": oracle},
    }
    table = routing_table(["clean", present, "missing"], candidates, data / "pairs")
    assert table == {"clean": "identity", present: "oracle", "missing": "first"}


# --------------------------------------------------------------------------- scoring


def test_each_kind_restores_and_scores_every_benchmark_image(
    trained: Path, data: Path, pristine, tmp_path: Path
) -> None:
    # the crop suites: whole photos are scored for the model and the champion only
    n_images = len([p for p in (data / "bench").glob("*/*/lq/*.png") if p.parts[-4] != "whole"])
    release_dir = Path(__file__).resolve().parents[2] / "models" / "release"
    for name, approach in {
        "unified": ApproachConfig(kind="unified"),
        "specialists": ApproachConfig(kind="specialists"),
        "routed": ApproachConfig(kind="routed"),
        "release": ApproachConfig(kind="release"),
    }.items():
        restorer, chosen = load_restorer(
            approach, trained / name, trained, release_dir, data / "bench", data / "pairs", CFG
        )
        result, cost = evaluate_approach(name, restorer, data / "bench", data / "clean", CFG)
        assert len(result.rows) == n_images and not result.failures, name
        assert {row["method"] for row in result.rows} == {name}
        assert cost["params"] > 0 and cost["seconds_per_megapixel"] > 0, name
        if name == "routed":
            assert chosen["routing"]["clean"] == "identity"
            assert set(chosen["routing"]) == {"clean", "noise", "blur", "jpeg"}
        out = tmp_path / name
        write_approach_outputs(result.rows, {**cost, **chosen}, out, "per_image.csv", "cost.json")
        header = (out / "per_image.csv").read_text().splitlines()[0].split(",")
        assert header[: len(ROW_COLUMNS)] == list(ROW_COLUMNS)
        assert json.loads((out / "cost.json").read_text())["params"] == cost["params"]


def test_an_image_that_fails_is_reported_and_the_rest_scored(
    trained: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    restorer, _ = load_restorer(
        ApproachConfig(kind="unified"), trained / "unified", trained, Path("none"),
        data / "bench", data / "pairs", CFG,
    )  # fmt: skip
    inner = restorer.restore

    def flaky(items, lqs):
        out = inner(items, lqs)
        return [
            RuntimeError("boom") if i.family == "jpeg" else o
            for i, o in zip(items, out, strict=True)
        ]

    broken = type(restorer)(flaky, restorer.params)
    result, _ = evaluate_approach("unified", broken, data / "bench", data / "clean", CFG)
    assert result.failures and all("boom" in f.message for f in result.failures)
    assert result.rows and all(row["family"] != "jpeg" for row in result.rows)


def test_routed_refuses_specialists_it_does_not_match(
    trained: Path, data: Path, tmp_path: Path
) -> None:
    specialists = tmp_path / "approaches" / "specialists"
    specialists.mkdir(parents=True)
    (specialists / "noise").symlink_to(trained / "specialists" / "noise")
    record = read_approach(trained / "specialists")
    (specialists / APPROACH_FILE).write_text(json.dumps({**record, "families": ["noise"]}))
    (tmp_path / "approaches" / "routed").symlink_to(trained / "routed")
    with pytest.raises(ValueError, match=r"no specialist for: retrain both"):
        load_restorer(
            ApproachConfig(kind="routed"), tmp_path / "approaches" / "routed",
            tmp_path / "approaches", Path("none"), data / "bench", data / "pairs", CFG,
        )  # fmt: skip


def test_the_study_ranks_approaches_beside_the_evaluate_rows(
    trained: Path, data: Path, bench, pristine, tmp_path: Path
) -> None:
    from girml.evaluation.harness import evaluate_method

    base = evaluate_method(lambda x: x.copy(), bench, CFG, pristine, None, method="model")
    from girml.evaluation.outputs import per_image_csv

    evaluate_csv = tmp_path / "per_image.csv"
    evaluate_csv.write_text(per_image_csv(base))
    restorer, _ = load_restorer(
        ApproachConfig(kind="specialists"), trained / "specialists", trained, Path("none"),
        data / "bench", data / "pairs", CFG,
    )  # fmt: skip
    result, cost = evaluate_approach("specialists", restorer, data / "bench", data / "clean", CFG)
    out = tmp_path / "approaches" / "specialists"
    write_approach_outputs(result.rows, cost, out, "per_image.csv", "cost.json")
    from girml.evaluation.study import Cost

    board = run_study(
        evaluate_csv, tmp_path / "study.json", tmp_path / "study.csv", tmp_path / "html",
        n_boot=200, costs={"specialists": Cost(cost["seconds_per_megapixel"], cost["params"])},
        more=[out / "per_image.csv"],
    )  # fmt: skip
    assert set(board.names()) == {"model", "specialists"}
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["methods"]["specialists"]["params"] == cost["params"]
    assert "diff_vs_model" in study["methods"]["specialists"]["single-id"]
    with pytest.raises(ValueError, match=r"method 'model' is already in"):
        run_study(
            evaluate_csv, tmp_path / "s2.json", tmp_path / "s2.csv", tmp_path / "h2",
            n_boot=200, more=[evaluate_csv],
        )  # fmt: skip
    assert not (tmp_path / "s2.json").exists()
