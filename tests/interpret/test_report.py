"""girml.interpret.report: the whole interpretation report, written and logged to MLflow."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from girml.baselines import BASELINES
from girml.config import DegradationsConfig
from girml.interpret.report import log_report, run_interpretation, summary_metrics
from tests.browser import Browser
from tests.interpret.common import CFG, data_uri_images, nonlinear_tiny_model

SECTION_TITLES = {
    "features": "Deep degradation representations",
    "lam": "Local attribution maps",
    "sensitivity": "Degradation sensitivity",
    "comparisons": "Visual comparisons",
    "generalization": "Generalization",
    "cases": "Cases to look at",
}


def test_report_writes_its_result(report: tuple[Path, dict]) -> None:
    out, result = report
    assert json.loads((out / "interpretation.json").read_text()) == result
    assert list(result) == [
        "meta",
        "config",
        *SECTION_TITLES,
        "timings_s",
        "cpu_s",
    ]
    assert result["meta"]["benchmark images used"] == result["features"]["n"]
    assert set(result["timings_s"]) == {"restore_and_features", *SECTION_TITLES, "total"}


def test_report_html_is_self_contained(report: tuple[Path, dict]) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    images = data_uri_images(page)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 8
    assert "tsne.png" in figures and "sensitivity.png" in figures
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and min(im.size) > 50
    assert page.count("<img ") == len(images)
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attr.startswith(("data:image/png;base64,", "#")), attr[:60]
    assert "<link" not in page and "<script" not in page and "url(" not in page


def test_report_html_has_every_section_in_order(report: tuple[Path, dict]) -> None:
    out, result = report
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</body></html>")
    assert "<h1>What the GIR model learned</h1>" in page
    starts = []
    for key, title in SECTION_TITLES.items():
        assert f'<li><a href="#{key}">{title}</a></li>' in page
        starts.append(page.index(f'<section id="{key}"><h2>{title}</h2>'))
    assert starts == sorted(starts)
    assert page.count("<section ") == page.count("</section>") == len(SECTION_TITLES)
    assert f"<tr><td>benchmark images used</td><td>{result['meta']['benchmark images used']}<" in (
        page
    )
    assert "<td>0.700</td>" in page  # gir_score of eval.json, formatted by the fmt filter


def test_summary_metrics_are_mlflow_safe_headlines() -> None:
    result = {
        "features": {"calinski_harabasz": {"degradation": 4.0, "content": "too few", "ratio": 2}},
        "lam": {"groups": {"unseen/blur+jpeg": {"di": 31.5}, "single-id/noise": {"di": None}}},
    }
    assert summary_metrics(result) == {
        "interpret.ch_degradation": 4.0,
        "interpret.ch_ratio": 2.0,
        "interpret.di.unseen/blur_jpeg": 31.5,
    }
    assert summary_metrics({}) == {}


def test_missing_evaluation_outputs_degrade_gracefully(
    data: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    cfg = CFG.model_copy(update={"images_per_group": 2, "lam_steps": 4, "sensitivity_levels": 3})
    result = run_interpretation(
        nonlinear_tiny_model(),
        data / "bench",
        spec,
        cfg,
        tmp_path / "report",
        eval_json=tmp_path / "missing.json",
        per_family_csv=tmp_path / "missing.csv",
    )
    assert result["generalization"]["available"] is False
    assert result["sensitivity"]["families"]["noise"]["bench_segments"] == []
    noise_baselines = [n for n in BASELINES.names() if BASELINES.meta(n)["family"] == "noise"]
    assert result["sensitivity"]["families"]["noise"]["baseline"] in noise_baselines  # swept
    page = (tmp_path / "report" / "index.html").read_text()
    assert "not available: metrics/eval.json is missing: run `dvc repro evaluate`" in page
    with pytest.raises(ValueError, match="layer must be one of"):
        run_interpretation(
            nonlinear_tiny_model(),
            data / "bench",
            spec,
            cfg.model_copy(update={"layer": "middle"}),
            tmp_path / "bad",
        )


def test_clean_only_bench_is_interpreted(
    data: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    """A bench holding only the clean family (nothing degraded) still gives a report."""
    bench = tmp_path / "bench"
    for folder in (data / "bench").glob("*/clean"):
        shutil.copytree(folder, bench / folder.parent.name / "clean")
    cfg = CFG.model_copy(update={"images_per_group": 2, "lam_steps": 4, "sensitivity_levels": 3})
    result = run_interpretation(nonlinear_tiny_model(), bench, spec, cfg, tmp_path / "report")
    assert result["features"]["n"] == 4 and result["features"]["unseen"] == []
    assert result["lam"]["available"] is False  # LAM needs a degradation
    assert set(result["sensitivity"]["families"]) == {"noise", "blur", "jpeg"}
    assert set(result["comparisons"]) == {"single-id/clean", "unseen-content/clean"}
    assert (tmp_path / "report" / "index.html").is_file()


def test_report_renders_offline_in_headless_chromium(
    report: tuple[Path, dict], browser: Browser
) -> None:
    """Every figure decodes, every table has rows, and nothing is asked of the network."""
    out, _ = report
    page = browser.open(out / "index.html")
    n = len(data_uri_images((out / "index.html").read_text()))
    page.assert_renders_offline(min_tables=3, min_images=n)
    assert page.title == "GIR interpretation report" and page.scripts == 0


def test_log_report_attaches_the_folder_to_the_run(
    report: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_schema: Path
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from girml.tracking.runs import start_run

    out, result = report
    before = mlflow.get_tracking_uri()
    shutil.copyfile(mlflow_schema, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    try:
        with start_run("gir", tmp_path, log_system_metrics=False) as run:
            run_id = run.info.run_id
        log_report(out, run_id, tmp_path)
        client = MlflowClient()
        names = {Path(a.path).name for a in client.list_artifacts(run_id, "interpretation")}
        assert {"index.html", "interpretation.json", "figures"} <= names
        logged = client.get_run(run_id).data.metrics
        ratio = result["features"]["calinski_harabasz"]["ratio"]
        assert logged["interpret.ch_ratio"] == pytest.approx(ratio)
        assert {"interpret.di.single-id/noise", "interpret.di.unseen/blur_jpeg"} <= set(logged)
    finally:
        mlflow.set_tracking_uri(before)
