"""The method names of specialists (girml.evaluation.specialists), as eval.json reads them."""

from __future__ import annotations

import math

from girml.evaluation.report import eval_metrics
from girml.evaluation.specialists import SPECIALIST_PREFIX, specialist_method


def test_a_specialist_is_named_after_its_family() -> None:
    assert specialist_method("noise") == "specialist:noise"
    assert specialist_method("blur+noise").startswith(SPECIALIST_PREFIX)


def test_eval_json_finds_a_specialist_by_its_method_name() -> None:
    def group(method: str, out: float) -> dict:
        return {"method": method, "suite": "single-id", "family": "noise", "n": 1, "psnr_y": out,
                "ssim_y": 0.5, "psnr_y_input": 20.0, "psnr_gain": out - 20.0, "harm_rate": 0.0,
                "niqe": math.nan}  # fmt: skip

    table = [group("model", 22.0), group(specialist_method("noise"), 25.0)]
    metrics = eval_metrics(table, [], {}, specialists=["noise"])
    assert metrics["specialists.noise.gir_score"] == 5.0
