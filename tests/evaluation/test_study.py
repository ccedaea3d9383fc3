"""The study stage's library (girml.evaluation.study): reading the per-image rows, writing the
leaderboard's three files all or none, and logging it to MLflow (a real SQLite store)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from mlflow import MlflowClient

from girml.evaluation import published, study
from girml.evaluation.leaderboard import Cost, leaderboard
from girml.evaluation.report import ROW_COLUMNS
from girml.evaluation.study import log_study, read_per_image, run_study
from girml.evaluation.study_files import PLOT_COLUMNS
from tests.browser import Browser
from tests.evaluation.common import FAMILIES, NAN, row, study_rows, write_per_image


def test_read_per_image_parses_scores_and_names_bad_cells(tmp_path: Path) -> None:
    rows = [*study_rows("model", per_family=2), row("model", "real", "real", 0, NAN, NAN)]
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
    per_image = write_per_image(
        tmp_path / "per_image.csv", study_rows("model") + study_rows("nlm", seed=3)
    )
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


def test_the_page_renders_offline_in_headless_chromium(tmp_path: Path, browser: Browser) -> None:
    """The page run_study writes: its tables have rows, the gain plot decodes, nothing is asked
    of the network."""
    per_image = write_per_image(
        tmp_path / "per_image.csv", study_rows("model") + study_rows("nlm", seed=3)
    )
    out_json, plots_csv, html_dir = outputs(tmp_path)
    costs = {"nlm": Cost(0.25, 1234), "model": Cost(None, 99)}
    run_study(per_image, out_json, plots_csv, html_dir, seed=1, n_boot=50, costs=costs)
    page = browser.open(html_dir / "index.html")
    tables = (html_dir / "index.html").read_text().count("<table")
    page.assert_renders_offline(min_tables=tables, min_images=1)
    assert len(page.tables) == tables and page.images[0]["width"] > 300  # the gain plot
    assert page.title == "GIR study leaderboard" and page.scripts == 0


def test_run_study_changes_no_file_when_one_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_image = write_per_image(tmp_path / "per_image.csv", study_rows("model"))
    out_json, plots_csv, html_dir = outputs(tmp_path)
    run_study(per_image, out_json, plots_csv, html_dir)
    before = {p: p.read_bytes() for p in (out_json, plots_csv, html_dir / "index.html")}

    def broken(*args: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(study, "render_html", broken)
    write_per_image(per_image, study_rows("model", seed=5))
    with pytest.raises(RuntimeError, match="render failed"):
        run_study(per_image, out_json, plots_csv, html_dir)
    assert {p: p.read_bytes() for p in before} == before
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_log_study_makes_one_parent_and_one_child_per_method(mlflow_store: Path) -> None:
    board = leaderboard(
        study_rows("model") + study_rows("nlm", seed=3) + study_rows("identity", seed=4)
    )
    parent_id = log_study(board, mlflow_store, experiment="study-test", tags={"git_commit": "abc"})
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


def test_published_rows_change_no_ranking_no_interval_and_no_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published numbers are shown beside the measured ones only: a published row with a huge
    PSNR under the very names of the ranked methods leaves every rank, gain and interval, the
    plot and the rest of the page exactly as they are without it."""
    per_image = write_per_image(
        tmp_path / "per_image.csv", study_rows("model") + study_rows("nlm", seed=3)
    )
    plain = outputs(tmp_path / "plain")
    board = run_study(per_image, *plain, seed=1, n_boot=50)

    huge = tmp_path / "published.csv"
    with huge.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(published.COLUMNS)
        source = ["paper", "Table 1", "https://github.com/x/y/blob/0/t.png", ""]
        for method in ("nlm", "model"):
            cell = ["allinone-3", "rain100l", method, method, "99.9", "1.0", "promptir"]
            writer.writerow([*cell, *source])
    monkeypatch.setattr(published, "PUBLISHED_CSV", huge)
    measured = tmp_path / "protocols"
    measured.mkdir()
    (measured / "allinone-3.json").write_text(json.dumps({
        "protocol": "allinone-3", "convention": "airnet",
        "sets": {"rain100l": {"n": 3, "methods": {"nlm": {"psnr": 20.0, "ssim": 0.5, "n": 3}}}},
    }))  # fmt: skip
    with_published = outputs(tmp_path / "published")
    board2 = run_study(per_image, *with_published, seed=1, n_boot=50, protocols_dir=measured)

    assert board2 == board
    data = json.loads(with_published[0].read_text())
    rows = data.pop("protocols")["allinone-3"]["rows"]
    assert [(r["method"], r["published"]) for r in rows] == [
        ("nlm", False), ("nlm", True), ("model", True)
    ]  # fmt: skip
    assert rows[1]["sets"]["rain100l"]["psnr"] == 99.9
    assert data == json.loads(plain[0].read_text())  # ranking, gains, intervals: unchanged
    assert with_published[1].read_text() == plain[1].read_text()  # the plot's numbers
    page = (with_published[2] / "index.html").read_text()
    head, section = page.split("<h2>Protocols: measured beside published</h2>")
    assert head + "</body></html>" == (plain[2] / "index.html").read_text()
    assert section.count('class="pub"') == 2 and "published [2]" in section
    assert "https://github.com/x/y/blob/0/t.png" in section and "99.90" in section
