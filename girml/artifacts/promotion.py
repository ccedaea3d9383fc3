"""The evaluate stage's work as one call: score the model, the baselines and the champion; decide.

The new model version (``models/latest``, registered by the train stage) and the registry's
current ``@champion`` are evaluated on the same benchmark in the same call and
:func:`girml.evaluation.gate.decide` compares them. Nothing is recorded in MLflow here: the
``evaluate`` stage then hands the :class:`EvaluationResult` to
:func:`girml.artifacts.champion.apply_decision`, which points the ``champion`` or
``challenger`` alias at the new version and appends the evaluation to its MLflow run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from girml.artifacts.loading import load_model
from girml.artifacts.registered import champion_or_release, load_logged_model
from girml.artifacts.store import load_model_dir
from girml.artifacts.training_run import RegisteredModel, registered_model
from girml.baselines import BASELINES
from girml.config import RESTORE_OVERLAP, RESTORE_TILE, EvaluateConfig, MethodSpec
from girml.core.paths import RELEASE_DIR
from girml.data.synthesize import WHOLE_SUITE
from girml.evaluation.bench import Bench
from girml.evaluation.costs import (
    METHOD_COSTS_FILE,
    MethodCost,
    RestoreCost,
    write_method_costs,
)
from girml.evaluation.gate import CHAMPION_METHOD, Decision, champion_decision, decision_record
from girml.evaluation.harness import MODEL_METHOD, MethodRows, evaluate_method
from girml.evaluation.methods import evaluate_outside, load_methods
from girml.evaluation.outputs import write_outputs
from girml.evaluation.report import eval_metrics, format_table, summarize
from girml.evaluation.restorers import BatchRestoreFn, RestoreFn, model_restorer
from girml.evaluation.scores import fit_pristine_niqe
from girml.evaluation.specialists import specialist_method
from girml.evaluation.uncertainty import gain_intervals
from girml.evaluation.whole import evaluate_whole, has_whole_suite
from girml.metrics import LpipsMetric, NiqeModel, load_lpips
from girml.tracking.versions import REGISTERED_MODEL
from girml.training.approaches import param_count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate_and_promote` found, and what recording its decision needs
    (:func:`~girml.artifacts.champion.apply_decision`).

    Attributes:
        rows: per-image rows of every method.
        per_family: :func:`~girml.evaluation.report.summarize` of ``rows``.
        metrics: the ``eval.json`` content.
        decision: the champion decision.
        files: the files written.
        registered: the evaluated model's MLflow run and registered version.
        previous: the ``@champion`` version before the decision, or None.
        attachments: the written files to attach to the model's run (``eval.json`` and
            ``per_family.csv``).
        seconds: wall time of each method's evaluation.
    """

    rows: list[dict[str, Any]]
    per_family: list[dict[str, Any]]
    metrics: dict[str, Any]
    decision: Decision
    files: list[Path]
    registered: RegisteredModel
    previous: int | None
    attachments: list[Path]
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
    specialists: Mapping[str, nn.Module] | None = None,
    train_metrics: Path | None = None,
) -> EvaluationResult:
    """The evaluate stage's work: score the model, the baselines (and specialists), decide.

    Steps: fit the NIQE pristine model on the clean photos outside the test split; load LPIPS
    when ``cfg.lpips_weights`` is set; evaluate the model in ``model_dir`` (method ``model``),
    every ``cfg.baselines`` entry, with ``cfg.specialists`` each network of ``specialists``
    (method ``specialist:<family>``) and every outside method of ``cfg.methods``
    (:mod:`girml.evaluation.methods`); evaluate the registry's ``@champion`` (method
    ``champion``) unless it is this very version; :func:`~girml.evaluation.gate.decide`; write
    the outputs (:func:`~girml.evaluation.outputs.write_outputs`) and each method's restoring
    time and parameter count (``method_costs.json``, :mod:`girml.evaluation.costs`). It records
    nothing in MLflow: the caller passes the result to
    :func:`~girml.artifacts.champion.apply_decision`.

    Args:
        model_dir: the train stage's model folder.
        bench_dir: the benchmark folder.
        clean_dir: the collect stage's folder (NIQE reference photos).
        cfg: the ``evaluate`` section.
        metrics_dir: where ``per_image.csv``, ``per_family.csv``, ``eval.json`` and
            ``method_costs.json`` go.
        plots_dir: where ``psnr_per_family.csv`` and ``generalization.csv`` go.
        project_root: where the default MLflow store lives; outside programs run there.
        specialists: family -> specialist network (the ``specialists`` stage's, in its
            order), required when ``cfg.specialists`` is on; not scored when it is off.
        train_metrics: the train stage's ``metrics/train.json``, which names the MLflow run and
            registered version of ``model_dir``
            (:func:`~girml.artifacts.training_run.registered_model`).

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        KeyError: an unknown baseline name (before anything runs).
        ValueError: a model folder without registry information, specialists switched on
            without ``specialists``, or an unloadable champion.
        MethodError: an outside method that cannot be loaded or fails on the bench's first
            image (before any scoring) or as a whole (:mod:`girml.evaluation.methods`).
    """
    restorers = {name: BASELINES.get(name) for name in cfg.baselines}
    if cfg.specialists and specialists is None:
        raise ValueError("evaluate.specialists is on: pass the specialists' networks")
    registered = registered_model(model_dir, train_metrics)
    outside = load_methods(cfg.methods, cfg.tile, project_root, load_model, Bench(bench_dir))
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
    return _decide_and_write(evaluated, registered, cfg, metrics_dir, plots_dir)


