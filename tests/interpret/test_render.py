"""girml.interpret.render: the report's self-contained HTML page, from jinja2 templates."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from girml.interpret import render
from girml.interpret.render import render_html
from girml.interpret.sections import Section
from tests.interpret.common import XSS


def test_render_html_escapes_every_value() -> None:
    sec = Section("s", XSS)
    sec.para(XSS)
    sec.unavailable(XSS)
    sec.figure(XSS, b"\x89PNG", XSS)
    sec.table([XSS], [[XSS], [[XSS, 1.0]]])
    page = render_html([sec], {XSS: XSS})
    assert "<script" not in page and "alert('x')" not in page and '"q"' not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;"
    # title (toc + h2), paragraph, unavailable, img alt, caption, th, 2 cells, meta key + value
    assert page.count(escaped) == 11
    assert f'<p class="na">not available: {escaped}</p>' in page
    assert f'<img src="data:image/png;base64,iVBORw==" alt="{escaped}">' in page
    assert f"<td>{escaped}; 1.000</td>" in page


def test_render_html_renders_each_block_kind() -> None:
    sec = Section("k", "Kinds")
    sec.para("plain text")
    sec.figure("a.png", b"png", "a caption")
    sec.table(["name", "value"], [["x", 1.23456], ["y", None], ["z", True], ["w", math.nan]])
    sec.unavailable("no data")
    page = render_html([sec], {"seconds": 1.25})
    body = re.sub(r">\s+<", "><", page[page.index('<section id="k">') :])
    assert body.startswith(
        '<section id="k"><h2>Kinds</h2><p>plain text</p>'
        '<figure><img src="data:image/png;base64,cG5n" alt="a.png">'
        "<figcaption>a caption</figcaption></figure>"
        "<table><thead><tr><th>name</th><th>value</th></tr></thead><tbody>"
        "<tr><td>x</td><td>1.235</td></tr><tr><td>y</td><td>-</td></tr>"
        "<tr><td>z</td><td>true</td></tr><tr><td>w</td><td>-</td></tr></tbody></table>"
        '<p class="na">not available: no data</p></section>'
    )
    assert "<tr><td>seconds</td><td>1.250</td></tr>" in page
    assert sec.figures == {"a.png": b"png"}
    assert sec.data == {"available": False, "reason": "no data"}


def test_missing_template_raises_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "TEMPLATES_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"template 'report.html.j2' not found in "):
        render_html([Section("s", "S")], {})
    shutil.copy(Path(render.__file__).parent / "templates" / "report.html.j2", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"template 'blocks.html.j2' not found in "):
        render_html([Section("s", "S")], {})
