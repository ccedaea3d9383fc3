"""girml.evaluation.protocols: every restorer scored on a protocol's rows by its convention.

The scores are checked against :func:`girml.metrics.conventions.score_pair` on the same pairs
(its match with each paper's code is tests/metrics/test_conventions.py's job) and NIQE.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from girml.config import DegradationsConfig, ProtocolSpec, ProtocolTask
from girml.data.testsets import PreparedSet
from girml.evaluation.bench import BenchItem
from girml.evaluation.methods import MethodError, command_restorer
from girml.evaluation.protocol_inputs import build_rows
from girml.evaluation.protocols import run_protocol
from girml.evaluation.restorers import per_image
from girml.metrics import fit_niqe, niqe
from girml.metrics.conventions import CONVENTIONS, score_pair
from tests.factories import textured_image, tiny_params
from tests.protocol_sets import IDS, prepare_folder_sets

SPEC = DegradationsConfig.model_validate(tiny_params()["degradations"])
PROTOCOL = ProtocolSpec(
    tasks=[
        ProtocolTask(set="cbsd68", input="gaussian", sigma=25),
        ProtocolTask(set="rain100l"),
        ProtocolTask(set="real-photos"),
    ],
    convention="airnet",
)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PreparedSet]:
    return prepare_folder_sets(
        ["cbsd68", "rain100l", "real-photos"], tmp_path_factory.mktemp("sets")
    )


def _identity(lq: np.ndarray) -> np.ndarray:
    return lq.copy()


def _darker(lq: np.ndarray) -> np.ndarray:
    return (lq // 2).astype(np.uint8)


def test_each_method_is_scored_by_the_protocols_convention(sets: dict) -> None:
    rows, _ = build_rows(PROTOCOL, sets, SPEC)
    pristine = fit_niqe([textured_image(i, 96, 128) for i in range(3)], patch_size=32)
    restorers = {"identity": per_image(_identity), "darker": per_image(_darker)}
    result = run_protocol("p", PROTOCOL, rows, restorers, niqe=lambda: pristine)
    assert result["protocol"] == "p" and result["convention"] == "airnet"
    assert list(result["sets"]) == ["cbsd68-s25", "rain100l"]
    conv = CONVENTIONS["airnet"]
    for row in rows[:2]:
        pairs = [image.load() for image in row.images]
        for name, fn in (("identity", _identity), ("darker", _darker)):
            scores = [score_pair(fn(lq), gt, conv) for lq, gt in pairs]
            got = result["sets"][row.name]["methods"][name]
            assert got["n"] == len(pairs) == result["sets"][row.name]["n"]
            assert got["psnr"] == pytest.approx(np.mean([s["psnr"] for s in scores]), abs=1e-6)
            assert got["ssim"] == pytest.approx(np.mean([s["ssim"] for s in scores]), abs=1e-6)
    real = result["no_reference"]["real-photos"]["methods"]["identity"]
    photos = [image.load()[0] for image in rows[2].images]
    assert real["niqe"] == pytest.approx(np.mean([niqe(p, pristine) for p in photos]), abs=1e-6)
    assert result["errors"] == {}


def test_a_command_restores_the_protocols_images_as_files(sets: dict) -> None:
    """An outside program gets each row's inputs as PNGs in {in} and writes {out}: a copying
    program scores exactly what the input itself scores."""
    rows, _ = build_rows(PROTOCOL, sets, SPEC)
    rows = rows[:2]
    restorers = {
        "identity": per_image(_identity),
        "copy": command_restorer("copy", "cp -r {in}/. {out}", Path.cwd()),
    }
    result = run_protocol("p", PROTOCOL, rows, restorers, outside=["copy"])
    for entry in result["sets"].values():
        assert entry["methods"]["copy"] == entry["methods"]["identity"]


def _fails_on(ids: set[str]) -> Any:
    def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        pairs = zip(items, lqs, strict=True)
        return [ValueError("no output") if item.id in ids else lq for item, lq in pairs]

    return restore


def test_an_outside_methods_failures_are_listed_and_total_failure_stops(sets: dict) -> None:
    rows, _ = build_rows(PROTOCOL, sets, SPEC)
    rows = rows[1:2]  # rain100l: rain-001, rain-002
    some = run_protocol("p", PROTOCOL, rows, {"m": _fails_on({"rain-002"})}, outside=["m"])
    assert some["sets"]["rain100l"]["methods"]["m"]["n"] == 1
    assert some["errors"] == {"m": ["rain100l/rain-002: ValueError: no output"]}
    both = build_rows(PROTOCOL, sets, SPEC)[0][:2]  # cbsd68-s25, then rain100l
    row_lost = run_protocol("p", PROTOCOL, both, {"m": _fails_on(set(IDS["rain100l"]))}, ["m"])
    assert "m" not in row_lost["sets"]["rain100l"]["methods"]  # no scores: no entry
    assert row_lost["sets"]["cbsd68-s25"]["methods"]["m"]["n"] == 2
    with pytest.raises(MethodError, match=r"method 'm' failed on rain100l/rain-001"):
        run_protocol("p", PROTOCOL, rows, {"m": _fails_on({"rain-001"})}, outside=["m"])
    with pytest.raises(RuntimeError, match=r"method 'model' failed on rain100l/rain-002"):
        run_protocol("p", PROTOCOL, rows, {"model": _fails_on({"rain-002"})})
