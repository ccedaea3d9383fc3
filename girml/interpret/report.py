"""The interpretation report (DVC stage ``interpret``): what the unified model has learned.

:func:`run_interpretation` writes ``<out>/index.html`` (self-contained: every figure is an
embedded PNG data URI, no external CSS, script or link), the same figures as PNG files in
``<out>/figures/`` and every number in ``<out>/interpretation.json``. Sections:

1. Deep degradation representations: pooled features of one layer for up to
   ``images_per_group`` images of every benchmark (suite, family), t-SNE maps coloured by
   family and by content category, the Calinski-Harabasz index of both labellings and, for
   each unseen family, the nearest seen family in feature space (:mod:`.features`).
2. Local attribution maps and the diffusion index per degraded family of ``single-id`` and
   ``unseen`` (:mod:`.attribution`).
3. Degradation sensitivity: PSNR gain against each trained family's main parameter for the
   model and the family's best classical baseline, with the benchmark means of the model and
   of specialists (from ``per_family.csv``) as flat segments over the id/ood ranges
   (:mod:`.sensitivity`).
4. Visual comparisons: the worst and best ``comparisons_per_family`` images of every
   (suite, family), by PSNR gain, among the images of section 1.
5. The generalization and harm tables of ``metrics/eval.json``.
6. Cases to look at: the worst harms on clean and ``single-id`` crops (from
   ``metrics/per_image.csv`` when given, else from the images of section 1), one generated
   sentence each (:mod:`.sections_cases`).

The benchmark's ``clean`` family (input = ground truth) appears in the representation map and
the comparisons (its worst image is the model's worst harm), but not where a degradation is
needed: LAM, the nearest-seen-family analysis (it compares degradations) and the sensitivity
sweep (which degrades the clean crops itself).

Sections 3, 5 and 6 use the evaluate stage's outputs when given and say "not available" instead
of failing when they are missing. :func:`log_report` attaches the folder to an MLflow run.

The stage reads its inputs (:mod:`.inputs`), builds the sections as plain data
(:mod:`.sections`, one ``sections_<key>`` module per section), writes the numbers and figures,
and renders the page from jinja2 templates (:mod:`.render`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from girml.config import DegradationsConfig, InterpretConfig
from girml.core.imageio import atomic_path, write_text
from girml.interpret.inputs import (
    Sample,
    StageInputs,
    bench_categories,
    load_inputs,
    run_samples,
    select_items,
)
from girml.interpret.render import render_html
from girml.interpret.sections import Section
from girml.interpret.sections_cases import cases_section
from girml.interpret.sections_comparisons import comparisons_section
from girml.interpret.sections_features import features_section
from girml.interpret.sections_generalization import generalization_section
from girml.interpret.sections_lam import lam_section
from girml.interpret.sections_sensitivity import sensitivity_section

log = logging.getLogger(__name__)

REPORT_HTML = "index.html"
REPORT_JSON = "interpretation.json"
FIGURES_DIR = "figures"
ARTIFACT_PATH = "interpretation"
# MLflow metric names allow letters, digits and "_-. :/" only: "blur+noise" -> "blur_noise"
_METRIC_UNSAFE = re.compile(r"[^\w\-. :/]")


def run_interpretation(
    model: nn.Module,
    bench_dir: Path,
    spec: DegradationsConfig,
    cfg: InterpretConfig,
    out_dir: Path,
    eval_json: Path | None = None,
    per_family_csv: Path | None = None,
    clean_dir: Path | None = None,
    per_image_csv: Path | None = None,
) -> dict[str, Any]:
    """Compute the interpretation report and write it to ``out_dir``.

    Args:
        model: the restoration network (CPU or GPU; it is put in eval mode).
        bench_dir: the benchmark (``<suite>/<family>/recipes.jsonl``).
        spec: the degradation spec the model was trained with (families, ranges, held out).
        cfg: what to compute (``interpret`` section of ``params.yaml``).
        out_dir: written: ``index.html``, ``interpretation.json``, ``figures/*.png`` (stale
            PNGs in ``figures/`` are removed first).
        eval_json, per_family_csv: the evaluate stage's outputs; missing files make the
            sections that need them say "not available".
        clean_dir: the collect stage's folder, only used for the content category of
            benchmark records that lack one.
        per_image_csv: the evaluate stage's per-image rows (section 6 ranks all the model's
            images); missing, section 6 ranks the report's own images.

    Returns:
        Everything written to ``interpretation.json``: one key per section (``features``,
        ``lam``, ``sensitivity``, ``comparisons``, ``generalization``, ``cases``), ``meta``,
        ``config``,
        ``timings_s`` (wall clock) and ``cpu_s`` (CPU time of all threads) per step.

    Raises:
        FileNotFoundError, ValueError: no or malformed benchmark (see
            :func:`girml.evaluation.bench.scan_bench`); ValueError also for an unknown
            ``cfg.layer``.
    """
    clock = _Stopwatch()
    inputs = load_inputs(bench_dir, eval_json, per_family_csv, per_image_csv)
    model.eval()
    with clock.step("restore_and_features"):
        items = select_items(inputs.bench.items, cfg.images_per_group)
        categories = bench_categories(bench_dir, clean_dir)
        feats, samples = run_samples(model, inputs.bench, items, categories, cfg.layer)
    sections = _build_sections(model, inputs, spec, cfg, feats, samples, clock)
    clock.stop()
    meta = {
        "model": type(model).__name__,
        "layer": cfg.layer,
        "benchmark": str(bench_dir),
        "benchmark images used": len(samples),
        "eval.json": str(eval_json) if inputs.eval_metrics is not None else "not available",
        "per_family.csv": str(per_family_csv) if inputs.per_family is not None else "not available",
        "per_image.csv": str(per_image_csv) if inputs.per_image is not None else "not available",
        "seconds": round(clock.wall["total"], 1),
    }
    result = _json_safe(
        {
            "meta": meta,
            "config": cfg.model_dump(mode="json"),
            **{s.key: s.data for s in sections},
            "timings_s": clock.wall,
            "cpu_s": clock.cpu,
        }
    )
    write_report(Path(out_dir), sections, meta, result)
    return result


class _Stopwatch:
    """Wall-clock and CPU seconds per named step, and in total since creation.

    CPU seconds count every thread: the cost on a busy machine.
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._started = (time.perf_counter(), time.process_time())

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        tick, tick_cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = time.perf_counter() - tick
        self.cpu[name] = time.process_time() - tick_cpu

    def stop(self) -> None:
        self.wall["total"] = time.perf_counter() - self._started[0]
        self.cpu["total"] = time.process_time() - self._started[1]


def _build_sections(
    model: nn.Module,
    inputs: StageInputs,
    spec: DegradationsConfig,
    cfg: InterpretConfig,
    feats: np.ndarray,
    samples: Sequence[Sample],
    clock: _Stopwatch,
) -> list[Section]:
    """The six sections in page order, each timed as its own step."""
    eval_metrics, per_family = inputs.eval_metrics, inputs.per_family
    builders: list[tuple[str, Callable[[], Section]]] = [
        ("features", lambda: features_section(samples, feats, cfg)),
        ("lam", lambda: lam_section(model, samples, cfg)),
        (
            "sensitivity",
            lambda: sensitivity_section(model, inputs.bench, spec, cfg, eval_metrics, per_family),
        ),
        ("comparisons", lambda: comparisons_section(samples, cfg)),
        ("generalization", lambda: generalization_section(eval_metrics)),
        ("cases", lambda: cases_section(inputs.per_image, samples)),
    ]
    sections = []
    for name, build in builders:
        with clock.step(name):
            sections.append(build())
        log.info(
            "interpret: %s done in %.1f s (%.1f CPU s)", name, clock.wall[name], clock.cpu[name]
        )
    return sections


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None, numpy scalars and tuples as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(
    out_dir: Path, sections: Sequence[Section], meta: Mapping[str, Any], result: Any
) -> None:
    """Write the figures, ``interpretation.json`` and ``index.html`` to ``out_dir``.

    Args:
        out_dir: the report folder; stale PNGs in its ``figures/`` are removed first.
        sections: the report's sections (their figures and blocks).
        meta: facts about the run, shown at the top of the page.
        result: the JSON-safe content of ``interpretation.json``.
    """
    fig_dir = out_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in fig_dir.glob("*.png"):
        stale.unlink()
    for section in sections:
        for name, png in section.figures.items():
            with atomic_path(fig_dir / name) as tmp:
                tmp.write_bytes(png)
    write_text(out_dir / REPORT_JSON, json.dumps(result, indent=2, allow_nan=False) + "\n")
    write_text(out_dir / REPORT_HTML, render_html(sections, meta))


# --------------------------------------------------------------------------- MLflow


def summary_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Headline numbers of a report for MLflow: ``interpret.ch_*`` and ``interpret.di.<group>``
    (``+`` in a group name becomes ``_``)."""
    out: dict[str, float] = {}
    ch = result.get("features", {}).get("calinski_harabasz", {})
    for key, name in (("degradation", "ch_degradation"), ("content", "ch_content")):
        if isinstance(ch.get(key), int | float):
            out[f"interpret.{name}"] = float(ch[key])
    if isinstance(ch.get("ratio"), int | float):
        out["interpret.ch_ratio"] = float(ch["ratio"])
    for group, record in result.get("lam", {}).get("groups", {}).items():
        if isinstance(record.get("di"), int | float):
            out[f"interpret.di.{_METRIC_UNSAFE.sub('_', group)}"] = float(record["di"])
    return out


def log_report(out_dir: Path, run_id: str, project_root: Path = Path(".")) -> None:
    """Attach a written report to MLflow run ``run_id`` (the model's training run).

    The folder goes under the run's ``interpretation/`` artifacts and :func:`summary_metrics`
    of its ``interpretation.json`` are logged at step 0
    (:func:`girml.tracking.runs.log_to_run`). MLflow is imported only when this is called.

    Args:
        out_dir: a folder written by :func:`run_interpretation`.
        run_id: e.g. ``registered_model(models/latest).run_id``.
        project_root: where the default tracking store lives.
    """
    from girml.tracking.runs import log_to_run
    from girml.tracking.store import configure

    out_dir = Path(out_dir)
    result = json.loads((out_dir / REPORT_JSON).read_text(encoding="utf-8"))
    configure(project_root)
    log_to_run(
        run_id,
        metrics=summary_metrics(result),
        artifacts_dir=out_dir,
        artifact_path=ARTIFACT_PATH,
    )
