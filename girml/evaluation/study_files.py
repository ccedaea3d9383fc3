"""The study's files: ``metrics/study.json``, ``plots/study.csv``, the HTML page and the flat
MLflow metrics, all laid out from a :class:`~girml.evaluation.leaderboard.Leaderboard`.

``metrics/study.json`` (:func:`study_json`; numbers rounded to 6 decimals, null where
undefined): ``reference``, ``seed``, ``n_boot``, ``level``, ``ranking`` (method names, best
first), then per method ``methods.<m>.``:

- ``rank``, ``gir_score``, ``gir_score_ci95_low``, ``gir_score_ci95_high``,
  ``gir_score_diff_vs_<reference>``, ``gir_score_diff_ci95_low``, ``gir_score_diff_ci95_high``,
  ``generalization_gap``, ``worst_family_gain``, ``seconds_per_megapixel``, ``params``;
- ``<suite>.n`` (images), ``<suite>.psnr_gain``, ``<suite>.psnr_gain_ci95_low``,
  ``<suite>.psnr_gain_ci95_high``, ``<suite>.ssim_gain``, ``<suite>.ssim_gain_ci95_low``,
  ``<suite>.ssim_gain_ci95_high``, ``<suite>.diff_vs_<reference>``, ``<suite>.diff_ci95_low``,
  ``<suite>.diff_ci95_high``, ``<suite>.harm_rate``, for every suite where the method has
  degraded images with ground truth, in the order of
  :data:`girml.data.synthesize.SUITES`;
- ``clean.<suite>.clean_psnr_y`` for every suite with a ``clean`` family;

and, when the study stage passes them, ``protocols``: per protocol (``allinone-3``, ...) its
sets and rows, the measured scores of ``metrics/protocols/<protocol>.json`` first, then the
published results, each row with ``"published": true`` or ``false`` and the published ones with
their paper and sources (:func:`girml.evaluation.published.protocol_tables`). Published rows are
not in ``ranking`` or ``methods`` and have no intervals.

``plots/study.csv`` (:func:`plot_rows`): ``method, suite, psnr_gain, low, high``, one row per
method (rank order) and suite. ``reports/study/index.html``: the same numbers as one
self-contained page rendered from ``templates/study.html.j2``, with the gain plot (an embedded
PNG) and the takeaway of :mod:`girml.evaluation.study_page`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from girml.core.imageio import png_data_uri
from girml.evaluation.leaderboard import Estimate, Leaderboard, MethodResult
from girml.evaluation.study_page import gain_plot_png, takeaway
from girml.evaluation.uncertainty import LEVEL

TEMPLATES_DIR = Path(__file__).parent / "templates"
STUDY_TEMPLATE = "study.html.j2"
PLOT_COLUMNS = ("method", "suite", "psnr_gain", "low", "high")


def _number(value: float | None) -> float | None:
    """JSON value of a number: rounded to 6 decimals like ``eval.json``; None when undefined."""
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _estimate_keys(
    name: str, estimate: Estimate | None, interval: str | None = None
) -> dict[str, float | None]:
    """``<name>``, ``<interval>_ci95_low`` and ``<interval>_ci95_high`` (``interval`` defaults
    to ``name``); all None without an estimate."""
    interval = interval or name
    return {
        name: _number(estimate.value if estimate else None),
        f"{interval}_ci95_low": _number(estimate.low if estimate else None),
        f"{interval}_ci95_high": _number(estimate.high if estimate else None),
    }


def method_json(result: MethodResult, reference: str) -> dict[str, Any]:
    """The ``methods.<m>`` object of ``study.json`` (keys in the module docstring)."""
    out: dict[str, Any] = {"rank": result.rank}
    out.update(_estimate_keys("gir_score", result.gir_score))
    out.update(
        _estimate_keys(f"gir_score_diff_vs_{reference}", result.gir_score_diff, "gir_score_diff")
    )
    out["generalization_gap"] = _number(result.generalization_gap)
    out["worst_family_gain"] = _number(result.worst_family_gain)
    out["seconds_per_megapixel"] = _number(result.cost.seconds_per_megapixel)
    out["params"] = result.cost.params
    for suite, stats in result.suites.items():
        out[suite] = {
            "n": stats.n,
            **_estimate_keys("psnr_gain", stats.psnr_gain),
            **_estimate_keys("ssim_gain", stats.ssim_gain),
            **_estimate_keys(f"diff_vs_{reference}", stats.diff, "diff"),
            "harm_rate": _number(stats.harm_rate),
        }
    out["clean"] = {
        suite: {"clean_psnr_y": _number(value)} for suite, value in result.clean_psnr_y.items()
    }
    return out


def study_json(board: Leaderboard, protocols: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``metrics/study.json`` (keys in the module docstring); ``protocols``
    (:func:`girml.evaluation.published.protocol_tables`) is added when given."""
    out = {
        "reference": board.reference,
        "seed": board.seed,
        "n_boot": board.n_boot,
        "level": LEVEL,
        "ranking": board.names(),
        "methods": {
            result.method: method_json(result, board.reference) for result in board.methods
        },
    }
    if protocols is not None:
        out["protocols"] = dict(protocols)
    return out


