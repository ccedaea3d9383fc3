"""From per-image rows to tables, headline metrics, ``eval.json`` and DVC plot data.

Aggregation is two-level everywhere: images are averaged within a (suite, family) group, and
suite-level numbers are means over the suite's groups, so every family weighs the same whatever
its image count. Metric names follow DESIGN.md ("Metric names").

Harm (a general restorer must first do no harm), see :func:`harm_metrics`:

- ``harm.clean_psnr_y.<suite>``: mean output PSNR-Y of the ``clean`` family (input = ground
  truth) against that clean input, capped like every PSNR at
  :data:`~girml.evaluation.scores.MAX_PSNR` dB (an unchanged image scores the cap).
- ``harm_rate.<suite>``: over the suite's *degraded* images (``clean`` excluded: their input
  PSNR is the cap, so any change would count; they are judged by the clean PSNR instead), the
  fraction whose output PSNR-Y is more than :data:`HARM_MARGIN_DB` dB below the input's.
- ``harm.worst_family_gain``: the lowest per-family ``psnr_gain`` on ``single-id``.

The ``clean`` family is left out of every other suite number (``psnr_y``, ``ssim_y``,
``psnr_gain``, ``niqe``, ``lpips`` per suite, ``gir_score``, ``generalization_gap``), of the
best-baseline choice and of the plots, so they stay comparable with benchmarks without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from girml.config import CLEAN_FAMILY
from girml.data.synthesize import SUITES
from girml.evaluation.bench import GIR_SUITES, REAL_SUITE
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.specialists import specialist_method

IDENTITY = "identity"
# An output this many dB of PSNR-Y below its degraded input counts as harmed (harm_rate).
HARM_MARGIN_DB = 0.1
LPIPS_NOT_COMPUTED = "not computed (no weights configured)"
ROW_COLUMNS = (
    "method",
    "suite",
    "family",
    "id",
    "source_id",
    "level",
    "psnr",
    "ssim",
    "psnr_y",
    "ssim_y",
    "psnr_y_input",
    "ssim_y_input",
    "niqe",
)
SCORE_COLUMNS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_y_input", "ssim_y_input")
FAMILY_COLUMNS = (
    "method",
    "suite",
    "family",
    "n",
    *SCORE_COLUMNS,
    "psnr_gain",
    "harm_rate",
    "niqe",
)
HEADLINE_METRICS = ("psnr_y", "ssim_y", "psnr_gain")
# the patch metric (girml.metrics.block_shift), measured on whole photos and on every clean
# image: per image, and per group the largest over its images
BLOCK_SHIFT = "block_shift"
PLOT_FAMILY_COLUMNS = ("suite", "family", "method", "psnr_y", "label")


def _mean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN when there is none."""
    arr = np.array([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _has_lpips(rows: Iterable[Mapping[str, Any]]) -> bool:
    return any("lpips" in row for row in rows)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, suite, family) means of the per-image rows of :func:`evaluate_method`.

    Args:
        rows: per-image rows (several methods allowed).

    Returns:
        One row per group, in first-appearance order, with ``method, suite, family, n`` (images)
        and the means of ``psnr, ssim, psnr_y, ssim_y, psnr_y_input, ssim_y_input``,
        ``psnr_gain`` (= mean ``psnr_y`` - mean ``psnr_y_input``, dB), ``harm_rate`` (see
        :func:`harm_rate`; NaN for the ``clean`` family and for images without GT), ``niqe``
        and ``lpips`` (when the rows have it), and ``block_shift`` (the largest of the images',
        when they have it). NaN values (no GT, undefined NIQE) are left out of the means; a
        mean over none is NaN.
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["suite"], row["family"]), []).append(row)
    metrics = [*SCORE_COLUMNS, "niqe", *(["lpips"] if _has_lpips(rows) else [])]
    out = []
    for (method, suite, family), members in groups.items():
        summary: dict[str, Any] = {"method": method, "suite": suite, "family": family}
        summary["n"] = len(members)
        summary.update({m: _mean(r.get(m, math.nan) for r in members) for m in metrics})
        summary["psnr_gain"] = summary["psnr_y"] - summary["psnr_y_input"]
        summary["harm_rate"] = math.nan if family == CLEAN_FAMILY else harm_rate(members)
        shifts = [r[BLOCK_SHIFT] for r in members if math.isfinite(r.get(BLOCK_SHIFT, math.nan))]
        if shifts:
            summary[BLOCK_SHIFT] = max(shifts)
        out.append(summary)
    return out


