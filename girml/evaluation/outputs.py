"""The evaluate stage's files: per-image and per-family CSVs, ``eval.json`` and the DVC plots.

The numbers come from :mod:`girml.evaluation.report`; this module only lays them out and writes
them atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from girml.core.imageio import write_text
from girml.data.synthesize import WHOLE_SUITE
from girml.evaluation.bench import REAL_SUITE
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.report import (
    BLOCK_SHIFT,
    FAMILY_COLUMNS,
    IDENTITY,
    PLOT_FAMILY_COLUMNS,
    ROW_COLUMNS,
    _best_baseline,
    _degraded,
    _for_method,
    _suite_key,
    _suite_mean,
)


def _cell(value: Any) -> str:
    """CSV text of a value: floats with 6 decimals, NaN as an empty cell."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6f}"
    return str(value)


def _csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(col, math.nan)) for col in columns])
    return buffer.getvalue()


def psnr_per_family_plot(
    per_family: Sequence[Mapping[str, Any]], baselines: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of ``plots/psnr_per_family.csv``: per degraded (suite, family) with GT, the model,
    the best non-identity baseline of that group and ``identity`` (when evaluated). The
    ``clean`` groups are left out: their PSNR near the 100 dB cap would squash every other bar.

    Columns: ``suite, family, method, psnr_y`` and ``label`` (``"<suite>/<family> <method>"``, a
    unique key for a bar chart).
    """
    by_key = {(r["method"], r["suite"], r["family"]): r for r in per_family}
    groups = [
        (r["suite"], r["family"])
        for r in per_family
        if r["method"] == MODEL_METHOD and r["suite"] != REAL_SUITE and _degraded(r)
    ]
    out = []
    for suite, family in groups:
        best = _best_baseline(per_family, baselines, suite, family)
        methods = [MODEL_METHOD, *([best[0]] if best else [])]
        methods += [IDENTITY] if IDENTITY in baselines else []
        for method in methods:
            row = by_key.get((method, suite, family))
            if row is not None:
                out.append(
                    {
                        "suite": suite,
                        "family": family,
                        "method": method,
                        "psnr_y": row["psnr_y"],
                        "label": f"{suite}/{family} {method}",
                    }
                )
    return out


def generalization_plot(
    per_family: Sequence[Mapping[str, Any]], methods: Sequence[str], baselines: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and columns of ``plots/generalization.csv``: mean ``psnr_gain`` per suite (over
    its degraded families, like ``psnr_gain.<suite>``).

    One row per crop suite with GT, in the order ``single-id, single-ood, mixed, unseen,
    unseen-content`` (then others): ``suite_index`` (0, 1, ... a numeric x axis), ``suite``,
    one column per method in ``methods`` and ``best_baseline`` (the highest suite mean among
    the non-identity ``baselines``, whichever baseline it is). The whole-photo suite is not a
    step of harder degradations: it is left out.
    """
    suites = sorted(
        {r["suite"] for r in per_family if r["suite"] not in (REAL_SUITE, WHOLE_SUITE)},
        key=_suite_key,
    )
    candidates = [b for b in baselines if b != IDENTITY]
    rows = []
    for index, suite in enumerate(suites):
        row: dict[str, Any] = {"suite_index": index, "suite": suite}
        for method in methods:
            row[method] = _suite_mean(_for_method(per_family, method), suite, "psnr_gain")
        gains = [_suite_mean(_for_method(per_family, b), suite, "psnr_gain") for b in candidates]
        row["best_baseline"] = max((g for g in gains if math.isfinite(g)), default=math.nan)
        rows.append(row)
    return rows, ["suite_index", "suite", *methods, "best_baseline"]


def _extra_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``lpips`` when computed, ``block_shift`` where measured (whole photos, clean images)."""
    return [column for column in ("lpips", BLOCK_SHIFT) if any(column in row for row in rows)]


def per_image_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The text of a per-image CSV: :data:`ROW_COLUMNS`, plus ``lpips`` when computed and
    ``block_shift`` where measured (whole photos, clean images)."""
    return _csv(rows, [*ROW_COLUMNS, *_extra_columns(rows)])


def write_outputs(
    rows: Sequence[Mapping[str, Any]],
    per_family: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    baselines: Sequence[str],
    plot_methods: Sequence[str],
    metrics_dir: Path,
    plots_dir: Path,
) -> list[Path]:
    """Write the evaluate stage's files atomically; returns their paths.

    Files: ``<metrics_dir>/per_image.csv`` (:data:`ROW_COLUMNS` + ``lpips`` and
    ``block_shift`` where computed), ``<metrics_dir>/per_family.csv`` (:data:`FAMILY_COLUMNS`
    + the same),
    ``<metrics_dir>/eval.json`` (``metrics``), ``<plots_dir>/psnr_per_family.csv``
    (:func:`psnr_per_family_plot`) and ``<plots_dir>/generalization.csv``
    (:func:`generalization_plot` over ``plot_methods``).
    """
    extra = _extra_columns(rows)
    plot_rows, plot_columns = generalization_plot(per_family, plot_methods, baselines)
    files = {
        metrics_dir / "per_image.csv": per_image_csv(rows),
        metrics_dir / "per_family.csv": _csv(per_family, [*FAMILY_COLUMNS, *extra]),
        metrics_dir / "eval.json": json.dumps(metrics, indent=2, allow_nan=False) + "\n",
        plots_dir / "psnr_per_family.csv": _csv(
            psnr_per_family_plot(per_family, baselines), PLOT_FAMILY_COLUMNS
        ),
        plots_dir / "generalization.csv": _csv(plot_rows, plot_columns),
    }
    for path, text in files.items():
        write_text(path, text)
    return list(files)
