"""The study page's gain plot and takeaway (girml.evaluation.study_page): a PNG with one bar
per method and suite, sentences that name the first method, its lead, its standing against the
reference and where the unified model is beaten."""

from __future__ import annotations

import io

from PIL import Image

from girml.evaluation.leaderboard import leaderboard
from girml.evaluation.study_page import gain_plot_png, takeaway
from tests.evaluation.common import study_rows


def test_the_plot_is_a_png_and_an_empty_board_still_draws() -> None:
    board = leaderboard(study_rows("model") + study_rows("nlm", seed=3), n_boot=20)
    image = Image.open(io.BytesIO(gain_plot_png(board)))
    assert image.format == "PNG" and image.width > 300 and image.height > 200
    clean_only = [r for r in study_rows("model") if r["family"] == "clean"]
    empty = leaderboard(clean_only, n_boot=20)
    assert Image.open(io.BytesIO(gain_plot_png(empty))).format == "PNG"


def test_takeaway_names_the_first_its_lead_the_reference_and_where_the_model_loses() -> None:
    rows = study_rows("model") + study_rows("nlm", seed=0, shift=2.0)
    board = leaderboard(rows, n_boot=50)
    text = takeaway(board)
    assert text[0].startswith("nlm ranks first with a GIR score of +")
    assert "leads model" in text[1] and "by 2.00 dB" in text[1]
    assert "clearly better than model" in text[2]  # a constant +2 dB: the interval excludes 0
    assert text[3].startswith("The unified model (model) is beaten on single-id to nlm")


def test_takeaway_when_the_reference_leads_and_without_scores() -> None:
    rows = study_rows("model", seed=0, shift=0.25) + study_rows("nlm", seed=0)
    text = takeaway(leaderboard(rows, n_boot=50))
    assert text[0].startswith("model ranks first")
    assert text[2].startswith("The reference, model, is the first: the next method's paired")
    assert text[3] == "The unified model (model) has the best gain on every suite it has."
    clean_only = [r for r in study_rows("model") if r["family"] == "clean"]
    assert takeaway(leaderboard(clean_only, n_boot=20)) == []
