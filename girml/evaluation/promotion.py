"""Champion promotion and the evaluate stage as one call.

The new model version (``models/latest``, registered by the train stage) and the registry's
current ``@champion`` are evaluated on the same benchmark in the same call; :func:`decide`
compares them and :func:`apply_decision` points the ``champion`` or ``challenger`` alias at the
new version and appends the evaluation to the new version's MLflow run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from girml.baselines import BASELINES
from girml.config import (
    CLEAN_FAMILY,
    DegradationsConfig,
    EvaluateConfig,
    MethodSpec,
    ModelConfig,
    PromotionConfig,
    TrainConfig,
    parse_section,
)
from girml.evaluation.harness import (
    GIR_SUITES,
    MODEL_METHOD,
    WHOLE_SUITE,
    BatchRestoreFn,
    Bench,
    MethodRows,
    RestoreFn,
    evaluate_method,
    fit_pristine_niqe,
    model_restorer,
)
from girml.evaluation.methods import evaluate_outside, load_methods
from girml.evaluation.outputs import write_outputs
from girml.evaluation.report import (
    eval_metrics,
    format_table,
    gir_score,
    harm_metrics,
    headline,
    summarize,
)
from girml.evaluation.specialists import (
    default_specialist_families,
    specialist_method,
    train_specialists,
)
from girml.evaluation.uncertainty import gain_intervals
from girml.evaluation.whole import evaluate_whole, has_whole_suite
from girml.metrics import LpipsMetric, NiqeModel, load_lpips
from girml.models.store import CONFIG_FILE, load_model_dir, read_model_config, training_run
from girml.paths import RELEASE_DIR
from girml.tracking import mlflow as tracking
from girml.tracking.registry import champion_or_release, set_champion

log = logging.getLogger(__name__)

CHAMPION_METHOD = "champion"
# The (suite, family) groups the gate compares: the GIR suites, and whole photos restored as
# `girml restore` does (girml.evaluation.whole)
GATE_SUITES = (*GIR_SUITES, WHOLE_SUITE)
BLOCK_SHIFT_KEY = "harm.block_shift."
GroupScores = Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class Decision:
    """Whether the new version becomes ``@champion``, and why.

    Attributes:
        promoted: True: it becomes the champion; False: it becomes the challenger.
        reasons: human sentences with the numbers behind the decision.
    """

    promoted: bool
    reasons: tuple[str, ...]

    @property
    def alias(self) -> str:
        """The registry alias the new version gets."""
        return tracking.CHAMPION if self.promoted else tracking.CHALLENGER


def group_psnr(
    per_family: Sequence[Mapping[str, Any]], method: str
) -> dict[tuple[str, str], float]:
    """Per degraded (suite, family) of :data:`GATE_SUITES`: one method's mean psnr_y (what
    decide() compares; the ``clean`` family is compared through the harm keys instead)."""
    return {
        (row["suite"], row["family"]): row["psnr_y"]
        for row in per_family
        if row["method"] == method and row["suite"] in GATE_SUITES and row["family"] != CLEAN_FAMILY
    }


def decide(
    new: GroupScores,
    new_gir: float,
    champion: GroupScores | None,
    champion_gir: float | None,
    cfg: PromotionConfig,
    new_harm: Mapping[str, float] | None = None,
    champion_harm: Mapping[str, float] | None = None,
) -> Decision:
    """Promote the new version or keep it as the challenger.

    The first model (``champion`` None) becomes champion. Otherwise it is promoted only if its
    ``gir_score`` beats the champion's by at least ``cfg.min_gir_gain`` dB AND no (suite,
    family) group of the GIR suites present in both loses more than
    ``cfg.max_family_regression`` dB of mean PSNR-Y against the champion AND it does no more
    harm (when ``new_harm`` is given, see :func:`harm_reasons`): no suite's ``harm_rate`` rises
    more than ``cfg.max_harm_rate_increase`` and no suite's ``harm.clean_psnr_y`` drops more
    than ``cfg.max_clean_psnr_drop`` dB.

    Args:
        new: ``{(suite, family): mean psnr_y}`` of the new version (see :func:`group_psnr`);
            groups outside the GIR suites are ignored.
        new_gir: its ``gir_score``.
        champion: the same for the current champion, on the same benchmark; None if none.
        champion_gir: the champion's ``gir_score`` (ignored when ``champion`` is None).
        cfg: the thresholds.
        new_harm: the new version's
            :func:`~girml.evaluation.report.harm_metrics`; None skips the harm checks.
        champion_harm: the champion's; None or without harm keys (an older run) skips the
            harm checks with a note among the reasons.

    Returns:
        The :class:`Decision`; its reasons state every comparison made.
    """
    if champion is None:
        return Decision(True, ("no champion yet: the first model becomes the champion",))
    if champion_gir is None:
        raise ValueError("champion_gir is required when champion is given")
    gain = new_gir - champion_gir
    # a tolerance so that a gain printed as exactly the threshold counts as reaching it
    gain_ok = gain >= cfg.min_gir_gain - 1e-9
    reasons = [
        f"gir_score {new_gir:.2f} dB vs champion {champion_gir:.2f} dB: {gain:+.2f} "
        f"{'>=' if gain_ok else '<'} {cfg.min_gir_gain:.2f}"
    ]
    families_ok, notes = regression_reasons(new, champion, cfg)
    reasons += notes
    harm_ok = True
    if new_harm is not None:
        harm_ok, notes = harm_reasons(new_harm, champion_harm, cfg)
        reasons += notes
    return Decision(gain_ok and families_ok and harm_ok, tuple(reasons))


def regression_reasons(
    new: GroupScores, champion: GroupScores, cfg: PromotionConfig
) -> tuple[bool, list[str]]:
    """The per-family part of :func:`decide`: does any group lose too much against the champion?

    Compared per (suite, family) of :data:`GATE_SUITES` present in both with finite scores; a group
    whose mean PSNR-Y drops more than ``cfg.max_family_regression`` dB refuses.

    Args:
        new: ``{(suite, family): mean psnr_y}`` of the new version.
        champion: the same for the champion.
        cfg: the thresholds.

    Returns:
        ``(ok, reasons)``: one reason per regressed group, or one summary line naming the
        largest change when none regressed (none when no group was compared).
    """
    drops = {
        key: champion[key] - new[key]
        for key in sorted(set(new) & set(champion))
        if key[0] in GATE_SUITES and math.isfinite(new[key]) and math.isfinite(champion[key])
    }
    regressed = {k: d for k, d in drops.items() if d > cfg.max_family_regression}
    reasons = [
        f"{suite}/{family} regressed {drop:.2f} dB > {cfg.max_family_regression:.2f}"
        for (suite, family), drop in regressed.items()
    ]
    if drops and not regressed:
        (suite, family), worst = max(drops.items(), key=lambda kv: kv[1])
        reasons.append(
            f"no (suite, family) regressed more than {cfg.max_family_regression:.2f} dB "
            f"(largest change: {suite}/{family} {-worst:+.2f} dB)"
        )
    return not regressed, reasons


def harm_reasons(
    new: Mapping[str, float], champion: Mapping[str, float] | None, cfg: PromotionConfig
) -> tuple[bool, list[str]]:
    """The harm part of :func:`decide`: is the new version no more harmful than the champion?

    Compared per key present in both: ``harm_rate.<suite>`` (refused when the new rate exceeds
    the champion's by more than ``cfg.max_harm_rate_increase``), ``harm.clean_psnr_y.<suite>``
    (refused when the new value is more than ``cfg.max_clean_psnr_drop`` dB below the
    champion's) and ``harm.block_shift.<suite>`` (refused when the new largest block shift
    exceeds the champion's by more than ``cfg.max_block_shift_rise`` grey levels). A key the
    champion lacks is skipped, with a note.

    Args:
        new: the new version's :func:`~girml.evaluation.report.harm_metrics`.
        champion: the champion's, or None (an older run without harm metrics).
        cfg: the thresholds.

    Returns:
        ``(ok, reasons)``: ok is False when any check refuses; one reason per refusal, one
        summary line per passed kind of check and one note per skipped key.
    """
    keys = [k for k in new if k.startswith(("harm_rate.", "harm.clean_psnr_y.", BLOCK_SHIFT_KEY))]
    if not keys:
        return True, []
    champion = {k: v for k, v in (champion or {}).items() if math.isfinite(v)}
    if not any(k in champion for k in keys):
        return True, ["champion has no harm metrics (older run): harm checks skipped"]
    compared = [key for key in keys if key in champion and math.isfinite(new[key])]
    rises = {k: new[k] - champion[k] for k in compared if not k.startswith("harm.clean_psnr_y.")}
    drops = {k: champion[k] - new[k] for k in compared if k.startswith("harm.clean_psnr_y.")}
    changes = {**rises, **drops}
    refusals = [
        _harm_refusal(key, new[key], champion[key], changes[key], cfg)
        for key in compared
        if changes[key] > _harm_limit(key, cfg) + 1e-9
    ]
    summary = _harm_summary(rises, drops, refusals, cfg)
    notes = [f"champion has no {key}: that check skipped" for key in keys if key not in champion]
    return not refusals, [*refusals, *summary, *notes]


def _harm_limit(key: str, cfg: PromotionConfig) -> float:
    """How much harm key ``key`` may worsen: a ``harm_rate.*`` rise (a fraction), a
    ``harm.block_shift.*`` rise (grey levels), a ``harm.clean_psnr_y.*`` drop (dB)."""
    if key.startswith("harm_rate."):
        return cfg.max_harm_rate_increase
    if key.startswith(BLOCK_SHIFT_KEY):
        return cfg.max_block_shift_rise
    return cfg.max_clean_psnr_drop


def _harm_refusal(
    key: str, new: float, champion: float, change: float, cfg: PromotionConfig
) -> str:
    """The reason harm key ``key`` refuses: its value ``new`` against the champion's, worse by
    ``change`` (a rise or a drop, see :func:`_harm_limit`) than the limit allows."""
    limit = _harm_limit(key, cfg)
    if key.startswith(BLOCK_SHIFT_KEY):
        return (
            f"{key} {new:.1f} vs champion {champion:.1f} grey levels: {change:+.1f} > {limit:.1f}"
        )
    if key.startswith("harm_rate."):
        return (
            f"{key} {new:.1%} vs champion {champion:.1%}: {change * 100:+.1f} "
            f"points > {limit * 100:.1f}"
        )
    return (
        f"{key} {new:.2f} dB vs champion {champion:.2f} dB: {-change:+.2f} dB, a drop > {limit:.2f}"
    )


def _harm_summary(
    rises: Mapping[str, float],
    drops: Mapping[str, float],
    refusals: Sequence[str],
    cfg: PromotionConfig,
) -> list[str]:
    """One line per kind of harm check that was made and refused nothing, naming its largest
    change.

    Args:
        rises: new minus champion of each compared ``harm_rate.*`` key.
        drops: champion minus new (dB) of each compared ``harm.clean_psnr_y.*`` key.
        refusals: the refusals of :func:`_harm_refusal`.
        cfg: the thresholds.
    """
    summary = []
    shifts = {k: v for k, v in rises.items() if k.startswith(BLOCK_SHIFT_KEY)}
    rises = {k: v for k, v in rises.items() if k.startswith("harm_rate.")}
    if shifts and not any(r.startswith(BLOCK_SHIFT_KEY) for r in refusals):
        key, rise = max(shifts.items(), key=lambda kv: kv[1])
        summary.append(
            f"no block shift rose more than {cfg.max_block_shift_rise:.1f} grey levels "
            f"(largest change: {key} {rise:+.1f})"
        )
    if rises and not any(r.startswith("harm_rate.") for r in refusals):
        key, rise = max(rises.items(), key=lambda kv: kv[1])
        summary.append(
            f"no harm_rate rose more than {cfg.max_harm_rate_increase * 100:.1f} points "
            f"(largest change: {key} {rise * 100:+.1f})"
        )
    if drops and not any(r.startswith("harm.clean_psnr_y.") for r in refusals):
        key, drop = max(drops.items(), key=lambda kv: kv[1])
        summary.append(
            f"no clean PSNR-Y dropped more than {cfg.max_clean_psnr_drop:.2f} dB "
            f"(largest change: {key} {-drop:+.2f} dB)"
        )
    return summary


@dataclass(frozen=True)
class RegisteredModel:
    """Where the train stage registered a model folder (``run`` in ``metrics/train.json``)."""

    run_id: str
    version: int


def registered_model(model_dir: Path, train_metrics: Path | None = None) -> RegisteredModel:
    """The MLflow run and registered version of a model folder.

    Read from ``run.mlflow_run_id`` / ``run.registered_version`` of ``train_metrics`` (the
    train stage's ``metrics/train.json``) when it describes this folder's weights, else from
    ``mlflow`` in the folder's ``config.yaml`` (folders from older versions); see
    :func:`girml.models.store.training_run`.

    Raises:
        FileNotFoundError: no ``config.yaml``.
        ValueError: neither file records them (the model was not trained by ``girml train``).
    """
    run = training_run(model_dir, train_metrics)
    if run.mlflow_run_id is None or run.registered_version is None:
        where = f"{train_metrics} (run) or " if train_metrics is not None else ""
        raise ValueError(
            f"{where}{Path(model_dir) / CONFIG_FILE} has no mlflow.run_id / "
            "mlflow.registered_version for these weights: evaluate a model trained and "
            "registered by `girml train`"
        )
    return RegisteredModel(run_id=run.mlflow_run_id, version=run.registered_version)


def _log_to_run(
    run_id: str,
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    artifacts: Sequence[Path],
) -> None:
    """Append tags, metrics (step 0) and artifact files (under ``evaluation/``) to a run."""
    import mlflow

    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        mlflow.set_tags(dict(tags))
        if metrics:
            tracking.log_metrics(0, metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")


def apply_decision(
    decision: Decision,
    version: int,
    run_id: str,
    metrics: Mapping[str, Any],
    previous_version: int | None,
    artifacts: Sequence[Path] = (),
) -> None:
    """Record a decision in the (already configured) MLflow registry and the version's run.

    Points ``@champion`` (promoted) or ``@challenger`` at ``version``, then appends to run
    ``run_id``: tags ``champion.promoted`` (``true``/``false``), ``champion.alias``,
    ``champion.previous_version`` and ``champion.reasons`` (one per line); every numeric value
    of ``metrics`` as a metric (booleans as 0/1); and ``artifacts`` under ``evaluation/``.
    Tags, not params, hold the decision: params are immutable and a re-evaluation may decide
    differently.

    Args:
        decision: the outcome of :func:`decide`.
        version: the new model version in :data:`~girml.tracking.mlflow.REGISTERED_MODEL`.
        run_id: the MLflow run that trained and registered it.
        metrics: e.g. the ``eval.json`` content; non-numeric values are skipped.
        previous_version: the champion before the decision, or None.
        artifacts: files to attach (e.g. ``eval.json``, ``per_family.csv``).
    """
    if decision.promoted:
        set_champion(version, "; ".join(decision.reasons)[:1000])
    else:
        tracking.set_alias(tracking.REGISTERED_MODEL, decision.alias, version)
    tags = {
        "champion.promoted": str(decision.promoted).lower(),
        "champion.alias": decision.alias,
        "champion.previous_version": "none" if previous_version is None else str(previous_version),
        "champion.reasons": "\n".join(decision.reasons),
    }
    numeric = {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    _log_to_run(run_id, tags, numeric, artifacts)


def decision_record(
    decision: Decision,
    version: int,
    previous_version: int | None,
    previous_gir: float | None,
) -> dict[str, Any]:
    """The ``champion.*`` entries of ``eval.json`` (keys without the prefix)."""
    record: dict[str, Any] = {
        "promoted": decision.promoted,
        "alias": decision.alias,
        "version": version,
        "previous_version": previous_version,
        "reasons": list(decision.reasons),
    }
    if previous_gir is not None:
        record["previous_gir_score"] = previous_gir
    return record


@dataclass(frozen=True)
class SpecialistInputs:
    """What training specialists needs beyond the model folder (``evaluate.specialists``)."""

    spec: DegradationsConfig
    pairs_dir: Path
    work_dir: Path


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate_and_promote` did.

    Attributes:
        rows: per-image rows of every method.
        per_family: :func:`~girml.evaluation.report.summarize` of ``rows``.
        metrics: the ``eval.json`` content.
        decision: the champion decision.
        files: the files written.
        seconds: wall time of each method's evaluation.
    """

    rows: list[dict[str, Any]]
    per_family: list[dict[str, Any]]
    metrics: dict[str, Any]
    decision: Decision
    files: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A human report: the per-family table, headline numbers and the decision."""
        methods = list(dict.fromkeys(row["method"] for row in self.per_family))
        m = self.metrics
        lines = [format_table(self.per_family, methods), ""]
        lines.append(
            f"gir_score {m['gir_score']:.2f} dB, generalization_gap "
            f"{m.get('generalization_gap', math.nan):.2f} dB"
        )
        rates = [
            f"{k.split('.', 1)[1]} {v:.1%}" for k, v in m.items() if k.startswith("harm_rate.")
        ]
        clean = [
            f"{k.rsplit('.', 1)[1]} {v:.2f} dB"
            for k, v in m.items()
            if k.startswith("harm.clean_psnr_y.")
        ]
        if rates:
            lines.append("harm rate: " + ", ".join(rates))
        if clean:
            lines.append("clean PSNR-Y: " + ", ".join(clean))
        if "harm.worst_family_gain" in m:
            lines.append(f"worst single-id family gain: {m['harm.worst_family_gain']:+.2f} dB")
        lines += [
            f"best baseline on single-id/{key.split('.')[1]}: {value} "
            f"({m[key.removesuffix('.name') + '.psnr_y']:.2f} dB)"
            for key, value in m.items()
            if key.startswith("best_baseline.") and key.endswith(".name")
        ]
        lines += [
            f"method {key.split('.')[1]}: {len(errors)} image(s) not scored, the first {errors[0]}"
            for key, errors in m.items()
            if key.startswith("methods.") and key.endswith(".errors") and errors
        ]
        lines += [f"time {method}: {sec:.1f} s" for method, sec in self.seconds.items()]
        verdict = "promoted to @champion" if self.decision.promoted else "kept as @challenger"
        lines.append(f"version {m['champion.version']} {verdict}:")
        lines += [f"  - {reason}" for reason in self.decision.reasons]
        return "\n".join(lines)


def evaluate_and_promote(
    model_dir: Path,
    bench_dir: Path,
    clean_dir: Path,
    cfg: EvaluateConfig,
    metrics_dir: Path,
    plots_dir: Path,
    project_root: Path,
    specialists: SpecialistInputs | None = None,
    train_metrics: Path | None = None,
) -> EvaluationResult:
    """The evaluate stage: score the model, the baselines (and specialists), decide, record.

    Steps: fit the NIQE pristine model on the clean photos outside the test split; load LPIPS
    when ``cfg.lpips_weights`` is set; evaluate the model in ``model_dir`` (method ``model``),
    every ``cfg.baselines`` entry, with ``cfg.specialists`` one specialist per family
    (``cfg.specialist_families`` or every family not held out; method ``specialist:<family>``)
    and every outside method of ``cfg.methods`` (:mod:`girml.evaluation.methods`); evaluate the
    registry's ``@champion`` (method ``champion``) unless it is this very version;
    :func:`decide`; write the outputs (:func:`~girml.evaluation.outputs.write_outputs`); then
    :func:`apply_decision`.

    Args:
        model_dir: the train stage's model folder.
        bench_dir: the benchmark folder.
        clean_dir: the collect stage's folder (NIQE reference photos).
        cfg: the ``evaluate`` section.
        metrics_dir: where ``per_image.csv``, ``per_family.csv`` and ``eval.json`` go.
        plots_dir: where ``psnr_per_family.csv`` and ``generalization.csv`` go.
        project_root: where the default MLflow store lives; outside programs run there.
        specialists: required when ``cfg.specialists`` is on.
        train_metrics: the train stage's ``metrics/train.json``, which names the MLflow run and
            registered version of ``model_dir`` (:func:`registered_model`).

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        KeyError: an unknown baseline name (before anything runs).
        ValueError: a model folder without registry information, specialists switched on
            without ``specialists`` inputs, or an unloadable champion.
        MethodError: an outside method that cannot be loaded or fails on the bench's first
            image (before any scoring) or as a whole (:mod:`girml.evaluation.methods`).
    """
    restorers = {name: BASELINES.get(name) for name in cfg.baselines}
    if cfg.specialists and specialists is None:
        raise ValueError("evaluate.specialists is on: pass the SpecialistInputs")
    registered = registered_model(model_dir, train_metrics)
    outside = load_methods(cfg.methods, cfg.tile, project_root, Bench(bench_dir))
    evaluated = _evaluate_all(
        model_dir,
        bench_dir,
        clean_dir,
        cfg,
        restorers,
        outside,
        specialists,
        project_root,
        registered,
    )
    return _decide_and_record(evaluated, registered, cfg, metrics_dir, plots_dir)


@dataclass
class _MethodRunner:
    """Evaluates methods on one benchmark with the same scorers, timing each.

    Attributes:
        niqe_model: the NIQE pristine model.
        lpips: the LPIPS network, or None.
        bench: the benchmark.
        cfg: the ``evaluate`` section.
        seconds: method -> wall seconds of its evaluation, filled by :meth:`run`.
    """

    niqe_model: NiqeModel
    lpips: LpipsMetric | None
    bench: Bench
    cfg: EvaluateConfig
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, method: str, fn: RestoreFn) -> list[dict[str, Any]]:
        """:func:`~girml.evaluation.harness.evaluate_method` rows of ``fn`` as ``method``."""
        start = time.perf_counter()
        rows = evaluate_method(fn, self.bench, self.cfg, self.niqe_model, self.lpips, method=method)
        self.seconds[method] = time.perf_counter() - start
        log.info("evaluated %s in %.1f s", method, self.seconds[method])
        return rows

    def run_outside(self, spec: MethodSpec, fn: BatchRestoreFn) -> MethodRows:
        """:func:`~girml.evaluation.methods.evaluate_outside` of an outside method."""
        start = time.perf_counter()
        result = evaluate_outside(
            spec.name, fn, spec.batch, self.bench, self.cfg, self.niqe_model, self.lpips
        )
        self.seconds[spec.name] = time.perf_counter() - start
        log.info("evaluated %s in %.1f s", spec.name, self.seconds[spec.name])
        return result


@dataclass(frozen=True)
class _Evaluated:
    """Every method's per-image rows, and what the decision and outputs need besides.

    Attributes:
        rows: per-image rows of every method evaluated.
        families: the specialist families evaluated (empty without specialists).
        previous: the ``@champion`` version before this evaluation, or None.
        seconds: wall time of each method's evaluation.
        failures: per outside method (``cfg.methods`` order), the images it left unscored
            (:meth:`~girml.evaluation.harness.ImageFailure.describe`).
    """

    rows: list[dict[str, Any]]
    families: list[str]
    previous: int | None
    seconds: dict[str, float]
    failures: dict[str, list[str]]


def _evaluate_all(
    model_dir: Path,
    bench_dir: Path,
    clean_dir: Path,
    cfg: EvaluateConfig,
    restorers: Mapping[str, RestoreFn],
    outside: Mapping[str, BatchRestoreFn],
    specialists: SpecialistInputs | None,
    project_root: Path,
    registered: RegisteredModel,
) -> _Evaluated:
    """Evaluate the model, the baselines, the specialists (when on), the outside methods and
    the registry's ``@champion`` (unless it is ``registered`` itself) on the benchmark.

    The arguments are :func:`evaluate_and_promote`'s, ``restorers`` its baselines by name and
    ``outside`` its outside methods' restorers (:func:`~girml.evaluation.methods.load_methods`).
    """
    model = load_model_dir(model_dir)
    methods = _MethodRunner(
        niqe_model=fit_pristine_niqe(clean_dir, cfg.niqe_patch_size),
        lpips=load_lpips(Path(cfg.lpips_weights) if cfg.lpips_weights else None),
        bench=Bench(bench_dir),
        cfg=cfg,
    )
    rows = methods.run(MODEL_METHOD, model_restorer(model, cfg.tile, cfg.self_ensemble))
    for name, fn in restorers.items():
        rows += methods.run(name, fn)
    families: list[str] = []
    if cfg.specialists and specialists is not None:
        families, specialist_rows = _specialists(methods, model_dir, specialists)
        rows += specialist_rows
    failures: dict[str, list[str]] = {}
    for spec in cfg.methods:
        result = methods.run_outside(spec, outside[spec.name])
        rows += result.rows
        failures[spec.name] = [failure.describe() for failure in result.failures]

    # no champion yet: the shipped release is registered and made it, so a model must beat it
    previous = champion_or_release(project_root / RELEASE_DIR, project_root)
    networks = {MODEL_METHOD: model}
    if previous is not None and previous != registered.version:
        uri = f"models:/{tracking.REGISTERED_MODEL}/{previous}"
        networks[CHAMPION_METHOD] = tracking.load_logged_model(uri)
        champion_fn = model_restorer(networks[CHAMPION_METHOD], cfg.tile, cfg.self_ensemble)
        rows += methods.run(CHAMPION_METHOD, champion_fn)
    if has_whole_suite(bench_dir):
        start = time.perf_counter()
        rows += evaluate_whole(
            networks, Bench(bench_dir, whole=True), cfg, methods.niqe_model, methods.lpips
        )
        methods.seconds[f"{WHOLE_SUITE} photos ({', '.join(networks)})"] = (
            time.perf_counter() - start
        )
    return _Evaluated(rows, families, previous, methods.seconds, failures)


def _specialists(
    methods: _MethodRunner, model_dir: Path, specialists: SpecialistInputs
) -> tuple[list[str], list[dict[str, Any]]]:
    """Train one specialist per family with the model folder's config; evaluate each as
    ``specialist:<family>``.

    Returns:
        The families (``evaluate.specialist_families``, or every family not held out) and the
        specialists' rows.
    """
    config = read_model_config(model_dir)
    source = str(Path(model_dir) / CONFIG_FILE)
    model_cfg = parse_section(config["model"], "model", ModelConfig, source=source)
    train_cfg = parse_section(config.get("train"), "train", TrainConfig, source=source)
    cfg = methods.cfg
    families = cfg.specialist_families or default_specialist_families(specialists.spec)
    trained = train_specialists(
        model_cfg,
        train_cfg,
        specialists.spec,
        families,
        specialists.pairs_dir,
        specialists.work_dir,
    )
    rows: list[dict[str, Any]] = []
    for family, net in trained.items():
        fn = model_restorer(net, cfg.tile, cfg.self_ensemble)
        rows += methods.run(specialist_method(family), fn)
    return families, rows


def _champion_decision(
    per_family: Sequence[Mapping[str, Any]],
    version: int,
    previous: int | None,
    cfg: PromotionConfig,
) -> tuple[Decision, float | None]:
    """:func:`decide` for the new ``version`` against the ``previous`` champion (evaluated as
    method ``champion``); a version that already is the champion stays it.

    Returns:
        The decision, and the champion's ``gir_score`` when it was compared (else None).
    """
    new_gir = headline(per_family, MODEL_METHOD)["gir_score"]
    if previous == version:
        return Decision(True, (f"version {previous} is already the champion",)), None
    if previous is None:
        return decide(group_psnr(per_family, MODEL_METHOD), new_gir, None, None, cfg), None
    previous_gir = gir_score(per_family, CHAMPION_METHOD)
    decision = decide(
        group_psnr(per_family, MODEL_METHOD),
        new_gir,
        group_psnr(per_family, CHAMPION_METHOD),
        previous_gir,
        cfg,
        new_harm=harm_metrics(per_family, MODEL_METHOD),
        champion_harm=harm_metrics(per_family, CHAMPION_METHOD),
    )
    return decision, previous_gir


def _decide_and_record(
    evaluated: _Evaluated,
    registered: RegisteredModel,
    cfg: EvaluateConfig,
    metrics_dir: Path,
    plots_dir: Path,
) -> EvaluationResult:
    """Summarize the rows, decide, write the outputs and record the decision in MLflow.

    The arguments are :func:`evaluate_and_promote`'s.
    """
    rows, families, previous = evaluated.rows, evaluated.families, evaluated.previous
    per_family = summarize(rows)
    decision, previous_gir = _champion_decision(
        per_family, registered.version, previous, cfg.promotion
    )
    record = decision_record(decision, registered.version, previous, previous_gir)
    metrics = eval_metrics(per_family, cfg.baselines, record, families, evaluated.failures)
    metrics.update(gain_intervals(rows, MODEL_METHOD))  # how sure each suite's gain is
    plot_methods = [
        MODEL_METHOD,
        *cfg.baselines,
        *(specialist_method(f) for f in families),
        *(spec.name for spec in cfg.methods),
    ]
    files = write_outputs(
        rows, per_family, metrics, cfg.baselines, plot_methods, metrics_dir, plots_dir
    )
    apply_decision(
        decision,
        registered.version,
        registered.run_id,
        metrics,
        previous,
        artifacts=[metrics_dir / "eval.json", metrics_dir / "per_family.csv"],
    )
    result = EvaluationResult(rows, per_family, metrics, decision, files, evaluated.seconds)
    log.info("champion decision for version %d: %s", registered.version, decision.alias)
    return result
