"""The study's files (girml.evaluation.study_files): study.json's keys, the plot CSV, the HTML
page (escaped, self-contained, its template shipped as package data) and the flat MLflow
metrics."""

from __future__ import annotations

import base64
import csv
import fnmatch
import io
import json
import re
import tomllib
from pathlib import Path

import pytest

from girml.evaluation import study_files
from girml.evaluation.leaderboard import Cost, leaderboard
from girml.evaluation.study_files import (
    PLOT_COLUMNS,
    method_json,
    method_metrics,
    plot_csv,
    plot_rows,
    render_html,
    study_json,
)
from tests.evaluation.common import FAMILIES, study_rows


def test_the_page_escapes_method_names() -> None:
    evil = "<script>alert('x')</script>"
    board = leaderboard(study_rows("model") + study_rows(evil, seed=2), reference=evil)
    page = render_html(board, {"source": evil})
    assert "<script" not in page and "alert('x')" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    takeaway = page.split('<p class="takeaway">', 1)[1].split("</p>", 1)[0]
    assert escaped in takeaway
    # meta (2), plot caption, note, 2 headings, ranking, 3 per-suite tables and harm: each once
    assert page.count(escaped) - takeaway.count(escaped) == 11
    assert f'<tr class="ref"><td>{escaped}</td>' in page


def test_the_template_is_package_data_and_its_absence_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["girml"]
    template = (study_files.TEMPLATES_DIR / study_files.STUDY_TEMPLATE).relative_to(
        Path(study_files.__file__).parents[1]
    )
    assert any(fnmatch.fnmatch(template.as_posix(), glob) for glob in globs)
    monkeypatch.setattr(study_files, "TEMPLATES_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"study template 'study.html.j2' not found in "):
        render_html(leaderboard(study_rows("model", per_family=2)), {})


def test_study_json_keys_in_the_documented_order() -> None:
    board = leaderboard(
        study_rows("model") + study_rows("nlm", seed=3), costs={"nlm": Cost(0.25, 10)}
    )
    data = study_json(board)
    assert list(data) == ["reference", "seed", "n_boot", "level", "ranking", "methods"]
    assert data["ranking"] == board.names() and list(data["methods"]) == board.names()
    nlm = data["methods"]["nlm"]
    assert list(nlm)[:11] == [
        "rank",
        "gir_score",
        "gir_score_ci95_low",
        "gir_score_ci95_high",
        "gir_score_diff_vs_model",
        "gir_score_diff_ci95_low",
        "gir_score_diff_ci95_high",
        "generalization_gap",
        "worst_family_gain",
        "seconds_per_megapixel",
        "params",
    ]
    assert list(nlm)[11:] == [*FAMILIES, "clean"]
    assert nlm["seconds_per_megapixel"] == 0.25 and nlm["params"] == 10
    assert method_json(board.method("nlm"), "model") == nlm
    json.dumps(data, allow_nan=False)


def test_plot_rows_are_one_per_method_and_suite_with_six_decimals() -> None:
    board = leaderboard(study_rows("model") + study_rows("nlm", seed=3))
    rows = plot_rows(board)
    assert [(r["method"], r["suite"]) for r in rows] == [
        (method, suite) for method in board.names() for suite in FAMILIES
    ]
    text = plot_csv(board)
    read = list(csv.DictReader(io.StringIO(text)))
    assert tuple(read[0]) == PLOT_COLUMNS and len(read) == len(rows)
    assert all(len(r["low"].split(".")[1]) == 6 for r in read)
    assert float(read[0]["psnr_gain"]) == pytest.approx(rows[0]["psnr_gain"], abs=1e-6)


def test_method_metrics_are_the_defined_numbers_flattened() -> None:
    board = leaderboard(study_rows("model") + study_rows("nlm", seed=3))
    flat = method_metrics(board.method("model"), "model")
    assert flat["rank"] == float(board.method("model").rank)
    assert flat["single-id.psnr_gain"] == pytest.approx(
        board.method("model").suites["single-id"].psnr_gain.value, abs=1e-6
    )
    assert "clean.unseen-content.clean_psnr_y" in flat
    assert "params" not in flat and "seconds_per_megapixel" not in flat  # unknown: left out
    assert all(isinstance(value, float) for value in flat.values())


def test_the_page_embeds_the_gain_plot_says_the_takeaway_and_shows_costs() -> None:
    rows = study_rows("model") + study_rows("nlm", seed=0, shift=0.5)
    board = leaderboard(rows, n_boot=50, costs={"nlm": Cost(0.25, 1234), "model": Cost(None, 99)})
    page = render_html(board, {})
    payloads = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(payloads) == 1
    assert base64.b64decode(payloads[0]).startswith(b"\x89PNG\r\n\x1a\n")
    takeaway = page.split('<p class="takeaway">', 1)[1].split("</p>", 1)[0]
    assert takeaway.startswith("nlm ranks first") and board.names()[0] == "nlm"
    nlm_row = page.split("<tr><td>nlm</td><td>1</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>0.250</td><td>1234</td>" in nlm_row
    model_row = page.split('<tr class="ref"><td>model</td><td>2</td>', 1)[1].split("</tr>")[0]
    assert model_row.endswith("<td>-</td><td>99</td>")  # params known, time not measured


def test_protocols_come_last_in_study_json_and_published_rows_are_marked_on_the_page() -> None:
    board = leaderboard(study_rows("model") + study_rows("nlm", seed=3))
    evil = "<b>x</b>"
    cell = {"psnr": 30.5, "ssim": 0.9}
    protocols = {
        "allinone-3": {
            "convention": "airnet",
            "sets": ["rain100l", "sots-outdoor"],
            "rows": [
                {"method": "model", "published": False, "source": "m.json",
                 "sets": {"rain100l": {**cell, "n": 2}}},
                {"method": evil, "model": evil, "published": True, "paper": evil,
                 "convention": "promptir", "sets": {"rain100l": cell},
                 "sources": [{"reported_in": "T1", "read_at": "https://github.com/a/b"}],
                 "notes": ["rain100l: " + evil]},
            ],
        }
    }  # fmt: skip
    data = study_json(board, protocols)
    assert list(data)[-2:] == ["methods", "protocols"] and data["protocols"] == protocols
    assert data["ranking"] == board.names()  # no published name among the ranked
    page = render_html(board, {}, protocols)
    section = page.split("<h2>Protocols: measured beside published</h2>", 1)[1]
    assert "<b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in section
    assert section.count('class="pub"') == 1 and "published [1]" in section
    assert "<td>30.50</td><td>0.900</td><td>-</td><td>-</td>" in section  # sots: not reported
    assert 'href="https://github.com/a/b"' in section and "Printed in T1" in section
    assert "Protocols" not in render_html(board, {})  # no section without protocols
