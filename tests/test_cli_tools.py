"""The user's tools (girml/cli_tools.py): ``girml profile``, what ``girml release`` reads and
``girml restore`` with a bad ONNX model (``girml restore``: tests/test_restore_failures.py,
tests/test_inference.py, tests/test_cli_export.py; the release itself:
tests/artifacts/test_make_release.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from girml.cli import app
from girml.cli_tools import _release_inputs
from girml.config import deep_merge, load_section, profile_text, read_params
from girml.core.imageio import write_png
from tests.factories import textured_image

ROOT = Path(__file__).resolve().parents[1]


def test_girml_profile_keeps_the_base_comments_and_lays_the_profile_over_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "params.yaml"
    base = ROOT / "params.yaml"
    profile = ROOT / "profiles" / "long.yaml"
    result = CliRunner().invoke(
        app, ["profile", str(profile), "--base", str(base), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out} ({base} + {profile})\n"
    text = out.read_text()
    comments = [line.strip() for line in base.read_text().splitlines() if line.strip()[:1] == "#"]
    assert comments and all(line in text for line in comments)  # every comment line kept
    assert "# identity samples (input = clean crop)" in text  # and the inline ones
    merged = yaml.safe_load(text)
    assert (
        merged
        == profile_text(base, profile)[1]
        == deep_merge(read_params(base), read_params(profile)) | {"profile": "long"}
    )
    assert merged["model"]["width"] == 24 and merged["train"]["steps"] == 7000


def test_girml_profile_names_the_profile_in_the_params(tmp_path: Path) -> None:
    out = tmp_path / "params.yaml"
    args = ["profile", str(ROOT / "profiles/smoke.yaml"), "--base", str(ROOT / "params.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_params(out)["profile"] == "smoke" and read_params(out)["train"]["steps"] == 20


def test_an_invalid_profile_writes_nothing_and_names_the_key(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("model:\n  width: 2\n")
    out = tmp_path / "params.yaml"
    args = ["profile", str(profile), "--base", str(ROOT / "params.yaml"), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "model.width" in result.output
    assert not out.exists()


def test_a_release_reads_the_stage_outputs_and_the_params_it_describes() -> None:
    params = ROOT / "params.yaml"
    inputs = _release_inputs(params)
    assert inputs.eval_json == Path("metrics/eval.json")
    assert inputs.per_family_csv == Path("metrics/per_family.csv")
    assert inputs.dvc_lock == Path("dvc.lock") and inputs.spec_source == f"{params}: degradations"
    assert inputs.spec == load_section(params, "degradations")
    evaluate = load_section(params, "evaluate")
    assert (inputs.crop_border, inputs.tile) == (evaluate.crop_border, evaluate.tile)
    synthesize = load_section(params, "synthesize")
    assert inputs.unseen_content_category == synthesize.unseen_content_category


def test_restore_with_a_corrupt_onnx_file_names_it_once_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "in" / "a.png", textured_image(0, 24, 32))
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07 not a model")
    result = CliRunner().invoke(app, ["restore", "in", "-o", "out", "--model", "bad.onnx"])
    assert result.exit_code == 2, result.output
    assert result.output.count("error: bad.onnx: not a loadable ONNX model (") == 1
    assert not (tmp_path / "out").exists()
    # onnxruntime runs it on the CPU: another device is refused before anything loads
    args = ["restore", "in", "-o", "out", "--model", "bad.onnx", "--device", "cuda"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "error: --device cuda: an ONNX model runs on the CPU" in result.output
