"""The code each DVC stage runs, by cohesive folder, and the tool that writes it into dvc.yaml.

A stage ``girml VERB`` runs ``girml/stages/<verb>.py`` and every girml module that module
imports, at module level or inside functions, transitively (plus the files a module ships as
code, such as the MLflow models-from-code file, and the jinja2 templates it renders). DVC must
rerun the stage when any of them changes, so ``dvc.yaml`` declares them; to keep the file
readable it declares them by folder:

- each package ``girml/<package>/`` the stage reads any module of, as one folder (a change
  anywhere in a package the stage uses reruns it: conservative, never stale);
- top-level modules (``girml/__init__.py``) and the stage plumbing in ``girml/stages/`` as files,
  so editing one stage's module does not rerun the others.

``python -m girml.stages.code_deps`` prints what each stage should declare; ``--write`` rewrites
the ``girml/`` code lines of every stage's ``deps`` in ``dvc.yaml`` (data deps, such as the package
pin file ``girml/data/package_photos.csv``, stay as written). ``tests/stages/test_contract.py``
compares the file with what this module computes.
"""

from __future__ import annotations

import argparse
import ast
import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# a module that names another file as code to ship (MLflow models from code) reads it too
CODE_FILE = re.compile(r"""with_name\(["']([A-Za-z_]\w*\.py)["']\)""")
# a template named as a string literal: "report.html.j2"
TEMPLATE = re.compile(r"""["']([\w.-]+\.j2)["']""")
# deps under girml/ that are data the stage reads, not code
DATA_SUFFIXES = (".csv",)
_CODE_LINE = re.compile(r"^(\s*)- (girml\S*)\s*(#.*)?$")
_STAGE_LINE = re.compile(r"^  ([a-z][a-z0-9_-]*):\s*$")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of the dotted module ``name`` (a package's ``__init__.py``), or None."""
    path = root.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


@cache
def imports(path: Path, root: Path = ROOT) -> frozenset[Path]:
    """The girml files ``path`` imports (at module level or inside functions) or ships as code."""
    text = path.read_text(encoding="utf-8")
    package = path.parent.relative_to(root).parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(text)):
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
        parts = name.split(".")
        if parts[0] != "girml":
            continue
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            found = module_file(".".join(parts[:depth]), root)
            if found is not None:
                files.add(found)
    files.update(path.with_name(n) for n in CODE_FILE.findall(text))
    return frozenset(files)


def templates(modules: set[Path]) -> set[Path]:
    """The jinja2 templates in ``templates/`` beside ``modules`` that they name (as a string
    ``"x.j2"``), and the templates those import or include, transitively."""
    found: set[Path] = set()
    todo = [
        path.parent / "templates" / name
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


def code_closure(module: str, root: Path = ROOT) -> set[Path]:
    """Every girml file the stage module ``girml.stages.<module>`` can run, and its templates.

    Raises:
        FileNotFoundError: there is no ``girml/stages/<module>.py``.
    """
    start = module_file(f"girml.stages.{module}", root)
    if start is None:
        raise FileNotFoundError(f"no stage module girml/stages/{module}.py")
    seen: set[Path] = set()
    todo = [start, *imports(start, root)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imports(path, root))
    return seen | templates(seen)


def code_deps(closure: set[Path], root: Path = ROOT) -> list[str]:
    """The declaration of ``closure`` by cohesive folder (see the module docstring), sorted."""
    out: set[str] = set()
    for path in closure:
        parts = path.relative_to(root).parts
        whole_file = len(parts) == 2 or parts[1] == "stages"
        out.add("/".join(parts if whole_file else parts[:2]))
    return sorted(out)


def stage_module(stage: dict) -> str:
    """``girml VERB ...`` -> the stage module's name (``approach-eval`` -> ``approach_eval``)."""
    return stage["cmd"].split()[1].replace("-", "_")


def dvc_stages(dvc_yaml: Path) -> dict[str, dict]:
    """The stages as written; a ``foreach`` stage by its ``do`` body (``${key}`` unresolved)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def expected(dvc_yaml: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> the code deps it should declare."""
    return {
        name: code_deps(code_closure(stage_module(stage), root), root)
        for name, stage in dvc_stages(dvc_yaml).items()
    }


def rewrite(text: str, want: dict[str, list[str]]) -> str:
    """``dvc.yaml`` text with each stage's block of ``girml/`` code dep lines replaced by ``want``.

    The code lines of a stage are replaced where its first one stands; data deps under girml/
    (:data:`DATA_SUFFIXES`) and everything else stay as written.
    """
    out: list[str] = []
    stage = None
    placed: set[str] = set()
    for line in text.split("\n"):
        start = _STAGE_LINE.match(line)
        if start:
            stage = start.group(1)
        code = _CODE_LINE.match(line)
        if code and stage in want and not code.group(2).endswith(DATA_SUFFIXES):
            if stage not in placed:
                placed.add(stage)
                out.extend(f"{code.group(1)}- {dep}" for dep in want[stage])
            continue
        out.append(line)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml")
    parser.add_argument("--write", action="store_true", help="rewrite the file's code deps")
    args = parser.parse_args()
    want = expected(args.dvc_yaml)
    if args.write:
        text = args.dvc_yaml.read_text(encoding="utf-8")
        args.dvc_yaml.write_text(rewrite(text, want), encoding="utf-8")
        print(f"rewrote the code deps of {len(want)} stages in {args.dvc_yaml}")
    else:
        for name, deps in want.items():
            print(f"{name}:\n  " + "\n  ".join(deps))


if __name__ == "__main__":
    main()
