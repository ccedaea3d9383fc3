"""The study's leaderboard: every evaluated method's gain per suite, with 95% bootstrap intervals
and paired differences against a reference method (DESIGN.md, "Metric names": the study).

Input: the evaluate stage's per-image rows (``metrics/per_image.csv``, columns
:data:`girml.evaluation.report.ROW_COLUMNS`): the model, the champion, the baselines, the
specialists and outside methods, all scored on the same benchmark images.

Definitions (gains in dB for PSNR-Y, in SSIM units for SSIM-Y):

- An image's gain is its output score minus its degraded input's (``psnr_y - psnr_y_input``,
  ``ssim_y - ssim_y_input``). Images without ground truth (NaN scores, the ``real`` suite) and
  the ``clean`` family (judged by the harm numbers instead) are left out of every gain.
- A suite's gain is the mean over its degraded families of each family's mean gain (families
  weigh the same: ``psnr_gain.<suite>`` of ``eval.json``, which subtracts the family means
  instead, up to float rounding). Its interval is the stratified percentile bootstrap of
  :func:`girml.evaluation.uncertainty.suite_gain_interval` with ``n_boot`` resamples and seed
  ``seed + i``, ``i`` the suite's index among the method's suites sorted by name: at
  ``seed=0`` and 2000 resamples the model's PSNR interval is the one in ``eval.json``
  (``psnr_gain_ci95_low.<suite>``).
- The paired difference against the reference takes the images both methods scored (same
  suite, family and id), the per-image PSNR gain difference (method minus reference), its
  family-weighted mean and the same stratified bootstrap of that mean (seed ``seed + i``).
- ``gir_score`` and ``generalization_gap`` are :func:`girml.evaluation.report.headline`'s (the
  values ``eval.json`` holds for the model); the ``gir_score`` interval and paired difference
  bootstrap the same mean, stratified by its (suite, family) groups, with seed ``seed + k``,
  ``k`` the number of the method's suites. Methods are ranked by ``gir_score``, highest first;
  methods without one (no ground truth in the GIR suites) come last, in row order.
- Harm numbers are :func:`girml.evaluation.report.harm_metrics`' (``harm_rate`` per suite,
  ``clean_psnr_y`` per suite with a ``clean`` family, ``worst_family_gain``).

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
- ``clean.<suite>.clean_psnr_y`` for every suite with a ``clean`` family.

``plots/study.csv`` (:func:`plot_rows`): ``method, suite, psnr_gain, low, high``, one row per
method (rank order) and suite. ``reports/study/index.html``: the same numbers as one
self-contained page rendered from ``templates/study.html.j2``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from girml.config import CLEAN_FAMILY
from girml.data.synthesize import SUITES
from girml.evaluation.harness import GIR_SUITES, MODEL_METHOD
from girml.evaluation.report import ROW_COLUMNS, harm_metrics, headline, summarize
from girml.evaluation.uncertainty import BOOTSTRAP_SAMPLES, LEVEL, suite_gain_interval
from girml.imageio import write_text
from girml.tracking import mlflow as tracking

TEMPLATES_DIR = Path(__file__).parent / "templates"
STUDY_TEMPLATE = "study.html.j2"
PLOT_COLUMNS = ("method", "suite", "psnr_gain", "low", "high")
_TEXT_COLUMNS = frozenset({"method", "suite", "family", "id", "source_id", "level"})

# method -> suite -> family -> image id -> gain, in row order (the bootstrap's draw order)
_Gains = dict[str, dict[str, dict[str, dict[str, float]]]]


@dataclass(frozen=True)
class Estimate:
    """A mean and its bootstrap interval (same unit as the mean)."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely above or below zero."""
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class Cost:
    """What running a method costs, where known (None: unknown).

    Attributes:
        seconds_per_megapixel: restoration time per megapixel of input, >= 0.
        params: parameter count, >= 0.

    Raises:
        ValueError: a negative or non-finite value (the message names the field).
    """

    seconds_per_megapixel: float | None = None
    params: int | None = None

    def __post_init__(self) -> None:
        for name in ("seconds_per_megapixel", "params"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class SuiteResult:
    """One method on one suite.

    Attributes:
        n: degraded images with ground truth.
        psnr_gain: mean PSNR-Y gain (dB), families weighted equally.
        ssim_gain: mean SSIM-Y gain, families weighted equally; None without SSIM scores.
        diff: paired ``psnr_gain`` difference, method minus reference (dB); None when the two
            share no image in this suite.
        harm_rate: fraction of the degraded images made worse (see
            :func:`girml.evaluation.report.harm_rate`); None when undefined.
    """

    n: int
    psnr_gain: Estimate
    ssim_gain: Estimate | None
    diff: Estimate | None
    harm_rate: float | None


@dataclass(frozen=True)
class MethodResult:
    """One method's row of the leaderboard.

    Attributes:
        method: the ``method`` column of the rows.
        rank: 1 for the best ``gir_score``.
        gir_score: :func:`girml.evaluation.report.gir_score` with its interval; None without
            ground truth in the GIR suites.
        gir_score_diff: paired ``gir_score`` difference against the reference (dB).
        generalization_gap: as in ``eval.json`` (dB); None when undefined.
        worst_family_gain: lowest per-family ``psnr_gain`` on ``single-id`` (dB).
        suites: suite -> result, in :data:`~girml.data.synthesize.SUITES` order.
        clean_psnr_y: suite -> mean output PSNR-Y of its ``clean`` family (dB).
        cost: what running the method costs, where known.
    """

    method: str
    rank: int
    gir_score: Estimate | None
    gir_score_diff: Estimate | None
    generalization_gap: float | None
    worst_family_gain: float | None
    suites: dict[str, SuiteResult] = field(default_factory=dict)
    clean_psnr_y: dict[str, float] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class Leaderboard:
    """Every method's results, best ``gir_score`` first (see the module docstring).

    Attributes:
        reference: the method paired differences are taken against.
        seed: the bootstrap's base seed.
        n_boot: bootstrap resamples per interval.
        methods: one result per method, in rank order.
    """

    reference: str
    seed: int
    n_boot: int
    methods: tuple[MethodResult, ...]

    def method(self, name: str) -> MethodResult:
        """The result of method ``name``.

        Raises:
            KeyError: no such method (the message lists those there are).
        """
        for result in self.methods:
            if result.method == name:
                return result
        raise KeyError(f"no method {name!r} in the leaderboard; methods: {self.names()}")

    def names(self) -> list[str]:
        """Method names in rank order."""
        return [result.method for result in self.methods]

    def suites(self) -> list[str]:
        """Every suite some method has a result on, in :func:`_suite_order`."""
        found = {suite for result in self.methods for suite in result.suites}
        return sorted(found, key=_suite_order)

    def clean_suites(self) -> list[str]:
        """Every suite with a ``clean`` family result, in :func:`_suite_order`."""
        found = {suite for result in self.methods for suite in result.clean_psnr_y}
        return sorted(found, key=_suite_order)


def _suite_order(suite: str) -> tuple[int, str]:
    return (SUITES.index(suite) if suite in SUITES else len(SUITES), suite)


# --------------------------------------------------------------------------- input


def read_per_image(path: Path) -> list[dict[str, Any]]:
    """Rows of ``metrics/per_image.csv``: identifying columns as text, scores as floats.

    Args:
        path: the evaluate stage's per-image CSV (empty cells are NaN).

    Raises:
        FileNotFoundError: no file (the message says which stage writes it).
        ValueError: a column of :data:`~girml.evaluation.report.ROW_COLUMNS` is missing or a
            score does not parse (the message names the file, line and column).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro evaluate` first")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [column for column in ROW_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        return [_parsed(raw, f"{path}:{line}") for line, raw in enumerate(reader, start=2)]


def _parsed(raw: Mapping[str, str], where: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column, text in raw.items():
        if column in _TEXT_COLUMNS:
            row[column] = text
            continue
        try:
            row[column] = float(text) if text else math.nan
        except ValueError:
            raise ValueError(f"{where}: {column} = {text!r} is not a number") from None
    return row


# --------------------------------------------------------------------------- statistics


def _gains(rows: Sequence[Mapping[str, Any]], score: str) -> _Gains:
    """Per-image ``<score> - <score>_input`` of the degraded images with ground truth.

    Raises:
        ValueError: an image appears twice for one method.
    """
    out: _Gains = {}
    for row in rows:
        gain = float(row[score]) - float(row[f"{score}_input"])
        if row["family"] == CLEAN_FAMILY or not math.isfinite(gain):
            continue
        images = (
            out.setdefault(row["method"], {})
            .setdefault(row["suite"], {})
            .setdefault(row["family"], {})
        )
        if row["id"] in images:
            where = f"{row['suite']}/{row['family']}/{row['id']}"
            raise ValueError(f"method {row['method']!r} has image {where} twice")
        images[row["id"]] = gain
    return out


def _estimate(by_family: Mapping[str, Mapping[str, float]], n_boot: int, seed: int) -> Estimate:
    """Family-weighted mean of per-image values and its stratified bootstrap interval."""
    arrays = {
        family: np.fromiter(images.values(), dtype=np.float64)
        for family, images in by_family.items()
    }
    value = float(np.mean([values.mean() for values in arrays.values()]))
    low, high = suite_gain_interval(arrays, samples=n_boot, level=LEVEL, seed=seed)
    return Estimate(value, low, high)


def _paired(
    mine: Mapping[str, Mapping[str, float]], ref: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per family, per image both have: my value minus the reference's (families without a
    shared image are left out)."""
    out = {}
    for family, images in mine.items():
        theirs = ref.get(family, {})
        diffs = {key: value - theirs[key] for key, value in images.items() if key in theirs}
        if diffs:
            out[family] = diffs
    return out


def _gir_groups(suites: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """The (suite, family) groups :func:`~girml.evaluation.report.gir_score` averages over."""
    return {
        f"{suite}/{family}": images
        for suite, families in suites.items()
        if suite in GIR_SUITES
        for family, images in families.items()
    }


def leaderboard(
    rows: Sequence[Mapping[str, Any]],
    reference: str = MODEL_METHOD,
    seed: int = 0,
    n_boot: int = BOOTSTRAP_SAMPLES,
    costs: Mapping[str, Cost] | None = None,
) -> Leaderboard:
    """Rank every method of the per-image rows, with intervals (see the module docstring).

    Deterministic: the same rows, in the same order, and the same ``seed`` give the same
    numbers.

    Args:
        rows: per-image rows (:func:`read_per_image`), several methods.
        reference: the method paired differences are taken against.
        seed: the bootstrap's base seed.
        n_boot: bootstrap resamples per interval, >= 1.
        costs: method -> its :class:`Cost`, where known; other methods get an unknown cost.

    Returns:
        The leaderboard, best ``gir_score`` first.

    Raises:
        ValueError: ``reference`` is not a method of the rows (the message lists those there
            are), ``n_boot`` < 1, ``costs`` names an unknown method, or an image appears twice
            for one method.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    methods = list(dict.fromkeys(row["method"] for row in rows))
    if reference not in methods:
        raise ValueError(f"reference method {reference!r} is not in the rows; methods: {methods}")
    costs = dict(costs or {})
    unknown = [method for method in costs if method not in methods]
    if unknown:
        raise ValueError(f"costs name unknown method(s) {unknown}; methods: {methods}")
    psnr, ssim = _gains(rows, "psnr_y"), _gains(rows, "ssim_y")
    per_family = summarize(rows)
    results = [
        replace(
            _method_result(method, psnr, ssim, per_family, reference, seed, n_boot),
            cost=costs.get(method, Cost()),
        )
        for method in methods
    ]
    ranked = sorted(results, key=_rank_key)  # stable: ties and unscored methods in row order
    return Leaderboard(
        reference=reference,
        seed=seed,
        n_boot=n_boot,
        methods=tuple(replace(result, rank=rank) for rank, result in enumerate(ranked, start=1)),
    )


def _rank_key(result: MethodResult) -> tuple[bool, float]:
    """Scored methods first, highest ``gir_score`` first."""
    score = result.gir_score
    return (score is None, -score.value if score is not None else 0.0)


def _method_result(
    method: str,
    psnr: _Gains,
    ssim: _Gains,
    per_family: Sequence[Mapping[str, Any]],
    reference: str,
    seed: int,
    n_boot: int,
) -> MethodResult:
    """One method's numbers, unranked (rank 0)."""
    mine, ref, mine_ssim = psnr.get(method, {}), psnr.get(reference, {}), ssim.get(method, {})
    suites = {}
    harm = harm_metrics(per_family, method)
    for index, suite in enumerate(sorted(mine)):
        diffs = _paired(mine[suite], ref.get(suite, {}))
        suites[suite] = SuiteResult(
            n=sum(len(images) for images in mine[suite].values()),
            psnr_gain=_estimate(mine[suite], n_boot, seed + index),
            ssim_gain=_estimate(mine_ssim[suite], n_boot, seed + index)
            if suite in mine_ssim
            else None,
            diff=_estimate(diffs, n_boot, seed + index) if diffs else None,
            harm_rate=harm.get(f"harm_rate.{suite}"),
        )
    groups = _gir_groups(mine)
    gir_score = gir_diff = gap = None
    if groups:
        top = headline(per_family, method)
        interval = _estimate(groups, n_boot, seed + len(mine))
        gir_score = Estimate(top["gir_score"], interval.low, interval.high)
        gap = top.get("generalization_gap")
        diffs = _paired(groups, _gir_groups(ref))
        gir_diff = _estimate(diffs, n_boot, seed + len(mine)) if diffs else None
    clean_key = "harm.clean_psnr_y."
    return MethodResult(
        method=method,
        rank=0,
        gir_score=gir_score,
        gir_score_diff=gir_diff,
        generalization_gap=gap,
        worst_family_gain=harm.get("harm.worst_family_gain"),
        suites={suite: suites[suite] for suite in sorted(suites, key=_suite_order)},
        clean_psnr_y={
            key.removeprefix(clean_key): value
            for key, value in harm.items()
            if key.startswith(clean_key)
        },
    )


# --------------------------------------------------------------------------- outputs


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


def study_json(board: Leaderboard) -> dict[str, Any]:
    """The content of ``metrics/study.json`` (keys in the module docstring)."""
    return {
        "reference": board.reference,
        "seed": board.seed,
        "n_boot": board.n_boot,
        "level": LEVEL,
        "ranking": board.names(),
        "methods": {
            result.method: method_json(result, board.reference) for result in board.methods
        },
    }


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


def render_html(board: Leaderboard, meta: Mapping[str, Any]) -> str:
    """The self-contained study page (inline CSS, no scripts, every value HTML-escaped).

    Args:
        board: the leaderboard.
        meta: facts shown at the top (name -> value), e.g. the source CSV.

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
    return template.render(board=board, meta=meta, level=LEVEL)


def run_study(
    per_image_csv: Path,
    out_json: Path,
    plots_csv: Path,
    html_dir: Path,
    reference: str = MODEL_METHOD,
    seed: int = 0,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    costs: Mapping[str, Cost] | None = None,
    more: Sequence[Path] = (),
) -> Leaderboard:
    """Read the per-image rows, build the leaderboard and write its three files, each atomically
    and none unless all three could be rendered.

    Files: ``out_json`` (:func:`study_json`), ``plots_csv`` (:func:`plot_csv`) and
    ``<html_dir>/index.html`` (:func:`render_html`).

    Args:
        per_image_csv: the evaluate stage's ``metrics/per_image.csv``.
        out_json: e.g. ``metrics/study.json``.
        plots_csv: e.g. ``plots/study.csv``.
        html_dir: e.g. ``reports/study``.
        reference: see :func:`leaderboard`.
        seed: see :func:`leaderboard`.
        n_boot: see :func:`leaderboard`.
        costs: see :func:`leaderboard`.
        more: further per-image CSVs (the study's approaches,
            ``metrics/approaches/<name>/per_image.csv``), ranked with the first.

    Raises:
        FileNotFoundError: no ``per_image_csv`` or no file of ``more``.
        ValueError: see :func:`read_per_image` and :func:`leaderboard`; a method of ``more``
            that an earlier file already has (the message names both files).
    """
    rows = read_per_image(per_image_csv)
    owner = dict.fromkeys((row["method"] for row in rows), Path(per_image_csv))
    for path in more:
        extra = read_per_image(Path(path))
        for method in dict.fromkeys(row["method"] for row in extra):
            if method in owner:
                raise ValueError(f"{path}: method {method!r} is already in {owner[method]}")
            owner[method] = Path(path)
        rows += extra
    board = leaderboard(rows, reference, seed, n_boot, costs)
    sources = ", ".join(str(path) for path in dict.fromkeys(owner.values()))
    meta = {"per-image rows": sources, "images": len(rows)}
    files = {  # every text first: a failure to build one leaves all three files as they were
        Path(out_json): json.dumps(study_json(board), indent=2, allow_nan=False) + "\n",
        Path(plots_csv): plot_csv(board),
        Path(html_dir) / "index.html": render_html(board, meta),
    }
    for path, text in files.items():
        write_text(path, text)
    return board


# --------------------------------------------------------------------------- tracking


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


def log_study(
    board: Leaderboard,
    project_root: Path,
    experiment: str = "gir",
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log the leaderboard to MLflow; returns the parent run id.

    One parent run ``study`` (params: ``reference``, ``seed``, ``n_boot``, ``methods``; tags:
    ``tags`` plus ``stage=study``) and one nested child run per method, named after it (tags:
    ``method``, ``rank``; metrics: :func:`method_metrics` at step 0).

    Args:
        board: the leaderboard.
        project_root: where the default tracking store lives (see
            :func:`girml.tracking.mlflow.tracking_uri`).
        experiment: experiment name.
        tags: extra parent tags, e.g. :func:`girml.tracking.mlflow.provenance_tags`.
    """
    with tracking.start_run(
        experiment,
        project_root,
        run_name="study",
        tags={**dict(tags or {}), "stage": "study"},
        log_system_metrics=False,
    ) as parent:
        tracking.log_params_flat(
            {
                "reference": board.reference,
                "seed": board.seed,
                "n_boot": board.n_boot,
                "methods": board.names(),
            }
        )
        for result in board.methods:
            with tracking.start_run(
                experiment,
                project_root,
                run_name=result.method,
                tags={"method": result.method, "rank": str(result.rank)},
                log_system_metrics=False,
                nested=True,
            ):
                tracking.log_metrics(0, method_metrics(result, board.reference))
        return str(parent.info.run_id)
