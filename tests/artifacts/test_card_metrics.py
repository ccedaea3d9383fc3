"""The card's numbers (girml/artifacts/card_metrics.py): the model against the input and the
best classical method, harm, and the version the metrics must describe."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from girml.artifacts.card import known_limits
from girml.artifacts.card_metrics import card_metrics, method_for_version, read_per_family
from tests.artifacts.common import HARM, SUITES, metrics_for, per_family_rows, row


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


def test_whole_photo_rows_read_back_with_their_block_shift(tmp_path: Path) -> None:
    """A per_family.csv with the whole-photo suite (block_shift on its clean row, empty cells
    elsewhere) is read and judged: the release of a model evaluated on whole photos."""
    rows = per_family_rows()
    for r in rows:
        r["block_shift"] = ""
    rows.append({**row("model", "whole", "clean", 58.0, 100.0), "block_shift": 1.7})
    rows[-1]["harm_rate"] = ""
    path = tmp_path / "per_family.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    read = read_per_family(path)
    assert read[-1]["block_shift"] == pytest.approx(1.7)
    assert math.isnan(read[0]["block_shift"])
    metrics = card_metrics(read, "model", ["identity", "nlm"], {"champion.version": 3})
    assert metrics.harm["harm.block_shift.whole"] == pytest.approx(1.7)
    assert metrics.harm["harm.clean_psnr_y.whole"] == pytest.approx(58.0)
    assert "harm.block_shift.single-id" not in metrics.harm  # no shift measured there
