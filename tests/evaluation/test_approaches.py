"""Restoring and scoring the study's approaches (girml.evaluation.approaches): each kind from its
trained folder, image failures, a routed approach whose specialists do not match, and the
study stage ranking the approaches beside the evaluate rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from girml.artifacts.loading import load_model
from girml.config import (
    ApproachConfig,
    DegradationsConfig,
    EvaluateConfig,
    ModelConfig,
    StudyConfig,
    TrainConfig,
)
from girml.evaluation.approaches import evaluate_approach, load_restorer, write_approach_outputs
from girml.evaluation.harness import evaluate_method
from girml.evaluation.leaderboard import Cost
from girml.evaluation.outputs import per_image_csv
from girml.evaluation.report import ROW_COLUMNS
from girml.evaluation.study import run_study
from girml.stages.approach import save_approach
from girml.training.approaches import APPROACH_FILE, read_approach, train_approach

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TRAIN = TrainConfig(
    steps=6, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0, val_every=6
)
CFG = EvaluateConfig(niqe_patch_size=16, baselines=["identity", "median"])


def _train(kind: str, data: Path, spec: DegradationsConfig, root: Path, **extra) -> Path:
    folder = root / "approaches" / kind
    trained = train_approach(
        ApproachConfig(kind=kind, **extra),
        TINY,
        TRAIN,
        spec,
        data / "pairs",
        root / "ckpt" / kind,
        classifier_steps=5,
    )
    save_approach(trained, folder)
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
            approach,
            trained / name,
            trained,
            release_dir,
            data / "bench",
            data / "pairs",
            CFG,
            load_model,
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
        data / "bench", data / "pairs", CFG, load_model,
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
            load_model,
        )  # fmt: skip


def test_the_study_ranks_approaches_beside_the_evaluate_rows(
    trained: Path, data: Path, bench, pristine, tmp_path: Path
) -> None:
    base = evaluate_method(lambda x: x.copy(), bench, CFG, pristine, None, method="model")
    evaluate_csv = tmp_path / "per_image.csv"
    evaluate_csv.write_text(per_image_csv(base))
    restorer, _ = load_restorer(
        ApproachConfig(kind="specialists"), trained / "specialists", trained, Path("none"),
        data / "bench", data / "pairs", CFG, load_model,
    )  # fmt: skip
    result, cost = evaluate_approach("specialists", restorer, data / "bench", data / "clean", CFG)
    out = tmp_path / "approaches" / "specialists"
    write_approach_outputs(result.rows, cost, out, "per_image.csv", "cost.json")
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