def plot_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """Rows of ``plots/study.csv``: ``method, suite, psnr_gain, low, high`` (the interval)."""
    return [
        {
            "method": result.method,
            "suite": suite,
            "psnr_gain": stats.psnr_gain.value,
            "low": stats.psnr_gain.low,
            "high": stats.psnr_gain.high,
        }
        for result in board.methods
        for suite, stats in result.suites.items()
    ]


def plot_csv(board: Leaderboard) -> str:
    """The text of ``plots/study.csv`` (floats with 6 decimals)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PLOT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in plot_rows(board):
        writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    """Display text: an :class:`Estimate` as ``value [low, high]``, floats with 3 decimals,
    None and non-finite numbers as ``-``."""
    if isinstance(value, Estimate):
        return f"{_fmt(value.value)} [{_fmt(value.low)}, {_fmt(value.high)}]"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render_html(
    board: Leaderboard,
    meta: Mapping[str, Any],
    protocols: Mapping[str, Any] | None = None,
    cost_note: str | None = None,
) -> str:
    """The self-contained study page (inline CSS, no scripts, every value HTML-escaped): the
    takeaway, the gain plot as a PNG data URI, then the tables; with ``protocols``, a table per
    protocol of measured rows and, marked "published" with their citations, published ones.

    Args:
        board: the leaderboard.
        meta: facts shown at the top (name -> value), e.g. the source CSV.
        protocols: see :func:`study_json`.
        cost_note: how the evaluate stage measured its methods' costs (threads,
            self-ensemble), said under the ranking; None: it measured none.

    Raises:
        FileNotFoundError: the template is missing from :data:`TEMPLATES_DIR` (e.g. a package
            installed without its package data).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    try:
        template = env.get_template(STUDY_TEMPLATE)
    except jinja2.TemplateNotFound as exc:
        raise FileNotFoundError(
            f"study template {exc.name!r} not found in {TEMPLATES_DIR}"
        ) from exc
    return template.render(
        board=board,
        meta=meta,
        level=LEVEL,
        takeaway=takeaway(board),
        plot_uri=png_data_uri(gain_plot_png(board)),
        protocols=protocols or {},
        cost_note=cost_note,
    )


def method_metrics(result: MethodResult, reference: str) -> dict[str, float]:
    """A method's numbers as flat MLflow metrics (the defined ones of :func:`method_json`,
    suites as ``<suite>.<key>``, clean PSNR as ``clean.<suite>.clean_psnr_y``)."""
    flat: dict[str, float] = {}

    def add(prefix: str, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, Mapping):
                add(f"{prefix}{key}.", value)
            elif value is not None:
                flat[f"{prefix}{key}"] = float(value)

    add("", method_json(result, reference))
    return flat
