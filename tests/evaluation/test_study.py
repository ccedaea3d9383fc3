"""The study leaderboard (girml.evaluation.study): intervals, paired differences, ranking, files,
the HTML page and MLflow logging (a real SQLite store)."""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from girml.evaluation import study
from girml.evaluation.report import ROW_COLUMNS, harm_metrics, headline, summarize
from girml.evaluation.study import (
    PLOT_COLUMNS,
    Cost,
    leaderboard,
    log_study,
    read_per_image,
    run_study,
    study_json,
)
from girml.evaluation.uncertainty import gain_intervals
from tests.tracking import test_registered_models

NAN = float("nan")
FAMILIES = {
    "single-id": ("blur", "noise"),
    "single-ood": ("blur", "noise"),
    "mixed": ("blur+noise",),
    "unseen": ("rain",),
    "unseen-content": ("blur",),
}


def row(
    method: str, suite: str, family: str, image: int, out: float, inp: float, ssim: float = 0.8
) -> dict:
    """A per-image row: PSNR-Y ``out`` against the input's ``inp`` (dB); SSIM-Y gain 0.1."""
    return {"method": method, "suite": suite, "family": family, "id": f"{image:04d}",
            "source_id": "src", "level": "id", "psnr": out, "ssim": ssim, "psnr_y": out,
            "ssim_y": ssim, "psnr_y_input": inp, "ssim_y_input": ssim - 0.1,
            "niqe": NAN}  # fmt: skip


