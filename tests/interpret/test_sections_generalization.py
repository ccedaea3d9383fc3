"""girml.interpret.sections_generalization: section 5, the evaluation's generalization tables."""

from __future__ import annotations

from pathlib import Path

from girml.interpret.render import render_html
from girml.interpret.sections import Table
from girml.interpret.sections_generalization import generalization_section
from tests.interpret.common import XSS


def test_suites_in_benchmark_order_and_tables() -> None:
    metrics = {
        "psnr_y.zeta": 10.0,
        "psnr_y.unseen": 20.0,
        "psnr_y.single-id": 30.0,
        "psnr_gain.unseen-content": 0.1,
        "ssim_y.mixed": 0.9,
        "gir_score": 0.5,
        "nlm.gir_score": 0.25,
    }
    sec = generalization_section(metrics)
    assert list(sec.data["suites"]) == ["single-id", "mixed", "unseen", "unseen-content", "zeta"]
    assert sec.data["suites"]["unseen"]["psnr_y"] == 20.0
    assert sec.data["suites"]["unseen"]["ssim_y"] is None
    assert sec.data["gir_scores"] == {"nlm.gir_score": 0.25}
    assert sec.data["harm"] == {"suites": {}, "worst_family_gain": None}
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    assert len(tables) == 2  # no harm, no champion
    assert tables[0].rows[0] == ["single-id", 30.0, None, None, None, None]


def test_missing_eval_json_says_why() -> None:
    sec = generalization_section(None)
    assert sec.data == {
        "available": False,
        "reason": "metrics/eval.json is missing: run `dvc repro evaluate`",
    }


def test_generalization_values_are_escaped_in_the_page() -> None:
    sec = generalization_section({"gir_score": 0.5, "champion.reasons": [XSS]})
    page = render_html([sec], {})
    assert "<script" not in page and "&lt;script&gt;" in page
    assert sec.data["champion"]["reasons"] == [XSS]  # the JSON keeps the raw text


def test_generalization_in_the_report(report: tuple[Path, dict]) -> None:
    _, result = report
    gen = result["generalization"]
    assert gen["gir_score"] == 0.7 and gen["suites"]["single-id"]["psnr_gain"] == 1.25
    assert gen["harm"] == {
        "suites": {
            "single-id": {"harm_rate": 0.25, "clean_psnr_y": 41.5},
            "unseen": {"harm_rate": 0.5, "clean_psnr_y": None},
        },
        "worst_family_gain": -0.4,
    }
    assert gen["champion"]["promoted"] is True
