"""girml/stages/code_deps.py: the code closure of a stage and its declaration by folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.stages.code_deps import ROOT, code_closure, code_deps, expected, rewrite


def _rel(paths: set[Path]) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in paths}


def test_the_code_closure_follows_imports_inside_functions() -> None:
    """A lazy import counts, a shipped code file counts, and a module no one imports does not."""
    closure = _rel(code_closure("train"))
    assert "girml/stages/train.py" in closure and "girml/stages/contract.py" in closure
    assert "girml/tuning/results.py" in closure  # imported inside _configs (train.use_tuned)
    assert "girml/artifacts/restorer_model.py" in closure  # shipped as MLflow model code
    assert "girml/cli.py" not in closure  # the CLI runs the stage; the stage never imports it
    assert "girml/stages/evaluate.py" not in closure
    assert "girml/stages/code_deps.py" not in closure


def test_the_closure_includes_the_templates_a_module_renders() -> None:
    interpret = _rel(code_closure("interpret"))
    # render.py names report.html.j2, which imports blocks.html.j2
    assert {
        "girml/interpret/templates/report.html.j2",
        "girml/interpret/templates/blocks.html.j2",
    } <= interpret
    # the study verb's template, not the evaluate stage's
    assert "girml/evaluation/templates/study.html.j2" not in _rel(code_closure("evaluate"))


def test_an_unknown_stage_module_is_an_error() -> None:
    with pytest.raises(FileNotFoundError, match=r"girml/stages/no_such_verb\.py"):
        code_closure("no_such_verb")


def test_packages_are_declared_as_folders_and_top_level_modules_as_files() -> None:
    closure = {
        ROOT / "girml/data/collect.py",
        ROOT / "girml/data/sources.py",
        ROOT / "girml/config/base.py",
        ROOT / "girml/core/errors.py",
        ROOT / "girml/__init__.py",
        ROOT / "girml/stages/collect.py",
        ROOT / "girml/stages/contract.py",
    }
    assert code_deps(closure) == [
        "girml/__init__.py",
        "girml/config",
        "girml/core",
        "girml/data",
        "girml/stages/collect.py",
        "girml/stages/contract.py",
    ]


def test_every_stage_declares_its_own_module_and_no_other_stage() -> None:
    for name, deps in expected(ROOT / "dvc.yaml").items():
        stage_files = [d for d in deps if d.startswith("girml/stages/")]
        assert "girml/stages" not in deps, name
        assert any(d.endswith(".py") for d in stage_files), name


def test_rewrite_replaces_only_the_code_lines_of_each_stage() -> None:
    text = "\n".join(
        [
            "stages:",
            "  collect:",
            "    cmd: girml collect --params params.yaml",
            "    deps:",
            "      - data/raw",
            "      - girml/old.py",
            "      - girml/gone",
            "      - girml/data/package_photos.csv   # pinned images",
            "    outs:",
            "      - data/clean",
            "  train:",
            "    deps:",
            "      - girml/x.py",
        ]
    )
    new = rewrite(text, {"collect": ["girml/data", "girml/core/errors.py"], "train": ["girml/y"]})
    assert new.split("\n") == [
        "stages:",
        "  collect:",
        "    cmd: girml collect --params params.yaml",
        "    deps:",
        "      - data/raw",
        "      - girml/data",
        "      - girml/core/errors.py",
        "      - girml/data/package_photos.csv   # pinned images",
        "    outs:",
        "      - data/clean",
        "  train:",
        "    deps:",
        "      - girml/y",
    ]
    assert (
        rewrite(new, {"collect": ["girml/data", "girml/core/errors.py"], "train": ["girml/y"]})
        == new
    )