def bench(method: str, per_family: int = 8, seed: int = 0, shift: float = 0.0) -> list[dict]:
    """Rows of one method on every suite (random gains around 1 dB) plus ``clean`` families.

    The same ``seed`` gives the same inputs and outputs, so two methods of one seed score the
    same images; ``shift`` is added to every output (quarters of a dB stay exact in binary).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for suite, families in FAMILIES.items():
        for family in families:
            for image in range(per_family):
                inp = float(rng.integers(80, 120)) / 4
                out = inp + float(rng.integers(-4, 12)) / 4 + shift
                rows.append(row(method, suite, family, image, out, inp))
    for suite in ("single-id", "unseen-content"):
        rows += [row(method, suite, "clean", i, 60.0 - i, 100.0) for i in range(per_family)]
    return rows


def width(estimate: study.Estimate) -> float:
    return estimate.high - estimate.low


# --------------------------------------------------------------------------- statistics


def test_a_method_equal_to_the_reference_differs_by_zero() -> None:
    rows = bench("model") + bench("copy")
    board = leaderboard(rows)
    copy = board.method("copy")
    for stats in copy.suites.values():
        assert stats.diff is not None
        assert stats.diff.low <= stats.diff.value == 0.0 <= stats.diff.high
    assert copy.gir_score_diff is not None and copy.gir_score_diff.value == 0.0
    assert copy.gir_score == board.method("model").gir_score


def test_a_method_better_by_one_db_on_every_image_differs_by_one_with_zero_width() -> None:
    rows = bench("model") + bench("better", shift=1.0)
    board = leaderboard(rows)
    better, model = board.method("better"), board.method("model")
    assert board.names() == ["better", "model"]
    assert [better.rank, model.rank] == [1, 2]
    for suite, stats in better.suites.items():
        assert stats.diff == study.Estimate(1.0, 1.0, 1.0), suite
        assert stats.psnr_gain.value == pytest.approx(model.suites[suite].psnr_gain.value + 1)
        assert width(stats.psnr_gain) > 0  # the gains vary, their difference does not
    assert better.gir_score_diff == study.Estimate(1.0, 1.0, 1.0)
    # seen from the better method, the model is 1 dB worse
    assert leaderboard(rows, reference="better").method("model").suites["mixed"].diff == (
        study.Estimate(-1.0, -1.0, -1.0)
    )


def test_intervals_shrink_with_more_images() -> None:
    def noisy(method: str, n: int, seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        return [
            row(method, "single-id", "noise", i, 30.0 + rng.normal(1.0, 1.0), 30.0)
            for i in range(n)
        ]

    few = leaderboard(noisy("model", 10, 0) + noisy("other", 10, 1)).method("other")
    many = leaderboard(noisy("model", 1000, 0) + noisy("other", 1000, 1)).method("other")
    for part in ("psnr_gain", "diff"):
        wide, narrow = (
            getattr(few.suites["single-id"], part),
            getattr(many.suites["single-id"], part),
        )
        assert width(narrow) < width(wide) / 4, part  # ~ 1/sqrt(n): 100x the images, 1/10
    assert many.suites["single-id"].diff.low < 0 < many.suites["single-id"].diff.high


def test_the_same_seed_gives_the_same_numbers() -> None:
    rows = bench("model") + bench("nlm", seed=3)
    assert leaderboard(rows, seed=7) == leaderboard(rows, seed=7)
    first, second = leaderboard(rows, seed=7).method("nlm"), leaderboard(rows, seed=8).method("nlm")
    assert first.suites["single-id"].psnr_gain.value == second.suites["single-id"].psnr_gain.value
    assert first.suites["single-id"].psnr_gain != second.suites["single-id"].psnr_gain
    assert leaderboard(rows, n_boot=50) != leaderboard(rows, n_boot=60)


def test_the_numbers_are_those_of_eval_json() -> None:
    """gir_score, generalization_gap and harm are report.py's; at seed 0 the model's PSNR
    intervals are uncertainty.gain_intervals' (the psnr_gain_ci95 keys of eval.json)."""
    rows = bench("model") + bench("nlm", seed=3)
    board = leaderboard(rows)
    per_family = summarize(rows)
    for method in ("model", "nlm"):
        result, top = board.method(method), headline(per_family, method)
        assert result.gir_score is not None and result.gir_score.value == top["gir_score"]
        assert result.generalization_gap == top["generalization_gap"]
        harm = harm_metrics(per_family, method)
        assert result.worst_family_gain == harm["harm.worst_family_gain"]
        assert result.clean_psnr_y == {
            "single-id": harm["harm.clean_psnr_y.single-id"],
            "unseen-content": harm["harm.clean_psnr_y.unseen-content"],
        }
        for suite, stats in result.suites.items():
            assert stats.harm_rate == harm[f"harm_rate.{suite}"]
            assert stats.psnr_gain.value == pytest.approx(top[f"psnr_gain.{suite}"], abs=1e-9)
            assert stats.ssim_gain is not None
            assert stats.ssim_gain.value == pytest.approx(0.1)
    intervals = gain_intervals(rows, "model")
    for suite, stats in board.method("model").suites.items():
        assert stats.psnr_gain.low == intervals[f"psnr_gain_ci95_low.{suite}"]
        assert stats.psnr_gain.high == intervals[f"psnr_gain_ci95_high.{suite}"]
    assert list(board.method("model").suites) == list(FAMILIES)  # DESIGN.md's suite order


def test_a_missing_reference_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match=r"reference method 'champion'.*\['model', 'nlm'\]"):
        leaderboard(bench("model") + bench("nlm"), reference="champion")
    with pytest.raises(ValueError, match="reference method 'model'"):
        leaderboard([])


def test_bad_arguments_are_errors_that_name_the_value() -> None:
    rows = bench("model")
    with pytest.raises(ValueError, match="n_boot must be >= 1, got 0"):
        leaderboard(rows, n_boot=0)
    with pytest.raises(ValueError, match=r"costs name unknown method\(s\) \['x'\]"):
        leaderboard(rows, costs={"x": Cost(1.0)})
    with pytest.raises(ValueError, match="params must be a finite number >= 0, got -1"):
        Cost(params=-1)
    with pytest.raises(ValueError, match=r"seconds_per_megapixel must be .* got nan"):
        Cost(seconds_per_megapixel=NAN)
    with pytest.raises(ValueError, match="'model' has image single-id/rain/0000 twice"):
        leaderboard([*rows, *[row("model", "single-id", "rain", 0, 1.0, 2.0)] * 2])


