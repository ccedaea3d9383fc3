"""The interpretation report's HTML page, rendered from the jinja2 templates in ``templates/``.

``report.html.j2`` lays out the page (inline CSS, the run's facts, a table of contents, one
``<section>`` per :class:`~girml.interpret.sections.Section`); ``blocks.html.j2`` holds one
macro per kind of content block. Every value is HTML-escaped (``autoescape``); figures are
embedded as PNG data URIs so the page is self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from girml.core.imageio import png_data_uri
from girml.interpret.sections import Section, format_value

TEMPLATES_DIR = Path(__file__).parent / "templates"
REPORT_TEMPLATE = "report.html.j2"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = format_value
    env.filters["data_uri"] = png_data_uri
    return env


def render_html(sections: Sequence[Section], meta: Mapping[str, Any]) -> str:
    """The self-contained report page (inline CSS, figures as data URIs, no scripts).

    Args:
        sections: the report's sections, in page order.
        meta: facts about the run (name -> value), shown in a table at the top.

    Returns:
        The HTML text.

    Raises:
        FileNotFoundError: a template is missing from :data:`TEMPLATES_DIR` (e.g. a package
            installed without its package data).
    """
    try:
        template = _environment().get_template(REPORT_TEMPLATE)
        return template.render(sections=sections, meta=meta)
    except jinja2.TemplateNotFound as exc:
        raise FileNotFoundError(
            f"interpretation report template {exc.name!r} not found in {TEMPLATES_DIR}"
        ) from exc