def harm_rate(rows: Iterable[Mapping[str, Any]]) -> float:
    """Fraction of images whose output PSNR-Y is more than :data:`HARM_MARGIN_DB` dB below the
    input's (``psnr_y < psnr_y_input - HARM_MARGIN_DB``).

    Args:
        rows: per-image rows of degraded images (``psnr_y`` and ``psnr_y_input`` in dB); rows
            where either is NaN (no GT) are left out.

    Returns:
        A fraction in [0, 1]; NaN when no row has both scores.
    """
    pairs = [
        (float(row["psnr_y"]), float(row["psnr_y_input"]))
        for row in rows
        if math.isfinite(row["psnr_y"]) and math.isfinite(row["psnr_y_input"])
    ]
    if not pairs:
        return math.nan
    return sum(out < inp - HARM_MARGIN_DB for out, inp in pairs) / len(pairs)


def _for_method(per_family: Iterable[Mapping[str, Any]], method: str) -> list[Mapping[str, Any]]:
    return [row for row in per_family if row["method"] == method]


def _degraded(row: Mapping[str, Any]) -> bool:
    return row["family"] != CLEAN_FAMILY


def _suite_mean(groups: Sequence[Mapping[str, Any]], suite: str, metric: str) -> float:
    """Mean of ``metric`` over the suite's degraded groups (``clean`` is scored as harm)."""
    return _mean(
        row[metric] for row in groups if row["suite"] == suite and metric in row and _degraded(row)
    )


def gir_score(per_family: Iterable[Mapping[str, Any]], method: str = MODEL_METHOD) -> float:
    """Mean PSNR gain over the (suite, family) groups of the GIR suites, each group weighing 1.

    Precisely: the plain mean, over every (suite, family) group of ``single-id``,
    ``single-ood``, ``mixed`` and ``unseen``, of the group's ``psnr_gain`` (its mean
    ``psnr_y`` minus its mean ``psnr_y_input``). A suite with more families therefore weighs
    more than one with fewer; this is *not* the mean of the four suite means. The ``clean``
    family is not a degradation and is left out (see :func:`harm_metrics`).

    Raises:
        ValueError: ``method`` has no group in those suites.
    """
    gains = [
        row["psnr_gain"]
        for row in _for_method(per_family, method)
        if row["suite"] in GIR_SUITES and _degraded(row) and math.isfinite(row["psnr_gain"])
    ]
    if not gains:
        raise ValueError(f"{method!r} has no (suite, family) group in {list(GIR_SUITES)}")
    return float(np.mean(gains))


def headline(
    per_family: Iterable[Mapping[str, Any]], method: str = MODEL_METHOD
) -> dict[str, float]:
    """The design's headline metrics of one method (DESIGN.md, "Metric names").

    Keys: ``psnr_y.<suite>``, ``ssim_y.<suite>``, ``psnr_gain.<suite>`` for every suite with
    ground truth (means over the suite's degraded families, families weighted equally; the
    ``clean`` family is left out); ``niqe.<suite>`` (``niqe.real`` included) and
    ``lpips.<suite>`` where defined; ``gir_score`` (see :func:`gir_score`);
    ``generalization_gap`` = ``psnr_gain.single-id`` minus the mean of ``psnr_gain.single-ood``
    and ``psnr_gain.unseen`` (of whichever of the two exist; the key is absent when
    ``single-id`` or both are missing); then the keys of :func:`harm_metrics`.

    Args:
        per_family: rows of :func:`summarize`.
        method: whose rows to use.

    Returns:
        Flat ``{key: float}``; NaN values are left out.
    """
    groups = _for_method(per_family, method)
    suites = sorted({row["suite"] for row in groups}, key=_suite_key)
    out: dict[str, float] = {}
    for suite in suites:
        metrics = ["niqe", "lpips"] if suite == REAL_SUITE else [*HEADLINE_METRICS, "niqe", "lpips"]
        for metric in metrics:
            value = _suite_mean(groups, suite, metric)
            if math.isfinite(value):
                out[f"{metric}.{suite}"] = value
    out["gir_score"] = gir_score(groups, method)
    harder = [out[f"psnr_gain.{s}"] for s in ("single-ood", "unseen") if f"psnr_gain.{s}" in out]
    if "psnr_gain.single-id" in out and harder:
        out["generalization_gap"] = out["psnr_gain.single-id"] - float(np.mean(harder))
    out.update(harm_metrics(groups, method))
    return out


