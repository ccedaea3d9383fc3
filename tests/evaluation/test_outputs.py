"""The evaluate stage's files (girml.evaluation.outputs): CSV columns and cells, the two DVC plots
and the atomic writing of all five files, on hand-made rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from girml.evaluation.outputs import (
    generalization_plot,
    per_image_csv,
    psnr_per_family_plot,
    write_outputs,
)
from girml.evaluation.report import FAMILY_COLUMNS, ROW_COLUMNS, summarize
from girml.evaluation.scores import MAX_PSNR
from tests.evaluation.common import read_csv


def _row(method: str, suite: str, family: str, out: float, inp: float, **extra: float) -> dict:
    scores = {"psnr": out, "ssim": 0.5, "psnr_y": out, "ssim_y": 0.5, "psnr_y_input": inp,
              "ssim_y_input": 0.4, "niqe": math.nan}  # fmt: skip
    ident = {"method": method, "suite": suite, "family": family, "id": "0000",
             "source_id": "src", "level": "id"}  # fmt: skip
    return {**ident, **scores, **extra}


def _rows() -> list[dict]:
    rows = []
    for method, gain in (("model", 3.0), ("identity", 0.0), ("nlm", 1.0), ("wiener", 2.0)):
        rows += [
            _row(method, "single-id", "noise", 20.0 + gain, 20.0),
            _row(method, "single-ood", "noise", 18.0 + gain / 2, 18.0),
            _row(method, "single-id", "clean", MAX_PSNR - gain, MAX_PSNR),
        ]
    rows.append(_row("model", "whole", "noise", 25.0, 22.0, block_shift=1.5))
    rows.append(_row("model", "real", "real", math.nan, math.nan))
    return rows


def test_per_image_csv_has_the_row_columns_and_the_extras_when_present() -> None:
    plain = [r for r in _rows() if "block_shift" not in r]
    lines = per_image_csv(plain).splitlines()
    assert lines[0].split(",") == list(ROW_COLUMNS)
    assert lines[1].split(",")[6] == "23.000000"  # floats with 6 decimals
    assert lines[-1].split(",")[6] == ""  # NaN: an empty cell
    header = per_image_csv(_rows()).splitlines()[0].split(",")
    assert header == [*ROW_COLUMNS, "block_shift"]
    with_lpips = [{**r, "lpips": 0.1} for r in plain]
    assert per_image_csv(with_lpips).splitlines()[0].split(",")[-1] == "lpips"


def test_the_family_plot_has_the_model_best_baseline_and_identity_per_degraded_group() -> None:
    plot = psnr_per_family_plot(summarize(_rows()), ["identity", "nlm", "wiener"])
    assert [(r["suite"], r["family"], r["method"]) for r in plot] == [
        ("single-id", "noise", "model"),
        ("single-id", "noise", "wiener"),
        ("single-id", "noise", "identity"),
        ("single-ood", "noise", "model"),
        ("single-ood", "noise", "wiener"),
        ("single-ood", "noise", "identity"),
        ("whole", "noise", "model"),
    ]  # no clean group, no real photo
    assert plot[0]["label"] == "single-id/noise model" and plot[0]["psnr_y"] == 23.0


def test_the_generalization_plot_is_one_row_per_crop_suite() -> None:
    rows, columns = generalization_plot(summarize(_rows()), ["model", "nlm"], ["identity", "nlm"])
    assert columns == ["suite_index", "suite", "model", "nlm", "best_baseline"]
    assert [(r["suite_index"], r["suite"]) for r in rows] == [(0, "single-id"), (1, "single-ood")]
    assert rows[0]["model"] == 3.0 and rows[1]["model"] == 1.5
    assert rows[0]["best_baseline"] == 1.0  # nlm: identity is never the best baseline


def test_write_outputs_writes_the_five_files(tmp_path: Path) -> None:
    rows = _rows()
    per_family = summarize(rows)
    metrics = {"gir_score": 3.0, "champion.promoted": True}
    files = write_outputs(
        rows, per_family, metrics, ["identity", "nlm"], ["model", "nlm"], tmp_path / "m",
        tmp_path / "p",
    )  # fmt: skip
    assert sorted(p.name for p in files) == sorted(
        ["per_image.csv", "per_family.csv", "eval.json", "psnr_per_family.csv",
         "generalization.csv"]
    )  # fmt: skip
    assert json.loads((tmp_path / "m" / "eval.json").read_text()) == metrics
    header, family_rows = read_csv(tmp_path / "m" / "per_family.csv")
    assert header == [*FAMILY_COLUMNS, "block_shift"] and len(family_rows) == len(per_family)
    header, _ = read_csv(tmp_path / "p" / "generalization.csv")
    assert header == ["suite_index", "suite", "model", "nlm", "best_baseline"]
    with pytest.raises(ValueError, match="Out of range float values"):
        write_outputs(rows, per_family, {"gir_score": math.nan}, [], [], tmp_path / "m",
                      tmp_path / "p")  # fmt: skip
    assert json.loads((tmp_path / "m" / "eval.json").read_text()) == metrics  # unchanged
