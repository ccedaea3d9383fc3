"""The documentation: the MkDocs site in docs/ builds strictly, and the README stays short.

`mkdocs build --strict` fails on a broken link or anchor and on a page left out of the nav
(mkdocs.yml: ``validation``), so a page that moves or a heading that is renamed fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 200


def _nav_pages(nav: Any) -> list[str]:
    """Every page file named in an mkdocs ``nav`` (nested sections included)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _fenced_lines(text: str) -> list[str]:
    """The lines inside the Markdown code fences of ``text``, stripped."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.strip())
    return lines


def _make_commands(script: Path) -> list[str]:
    """The `make ...` command lines of a shell script, comments left out."""
    lines = [line.split("#")[0].strip() for line in script.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line.startswith("make ")]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    assert (site / "index.html").is_file()
    assert (site / "troubleshooting" / "index.html").is_file()


def test_every_docs_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert pages, "docs/ has no page"
    assert sorted(nav) == pages
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_readme_is_short_and_gives_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    shown = {line.split("#")[0].strip() for line in _fenced_lines(text)}
    ci = _make_commands(ROOT / ".ci" / "run")
    assert ci == ["make test"], ci
    makefile_head = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()[0]
    entry_points = re.findall(r"`(make [a-z-]+)`", makefile_head)
    assert entry_points == ["make repro", "make test"], makefile_head
    for command in [*ci, *entry_points]:
        assert command in shown, f"README.md shows no `{command}` in a code block"


def test_readme_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert "BENCHMARKS.md" in local
    assert {"docs/index.md", "docs/troubleshooting.md"} <= set(local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