def test_empty_suites_and_methods_without_ground_truth_are_left_out_not_errors() -> None:
    rows = [
        *bench("model"),
        # only the clean family, and only photos without GT: no gain anywhere
        row("clean-only", "single-id", "clean", 0, 50.0, 100.0),
        row("clean-only", "real", "real", 0, NAN, NAN),
        # one suite the reference does not have, one it does
        row("partial", "real", "real", 0, NAN, NAN),
        row("partial", "extra", "blur", 0, 31.0, 30.0),
        row("partial", "unseen", "rain", 0, 31.0, 30.0),
    ]
    board = leaderboard(rows, costs={"model": Cost(seconds_per_megapixel=0.5, params=1200)})
    clean_only, partial = board.method("clean-only"), board.method("partial")
    assert clean_only.suites == {} and clean_only.gir_score is None
    assert clean_only.clean_psnr_y == {"single-id": 50.0}
    assert list(partial.suites) == ["unseen", "extra"]  # DESIGN.md's suites first
    assert partial.suites["extra"].diff is None  # the reference has no image there
    assert partial.suites["unseen"].diff is not None
    assert partial.gir_score is not None and partial.generalization_gap is None
    assert board.names()[-1] == "clean-only"  # no gir_score: ranked last
    methods = study_json(board)["methods"]
    assert methods["clean-only"]["gir_score"] is None
    assert methods["clean-only"]["gir_score_diff_vs_model"] is None
    assert methods["partial"]["extra"]["diff_vs_model"] is None
    assert methods["partial"]["seconds_per_megapixel"] is None  # unknown -> null
    assert methods["model"]["seconds_per_megapixel"] == 0.5
    assert methods["model"]["params"] == 1200
    json.dumps(study_json(board), allow_nan=False)


# --------------------------------------------------------------------------- files


def write_per_image(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v
                             for k, v in r.items()})  # fmt: skip
    return path


def test_read_per_image_parses_scores_and_names_bad_cells(tmp_path: Path) -> None:
    rows = [*bench("model", per_family=2), row("model", "real", "real", 0, NAN, NAN)]
    read = read_per_image(write_per_image(tmp_path / "per_image.csv", rows))
    assert read[0]["id"] == "0000" and read[0]["psnr_y"] == rows[0]["psnr_y"]
    assert math.isnan(read[-1]["psnr_y"])
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(ROW_COLUMNS) + "\nmodel,single-id,blur,0,s,id,x,1,1,1,1,1,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: psnr = 'x' is not a number"):
        read_per_image(bad)
    bad.write_text("method,suite\nmodel,single-id\n")
    with pytest.raises(ValueError, match="missing column"):
        read_per_image(bad)
    with pytest.raises(FileNotFoundError, match="dvc repro evaluate"):
        read_per_image(tmp_path / "none.csv")


def outputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    return tmp_path / "metrics/study.json", tmp_path / "plots/study.csv", tmp_path / "reports/study"


