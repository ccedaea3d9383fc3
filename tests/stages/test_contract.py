"""dvc.yaml against the stage modules: each stage declares exactly the params keys and the code
its module reads, so DVC reruns a stage exactly when something it depends on changes."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from girml import cli
from girml.stages.contract import STAGE_PARAMS, StageParams

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "girml"
# a module that names another file as code to ship (MLflow models from code) reads it too
CODE_FILE = re.compile(r"""with_name\(["']([A-Za-z_]\w*\.py)["']\)""")
# a template named as a string literal: "report.html.j2"
TEMPLATE = re.compile(r"""["']([\w.-]+\.j2)["']""")


def _dvc_stages() -> dict[str, dict]:
    """The stages as written; a ``foreach`` stage by its ``do`` body (``${key}`` unresolved)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _verb(stage: dict) -> str:
    return stage["cmd"].split()[1]  # "girml VERB [NAME] --params params.yaml"


def _module(verb: str) -> str:
    return verb.replace("-", "_")  # girml approach-eval -> girml/stages/approach_eval.py


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


@cache
def _imports(path: Path) -> frozenset[Path]:
    """The girml files ``path`` imports (at module level or inside functions) or ships as code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.parent.relative_to(ROOT).parts
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    files = set()
    for name in names:
        if name.split(".")[0] != "girml":
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            found = _module_file(".".join(parts[:depth]))
            if found is not None:
                files.add(found)
    files.update(path.with_name(n) for n in CODE_FILE.findall(path.read_text(encoding="utf-8")))
    return frozenset(files)


def code_closure(verb: str) -> set[Path]:
    """Every girml file the stage module ``girml.stages.<verb>`` can run, and the templates it
    renders."""
    start = _module_file(f"girml.stages.{verb}")
    assert start is not None, f"no module girml/stages/{verb}.py"
    seen: set[Path] = set()
    todo = [start, *_imports(start)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path))
    return seen | _templates(seen)


def _templates(modules: set[Path]) -> set[Path]:
    """The jinja2 templates in ``templates/`` beside ``modules`` that they name (as a string
    ``"x.j2"``), and the templates those import or include, transitively."""
    found: set[Path] = set()
    todo = [
        (path.parent / "templates" / name)
        for path in modules
        for name in TEMPLATE.findall(path.read_text(encoding="utf-8"))
    ]
    while todo:
        template = todo.pop()
        if template.is_file() and template not in found:
            found.add(template)
            text = template.read_text(encoding="utf-8")
            todo.extend(template.with_name(name) for name in TEMPLATE.findall(text))
    return found


def declared_code(stage: dict) -> list[str]:
    """The stage's declared girml code: modules and folders (data files it reads, like the
    package pin file, are declared too but are not imports)."""
    return [
        d
        for d in stage.get("deps", [])
        if str(d).startswith("girml") and not str(d).endswith(DATA_SUFFIXES)
    ]


DATA_SUFFIXES = (".csv",)


def test_collect_declares_the_package_pin_file() -> None:
    assert "girml/data/package_photos.csv" in _dvc_stages()["collect"]["deps"]


def expected_code(closure: set[Path]) -> list[str]:
    """The shortest exact declaration: a folder where every file in it is read, else files."""
    rel = {p.relative_to(ROOT) for p in closure}
    out: set[Path] = set()
    for path in rel:
        top = path
        for parent in path.parents:
            if parent == Path("."):
                break
            files = {f.relative_to(ROOT) for f in (ROOT / parent).rglob("*") if _counts(f)}
            if files <= rel:
                top = parent
        out.add(top)
    return sorted({str(p) for p in out if not any(q in p.parents for q in out)})


def _counts(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts


def test_dvc_yaml_declares_exactly_the_params_each_verb_reads() -> None:
    stages = _dvc_stages()
    for name, stage in stages.items():
        assert sorted(stage.get("params", [])) == sorted(STAGE_PARAMS[_verb(stage)]), name
    assert {_verb(s) for s in stages.values()} == set(STAGE_PARAMS)


def test_dvc_yaml_declares_exactly_the_code_each_stage_runs() -> None:
    wrong = []
    for name, stage in _dvc_stages().items():
        want = expected_code(code_closure(_module(_verb(stage))))
        if sorted(declared_code(stage)) != want:
            wrong.append(f"{name}: declare\n      - " + "\n      - ".join(want))
    assert not wrong, "dvc.yaml code deps are not the stage's imports:\n" + "\n".join(wrong)


def test_the_code_closure_follows_imports_inside_functions(tmp_path: Path) -> None:
    """The checker itself: a lazy import counts, and a module beside it that no one imports
    does not."""
    closure = {p.relative_to(ROOT).as_posix() for p in code_closure("train")}
    assert "girml/stages/train.py" in closure and "girml/stages/contract.py" in closure
    assert "girml/tuning/results.py" in closure  # imported inside _configs (train.use_tuned)
    assert "girml/tracking/restorer_model.py" in closure  # shipped as MLflow model code
    assert "girml/cli.py" not in closure  # the CLI runs the stage; the stage never imports it
    assert "girml/stages/evaluate.py" not in closure
    interpret = {p.relative_to(ROOT).as_posix() for p in code_closure("interpret")}
    # render.py names report.html.j2, which imports blocks.html.j2
    assert {
        "girml/interpret/templates/report.html.j2",
        "girml/interpret/templates/blocks.html.j2",
    } <= interpret
    evaluate = {p.relative_to(ROOT).as_posix() for p in code_closure("evaluate")}
    assert (
        "girml/evaluation/templates/study.html.j2" not in evaluate
    )  # the study verb's, not the stage's


def test_stage_modules_read_params_only_through_stage_params() -> None:
    for verb in STAGE_PARAMS:
        module = _module(verb)
        source = inspect.getsource(importlib.import_module(f"girml.stages.{module}"))
        for direct in ("load_section(", "read_params(", "yaml.safe_load("):
            assert direct not in source, f"girml {verb} reads params with {direct}...)"
        assert f'StageParams(params, "{verb}"' in source, verb
        # the verb itself only runs its stage module
        verb_source = inspect.getsource(getattr(cli, module))
        assert f"from girml.stages import {module} as this" in verb_source, verb
        assert "StageParams" not in verb_source and "load_section" not in verb_source, verb


def test_stage_params_refuses_what_the_stage_does_not_declare(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    validate = StageParams(params, "validate")
    assert (
        validate.value("collect.min_size")
        == yaml.safe_load(params.read_text())["collect"]["min_size"]
    )
    assert validate.section("validate").default_psnr_band
    with pytest.raises(KeyError, match=r"validate reads collect\.max_pixels"):
        validate.value("collect.max_pixels")
    with pytest.raises(KeyError, match="validate reads model"):
        validate.section("model")
    with pytest.raises(KeyError, match="validate reads collect"):
        validate.section("collect")  # one key of the section is declared, not all of it
    train = StageParams(params, "train")
    assert train.raw("train")["steps"] == train.section("train").steps


def test_no_arrow_runs_back_up_from_the_library() -> None:
    """The library never imports orchestration: no girml module imports pipelines/ (nor
    Prefect or DVC), and no library module imports the CLI or the stages."""
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ("pipelines", "prefect", "dvc"):
                    upward.append(f"{rel} imports {name}")
                in_shell = rel.startswith("girml/stages/") or rel in (
                    "girml/cli.py",
                    "girml/cli_convert.py",  # a verb kept out of girml/cli.py
                    "girml/__main__.py",
                )
                if not in_shell and (name == "girml.cli" or name.startswith("girml.stages")):
                    upward.append(f"{rel} imports {name}")
    assert not upward, "\n".join(upward)


def test_a_foreach_stage_reads_only_its_own_item(tmp_path: Path) -> None:
    """``approach@x`` declares ``study.approaches.${key}``: it reads approach x, not approach y
    nor the rest of the study section (so editing y does not rerun x)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study"]["approaches"] = {
        "x": {"kind": "unified", "model": {"type": "plain_cnn"}},
        "y": {"kind": "release"},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    reads = StageParams(path, "approach", key="x")
    assert reads.value("study.approaches.x").model == {"type": "plain_cnn"}
    assert reads.value("study.classifier_steps") == params["study"]["classifier_steps"]
    with pytest.raises(KeyError, match=r"approach reads study\.approaches\.y"):
        reads.value("study.approaches.y")
    with pytest.raises(KeyError, match="approach reads study"):
        reads.section("study")
    stages = _dvc_stages()
    assert "study.approaches.${key}" in stages["approach"]["params"]
    assert stages["approach"]["outs"] == ["models/approaches/${key}"]