@dataclass
class _MethodRunner:
    """Evaluates methods on one benchmark with the same scorers, timing each.

    Attributes:
        niqe_model: the NIQE pristine model.
        lpips: the LPIPS network, or None.
        bench: the benchmark.
        cfg: the ``evaluate`` section.
        seconds: method -> wall seconds of its evaluation (scoring included), filled by
            :meth:`run`, :meth:`run_network` and :meth:`run_outside`.
        costs: method -> its restoring time (scoring left out) and parameter count, filled by
            the same.
    """

    niqe_model: NiqeModel
    lpips: LpipsMetric | None
    bench: Bench
    cfg: EvaluateConfig
    seconds: dict[str, float] = field(default_factory=dict)
    costs: dict[str, MethodCost] = field(default_factory=dict)

    def run(self, method: str, fn: RestoreFn) -> list[dict[str, Any]]:
        """:func:`~girml.evaluation.harness.evaluate_method` rows of a classical ``fn`` as
        ``method`` (no learned parameters: ``params`` 0)."""
        spent = RestoreCost()
        rows = self._rows(method, spent.timed(fn))
        self.costs[method] = MethodCost(spent, params=0)
        return rows

    def run_network(self, method: str, network: nn.Module) -> list[dict[str, Any]]:
        """The rows of ``network`` as ``method``, run with ``cfg``'s tile and self-ensemble."""
        cfg, spent = self.cfg, RestoreCost()
        fn = model_restorer(network, cfg.tile, cfg.self_ensemble)
        rows = self._rows(method, spent.timed(fn))
        self.costs[method] = MethodCost(spent, param_count(network), cfg.self_ensemble, cfg.tile)
        return rows

    def _rows(self, method: str, fn: RestoreFn) -> list[dict[str, Any]]:
        start = time.perf_counter()
        rows = evaluate_method(fn, self.bench, self.cfg, self.niqe_model, self.lpips, method=method)
        self.seconds[method] = time.perf_counter() - start
        log.info("evaluated %s in %.1f s", method, self.seconds[method])
        return rows

    def run_outside(self, spec: MethodSpec, fn: BatchRestoreFn) -> MethodRows:
        """:func:`~girml.evaluation.methods.evaluate_outside` of an outside method (its
        parameters are not counted)."""
        start, spent = time.perf_counter(), RestoreCost()
        result = evaluate_outside(
            spec.name,
            spent.timed_batch(fn),
            spec.batch,
            self.bench,
            self.cfg,
            self.niqe_model,
            self.lpips,
        )
        self.seconds[spec.name] = time.perf_counter() - start
        network = spec.mlflow is not None or spec.kind == "module_factory"
        self.costs[spec.name] = MethodCost(spent, None, tile=self.cfg.tile if network else None)
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
        costs: each method's restoring time and parameter count.
    """

    rows: list[dict[str, Any]]
    families: list[str]
    previous: int | None
    seconds: dict[str, float]
    failures: dict[str, list[str]]
    costs: dict[str, MethodCost]


def _evaluate_all(
    model_dir: Path,
    bench_dir: Path,
    clean_dir: Path,
    cfg: EvaluateConfig,
    restorers: Mapping[str, RestoreFn],
    outside: Mapping[str, BatchRestoreFn],
    specialists: Mapping[str, nn.Module] | None,
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
    rows = methods.run_network(MODEL_METHOD, model)
    for name, fn in restorers.items():
        rows += methods.run(name, fn)
    families: list[str] = []
    if cfg.specialists and specialists is not None:
        families, specialist_rows = _specialists(methods, specialists)
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
        uri = f"models:/{REGISTERED_MODEL}/{previous}"
        networks[CHAMPION_METHOD] = load_logged_model(uri)
        rows += methods.run_network(CHAMPION_METHOD, networks[CHAMPION_METHOD])
    if has_whole_suite(bench_dir):
        start, whole = time.perf_counter(), {method: RestoreCost() for method in networks}
        rows += evaluate_whole(
            networks, Bench(bench_dir, whole=True), cfg, methods.niqe_model, methods.lpips, whole
        )
        methods.seconds[f"{WHOLE_SUITE} photos ({', '.join(networks)})"] = (
            time.perf_counter() - start
        )
        for method, spent in whole.items():
            methods.costs[method] = replace(
                methods.costs[method],
                whole=spent,
                whole_tile=RESTORE_TILE,
                whole_overlap=RESTORE_OVERLAP,
            )
    return _Evaluated(rows, families, previous, methods.seconds, failures, methods.costs)


def _specialists(
    methods: _MethodRunner, specialists: Mapping[str, nn.Module]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Evaluate each specialist network as ``specialist:<family>``, in ``specialists`` order.

    Returns:
        The families and the specialists' rows.
    """
    rows: list[dict[str, Any]] = []
    for family, net in specialists.items():
        rows += methods.run_network(specialist_method(family), net)
    return list(specialists), rows


def _decide_and_write(
    evaluated: _Evaluated,
    registered: RegisteredModel,
    cfg: EvaluateConfig,
    metrics_dir: Path,
    plots_dir: Path,
) -> EvaluationResult:
    """Summarize the rows, decide and write the outputs.

    The arguments are :func:`evaluate_and_promote`'s.
    """
    rows, families, previous = evaluated.rows, evaluated.families, evaluated.previous
    per_family = summarize(rows)
    decision, previous_gir = champion_decision(
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
    costs_file = metrics_dir / METHOD_COSTS_FILE  # apart: timings differ from run to run
    files.append(write_method_costs(costs_file, evaluated.costs, metrics_dir / "per_image.csv"))
    return EvaluationResult(
        rows,
        per_family,
        metrics,
        decision,
        files,
        registered,
        previous,
        attachments=[metrics_dir / "eval.json", metrics_dir / "per_family.csv"],
        seconds=evaluated.seconds,
    )