def test_run_study_writes_json_plot_and_page(tmp_path: Path) -> None:
    per_image = write_per_image(tmp_path / "per_image.csv", bench("model") + bench("nlm", seed=3))
    out_json, plots_csv, html_dir = outputs(tmp_path)
    board = run_study(per_image, out_json, plots_csv, html_dir, seed=1)
    data = json.loads(out_json.read_text())
    assert list(data) == ["reference", "seed", "n_boot", "level", "ranking", "methods"]
    assert data["ranking"] == board.names() and data["seed"] == 1
    suite = data["methods"]["nlm"]["single-id"]
    assert list(suite) == ["n", "psnr_gain", "psnr_gain_ci95_low", "psnr_gain_ci95_high",
                           "ssim_gain", "ssim_gain_ci95_low", "ssim_gain_ci95_high",
                           "diff_vs_model", "diff_ci95_low", "diff_ci95_high",
                           "harm_rate"]  # fmt: skip
    assert suite["psnr_gain"] == round(board.method("nlm").suites["single-id"].psnr_gain.value, 6)
    with plots_csv.open(newline="") as fh:
        plot = list(csv.DictReader(fh))
    assert tuple(plot[0]) == PLOT_COLUMNS
    assert len(plot) == 2 * len(FAMILIES)
    assert all(float(r["low"]) <= float(r["psnr_gain"]) <= float(r["high"]) for r in plot)
    page = (html_dir / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "nlm" in page
    assert "<script" not in page and "<link" not in page
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_run_study_changes_no_file_when_one_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_image = write_per_image(tmp_path / "per_image.csv", bench("model"))
    out_json, plots_csv, html_dir = outputs(tmp_path)
    run_study(per_image, out_json, plots_csv, html_dir)
    before = {p: p.read_bytes() for p in (out_json, plots_csv, html_dir / "index.html")}

    def broken(*args: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(study, "render_html", broken)
    write_per_image(per_image, bench("model", seed=5))
    with pytest.raises(RuntimeError, match="render failed"):
        run_study(per_image, out_json, plots_csv, html_dir)
    assert {p: p.read_bytes() for p in before} == before
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_the_page_escapes_method_names() -> None:
    evil = "<script>alert('x')</script>"
    board = leaderboard(bench("model") + bench(evil, seed=2), reference=evil)
    page = study.render_html(board, {"source": evil})
    assert "<script" not in page and "alert('x')" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    # meta (2), note, 2 headings, ranking, 3 per-suite tables and harm: each once
    assert page.count(escaped) == 10
    assert f'<tr class="ref"><td>{escaped}</td>' in page


# --------------------------------------------------------------------------- tracking


# a fresh SQLite MLflow store per test; yields the project root
store = test_registered_models.store


def test_log_study_makes_one_parent_and_one_child_per_method(store: Path) -> None:
    board = leaderboard(bench("model") + bench("nlm", seed=3) + bench("identity", seed=4))
    parent_id = log_study(board, store, experiment="study-test", tags={"git_commit": "abc"})
    client = MlflowClient()
    parent = client.get_run(parent_id)
    assert parent.info.run_name == "study" and parent.info.status == "FINISHED"
    assert parent.data.tags["git_commit"] == "abc" and parent.data.tags["stage"] == "study"
    assert parent.data.params["reference"] == "model"
    experiment = client.get_experiment_by_name("study-test")
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(c.info.run_name for c in children) == sorted(board.names())
    assert len(client.search_runs([experiment.experiment_id])) == 1 + len(board.names())
    for child in children:
        result = board.method(child.info.run_name)
        metrics = child.data.metrics
        assert child.data.tags["rank"] == str(result.rank)
        assert metrics["gir_score"] == pytest.approx(result.gir_score.value, abs=1e-6)
        assert metrics["single-id.diff_ci95_low"] == pytest.approx(
            result.suites["single-id"].diff.low, abs=1e-6
        )
        assert metrics["clean.single-id.clean_psnr_y"] == pytest.approx(56.5)
        assert "params" not in metrics  # unknown costs are not logged


def test_the_template_is_package_data_and_its_absence_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["girml"]
    template = (study.TEMPLATES_DIR / study.STUDY_TEMPLATE).relative_to(
        Path(study.__file__).parents[1]
    )
    assert any(fnmatch.fnmatch(template.as_posix(), glob) for glob in globs)
    monkeypatch.setattr(study, "TEMPLATES_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"study template 'study.html.j2' not found in "):
        study.render_html(leaderboard(bench("model", per_family=2)), {})
