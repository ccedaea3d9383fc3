"""Published results (girml.evaluation.published): the shipped table, its validation, and its
place beside the measured protocol scores."""

from __future__ import annotations

import csv
import fnmatch
import json
import tomllib
from pathlib import Path

import pytest

from girml.config.protocols import BUILTIN_PROTOCOLS
from girml.evaluation import published
from girml.evaluation.published import (
    COLUMNS,
    PUBLISHED_CSV,
    load_published,
    protocol_tables,
    read_measured,
    study_protocols,
)
from girml.metrics.conventions import CONVENTIONS

METHODS = {"AirNet", "PromptIR", "InstructIR", "AdaIR", "MoCE-IR", "DFPIR"}


def _write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _cell(**changes: str) -> dict[str, str]:
    base = {
        "protocol": "allinone-3",
        "set": "rain100l",
        "method": "X",
        "model": "X",
        "psnr": "30.5",
        "ssim": "0.9",
        "convention": "promptir",
        "paper": "X et al.",
        "reported_in": "X, Table 1",
        "read_at": "https://github.com/x/x/blob/0/t.png",
        "note": "",
    }
    return {**base, **changes}


def _write_measured(directory: Path, name: str = "allinone-3") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "protocol": name,
        "convention": "airnet",
        "sets": {
            "rain100l": {"n": 2, "methods": {"model": {"psnr": 31.25, "ssim": 0.91, "n": 2}}},
            "cbsd68-s15": {"n": 2, "methods": {"model": {"psnr": 30.5, "ssim": 0.88, "n": 2}}},
        },
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_the_shipped_table_covers_the_methods_on_the_builtin_protocols() -> None:
    rows = load_published()
    assert {row.method for row in rows} >= METHODS
    for name in ("allinone-3", "allinone-5"):
        builtin_rows = {task.row for task in BUILTIN_PROTOCOLS[name].tasks}
        mine = [row for row in rows if row.protocol == name]
        assert {row.set for row in mine} == builtin_rows  # the protocol's row names
        assert {row.method for row in mine} >= METHODS
    for row in rows:
        assert row.convention in CONVENTIONS and row.read_at.startswith("https://github.com/")
        if row.psnr is None or row.ssim is None:
            assert row.note, row  # an empty cell says why
        else:
            assert row.reported_in and 10 < row.psnr < 50 and 0.3 < row.ssim < 1


def test_the_table_is_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["girml"]
    relative = PUBLISHED_CSV.relative_to(Path(published.__file__).parents[1]).as_posix()
    assert any(fnmatch.fnmatch(relative, glob) for glob in globs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"psnr": "abc"}, r"t.csv:2: psnr = 'abc' is not a number"),
        ({"ssim": "1.5"}, r"t.csv:2: ssim = 1.5 is outside \[0.0, 1.0\]"),
        ({"convention": "matlab"}, r"t.csv:2: convention 'matlab' is not one of"),
        ({"reported_in": ""}, r"t.csv:2: a published number needs reported_in"),
        ({"read_at": ""}, r"t.csv:2: read_at is empty"),
    ],
)
def test_a_bad_cell_is_an_error_naming_file_and_line(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_published(_write_table(tmp_path / "t.csv", [_cell(**changes)]))


def test_bad_tables_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"published results table .* not found"):
        load_published(tmp_path / "none.csv")
    twice = _write_table(tmp_path / "t.csv", [_cell(), _cell(psnr="31")])
    with pytest.raises(ValueError, match=r"t.csv:3: .*'rain100l', 'X'\) repeats line 2"):
        load_published(twice)
    (tmp_path / "cols.csv").write_text("protocol,set\nallinone-3,rain100l\n")
    with pytest.raises(ValueError, match=r"cols.csv: columns must be protocol, set, method"):
        load_published(tmp_path / "cols.csv")
    empty = load_published(_write_table(tmp_path / "e.csv", [_cell(psnr="", ssim="", note="n")]))
    assert empty[0].psnr is None and empty[0].ssim is None


def test_measured_results_are_read_when_present(tmp_path: Path) -> None:
    assert read_measured(tmp_path / "missing") == {}
    path = _write_measured(tmp_path / "protocols")
    measured = read_measured(tmp_path / "protocols")
    assert measured["allinone-3"]["convention"] == "airnet"
    assert measured["allinone-3"]["source"] == str(path)
    path.write_text(json.dumps({"protocol": "allinone-3", "sets": {"x": {"methods": {"m": {}}}}}))
    with pytest.raises(ValueError, match=r"allinone-3.json: not a protocol result \(KeyError"):
        read_measured(tmp_path / "protocols")
    path.write_text("{")
    with pytest.raises(ValueError, match=r"allinone-3.json: not a protocol result"):
        read_measured(tmp_path / "protocols")
    scores = {"psnr": "31", "ssim": 0.9, "n": 1}
    sets = {"rain100l": {"n": 1, "methods": {"m": scores}}}
    path.write_text(json.dumps({"protocol": "allinone-3", "sets": sets}))
    with pytest.raises(ValueError, match=r"psnr = '31' is not a number"):
        read_measured(tmp_path / "protocols")
    scores["psnr"] = None  # nothing scored: shown as not measured
    path.write_text(json.dumps({"protocol": "allinone-3", "sets": sets, "no_reference": {}}))
    tables = protocol_tables(read_measured(tmp_path / "protocols"), [])
    assert tables["allinone-3"]["rows"][0]["sets"]["rain100l"] == {
        "psnr": None,
        "ssim": 0.9,
        "n": 1,
    }


def test_tables_put_measured_rows_first_and_mark_the_published(tmp_path: Path) -> None:
    table_csv = _write_table(
        tmp_path / "t.csv",
        [
            _cell(),
            _cell(set="sots-outdoor", psnr="", ssim="", note="not reported"),
            _cell(protocol="allinone-5", model="X-5D"),
        ],
    )
    tables = protocol_tables(
        read_measured(_write_measured(tmp_path / "p").parent), load_published(table_csv)
    )
    assert list(tables) == ["allinone-3", "allinone-5"]
    three = tables["allinone-3"]
    assert three["convention"] == "airnet"
    assert three["sets"] == ["rain100l", "cbsd68-s15", "sots-outdoor"]  # measured order first
    measured, pub = three["rows"]
    assert measured["published"] is False and measured["method"] == "model"
    assert measured["sets"]["rain100l"] == {"psnr": 31.25, "ssim": 0.91, "n": 2}
    assert pub["published"] is True and pub["paper"] == "X et al."
    assert pub["sets"]["rain100l"]["psnr"] == 30.5
    assert pub["sets"]["sots-outdoor"]["psnr"] is None
    assert pub["sources"] == [{"reported_in": "X, Table 1", "read_at": _cell()["read_at"]}]
    assert pub["notes"] == ["sots-outdoor: not reported"]
    five = tables["allinone-5"]
    assert five["convention"] is None and [r["published"] for r in five["rows"]] == [True]


def test_study_protocols_reads_the_shipped_table(tmp_path: Path) -> None:
    tables = study_protocols(tmp_path / "nothing")
    assert set(tables) == {"allinone-3", "allinone-5"}
    assert all(row["published"] for table in tables.values() for row in table["rows"])
    json.dumps(tables, allow_nan=False)  # valid JSON as study.json needs