def harm_metrics(
    per_family: Iterable[Mapping[str, Any]], method: str = MODEL_METHOD
) -> dict[str, float]:
    """Harm keys of one method (DESIGN.md, "Metric names"; definitions in the module docstring).

    Keys, each present only where it is defined:

    - ``harm_rate.<suite>``: per suite with ground truth, the fraction of its degraded images
      (``clean`` excluded) that are harmed (see :func:`harm_rate`): the groups' ``harm_rate``
      weighted by their image count ``n``.
    - ``harm.clean_psnr_y.<suite>``: mean ``psnr_y`` of the suite's ``clean`` group, i.e. the
      output against the clean input (dB, capped at ``MAX_PSNR``: identity scores the cap).
    - ``harm.block_shift.<suite>``: the largest mean brightness shift of any 256-pixel block
      of a clean image (grey levels, :func:`girml.metrics.block_shift`): a whole photo's, or a
      clean crop's (a crop is one block), in every suite with a ``clean`` family.
    - ``harm.worst_family_gain``: the lowest ``psnr_gain`` of a degraded ``single-id`` group.

    Args:
        per_family: rows of :func:`summarize`.
        method: whose rows to use.
    """
    groups = _for_method(per_family, method)
    suites = sorted({row["suite"] for row in groups if row["suite"] != REAL_SUITE}, key=_suite_key)
    out: dict[str, float] = {}
    for suite in suites:
        members = [row for row in groups if row["suite"] == suite]
        judged = [
            (float(row["n"]), float(row["harm_rate"]))
            for row in members
            if _degraded(row) and math.isfinite(row.get("harm_rate", math.nan))
        ]
        total = sum(n for n, _ in judged)
        if total > 0:
            out[f"harm_rate.{suite}"] = sum(n * rate for n, rate in judged) / total
        clean = _mean(row["psnr_y"] for row in members if not _degraded(row))
        if math.isfinite(clean):
            out[f"harm.clean_psnr_y.{suite}"] = clean
        shifts = [
            row[BLOCK_SHIFT]
            for row in members
            if not _degraded(row) and math.isfinite(row.get(BLOCK_SHIFT, math.nan))
        ]
        if shifts:
            out[f"harm.block_shift.{suite}"] = float(max(shifts))
    gains = [
        row["psnr_gain"]
        for row in groups
        if row["suite"] == "single-id" and _degraded(row) and math.isfinite(row["psnr_gain"])
    ]
    if gains:
        out["harm.worst_family_gain"] = float(min(gains))
    return out


def _suite_key(suite: str) -> tuple[int, str]:
    order = (*SUITES, REAL_SUITE)
    return (order.index(suite) if suite in order else len(order), suite)


def best_baselines(
    per_family: Iterable[Mapping[str, Any]], baselines: Sequence[str], suite: str = "single-id"
) -> dict[str, tuple[str, float]]:
    """For each degraded family of ``suite``, the non-identity baseline with the highest mean
    ``psnr_y`` (the ``clean`` family has none: nothing to restore).

    Args:
        per_family: rows of :func:`summarize`.
        baselines: the baseline method names to consider (``identity`` is always skipped).
        suite: which suite's families.

    Returns:
        ``{family: (baseline name, psnr_y)}``, families in row order; ties go to the first name
        in ``baselines``.
    """
    best: dict[str, tuple[str, float]] = {}
    for family in dict.fromkeys(
        r["family"] for r in per_family if r["suite"] == suite and _degraded(r)
    ):
        found = _best_baseline(per_family, baselines, suite, family)
        if found is not None:
            best[family] = found
    return best


def _best_baseline(
    per_family: Iterable[Mapping[str, Any]], baselines: Sequence[str], suite: str, family: str
) -> tuple[str, float] | None:
    """The non-identity baseline with the highest mean psnr_y on one group (first name on ties)."""
    scores = {
        row["method"]: row["psnr_y"]
        for row in per_family
        if row["suite"] == suite and row["family"] == family and math.isfinite(row["psnr_y"])
    }
    ranked = [(scores[b], -i, b) for i, b in enumerate(baselines) if b != IDENTITY and b in scores]
    if not ranked:
        return None
    value, _, name = max(ranked)
    return name, value


def eval_metrics(
    per_family: Sequence[Mapping[str, Any]],
    baselines: Sequence[str],
    champion: Mapping[str, Any],
    specialists: Sequence[str] = (),
    methods: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The content of ``metrics/eval.json``: flat keys, numbers wherever DVC compares them.

    Keys: the model's :func:`headline` (its harm keys included); ``lpips`` =
    :data:`LPIPS_NOT_COMPUTED` when the rows have no LPIPS; ``baselines.<name>.gir_score``,
    ``specialists.<family>.gir_score`` and ``methods.<name>.gir_score``, each followed by that
    method's :func:`harm_metrics` under the same prefix (``baselines.<name>.harm_rate.<suite>``
    ...), an outside method's then by ``methods.<name>.failed`` (how many images it left
    unscored) and ``methods.<name>.errors`` (one line per such image);
    ``best_baseline.<family>.name`` / ``.psnr_y`` (best non-identity baseline per family of
    ``single-id``); and ``champion.<key>`` for every item of ``champion`` (``promoted``,
    ``version``, ``previous_version``, ``reasons`` ...).

    Args:
        per_family: rows of :func:`summarize`, the model's (method ``model``) included.
        baselines: baseline method names present in ``per_family``.
        champion: the promotion outcome (see :func:`girml.evaluation.gate.decision_record`).
        specialists: the families of ``specialist:<family>`` methods present.
        methods: the outside methods present (``evaluate.methods``), each with the images it
            left unscored (see :mod:`girml.evaluation.methods`).
    """
    out: dict[str, Any] = dict(headline(per_family, MODEL_METHOD))
    if not _has_lpips(per_family):
        out["lpips"] = LPIPS_NOT_COMPUTED
    methods = methods or {}
    others = [(f"baselines.{name}", name) for name in baselines]
    others += [(f"specialists.{family}", specialist_method(family)) for family in specialists]
    others += [(f"methods.{name}", name) for name in methods]
    for prefix, method in others:
        out[f"{prefix}.gir_score"] = gir_score(per_family, method)
        out.update({f"{prefix}.{k}": v for k, v in harm_metrics(per_family, method).items()})
        if method in methods:
            out[f"{prefix}.failed"] = len(methods[method])
            out[f"{prefix}.errors"] = list(methods[method])
    for family, (name, value) in best_baselines(per_family, baselines).items():
        out[f"best_baseline.{family}.name"] = name
        out[f"best_baseline.{family}.psnr_y"] = value
    out.update({f"champion.{key}": value for key, value in champion.items()})
    return {key: _rounded(value) for key, value in out.items()}


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def format_table(per_family: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> str:
    """A plain-text table of mean ``psnr_y`` per (suite, family) (rows) and method (columns)."""
    by_key = {(r["method"], r["suite"], r["family"]): r["psnr_y"] for r in per_family}
    groups = list(
        dict.fromkeys((r["suite"], r["family"]) for r in per_family if r["suite"] != REAL_SUITE)
    )
    width = max([len("suite/family"), *(len(f"{s}/{f}") for s, f in groups)])
    cols = [max(8, len(m)) for m in methods]
    lines = [
        "psnr_y (dB)".ljust(width)
        + "".join(f"  {m:>{w}}" for m, w in zip(methods, cols, strict=True))
    ]
    for suite, family in groups:
        cells = [by_key.get((m, suite, family), math.nan) for m in methods]
        lines.append(
            f"{suite}/{family}".ljust(width)
            + "".join(f"  {v:>{w}.2f}" for v, w in zip(cells, cols, strict=True))
        )
    return "\n".join(lines)
