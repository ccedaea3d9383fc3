"""Data validation with Great Expectations (DVC stage ``validate``).

The library builds plain pandas tables from the manifests (one row per clean image, per pair, per
recipe step) and runs one expectation suite per table through a GX checkpoint. Every
expectation's outcome goes into ``result.json``, which :mod:`girml.data.validation_page` renders
as one self-contained page (GX's Data Docs load their styles and scripts from CDNs). Anything
that needs decoding an image (existence, channels, PSNR of LQ against GT) is computed here into
columns; the expectations themselves are GX's stock ones.

The benchmark's ``clean`` family is the one exception to "PSNR(LQ, GT) is finite and inside a
band": its LQ must be identical to its GT (PSNR infinite) and its recipe must have no step.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from girml.config import CLEAN_FAMILY, DegradationsConfig, ValidateConfig
from girml.config import held_categories as config_held_categories
from girml.core.imageio import ImageReadError, read_image, write_text
from girml.data.records import PairRecord, read_jsonl
from girml.data.validation_page import render_validation_page
from girml.degradations import Recipe, param_bounds
from girml.metrics import psnr

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_DEGRADED = f'family != "{CLEAN_FAMILY}"'  # GX row conditions (pandas query syntax)
_CLEAN = f'family == "{CLEAN_FAMILY}"'
_KEY_COLUMN = {"manifest": "id"}  # the column naming a row in failure reports; "pair" otherwise


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_data`: success, every expectation's outcome, the broken ones."""

    success: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    expectations: list[dict[str, Any]] = field(default_factory=list)
    page: Path | None = None

    def summary(self) -> str:
        """Readable multi-line summary, one line per broken expectation."""
        if self.success:
            return f"validation passed: {self.evaluated} expectations met"
        lines = [f"validation FAILED: {len(self.failures)} of {self.evaluated} expectations broken"]
        for f in self.failures:
            args = ", ".join(f"{k}={v}" for k, v in f["kwargs"].items())
            lines.append(
                f"  - [{f['table']}] {f['expectation']}({args}): "
                f"{f['unexpected_count']} unexpected, e.g. {f['examples']}"
            )
        return "\n".join(lines)


def _header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, channels) from the file header, or None if it cannot be opened."""
    try:
        with Image.open(path) as img:
            return img.width, img.height, len(img.getbands())
    except (OSError, ValueError):
        return None


def manifest_table(clean_dir: Path, check_decode: bool) -> pd.DataFrame:
    """One row per manifest entry, with what the image file really holds."""
    df = pd.read_csv(clean_dir / "manifest.csv", dtype={"id": str})
    rows = []
    for image_id in df["id"]:
        path = clean_dir / "images" / f"{image_id}.png"
        head = _header(path) if path.is_file() else None
        decodes = head is not None
        if decodes and check_decode:
            try:
                read_image(path)
            except ImageReadError:
                decodes = False
        rows.append(
            {
                "file_exists": path.is_file(),
                "decodes": decodes,
                "actual_width": head[0] if head else -1,
                "actual_height": head[1] if head else -1,
                "channels": head[2] if head else 0,
            }
        )
    return pd.concat([df, pd.DataFrame(rows, index=df.index)], axis=1)


def _pair_psnr(folder: Path, rec: PairRecord) -> tuple[bool, float]:
    """Whether both files decode, and PSNR(LQ, GT) in dB (LQ resized if it is smaller)."""
    try:
        gt = read_image(folder / rec.gt)
        lq = read_image(folder / rec.lq)
    except ImageReadError:
        return False, float("nan")
    if lq.shape != gt.shape:
        lq = np.asarray(Image.fromarray(lq).resize(gt.shape[1::-1], Image.Resampling.BICUBIC))
    return True, psnr(lq, gt)


def _pair_sources(pairs_dir: Path, bench_dir: Path) -> list[tuple[str, Path]]:
    """``(usage, jsonl)`` for the train and val pairs, then every bench folder in sorted order."""
    sources = [
        ("train", pairs_dir / "train" / "pairs.jsonl"),
        ("val", pairs_dir / "val" / "pairs.jsonl"),
    ]
    sources += [("bench", p) for p in sorted(bench_dir.glob("*/*/recipes.jsonl"))]
    return sources


def _pair_row(
    jsonl: Path,
    rec: PairRecord,
    split_of: dict[str, str],
    held_combos: list[set[str]],
    cfg: ValidateConfig,
) -> dict[str, Any]:
    """One pair-table row: provenance, decode and PSNR facts, and the family's PSNR band."""
    recipe = rec.recipe
    fams = set(recipe.families)
    ok, value = _pair_psnr(jsonl.parent, rec)
    band = cfg.psnr_band.get(rec.family, cfg.default_psnr_band)
    return {
        "pair": f"{jsonl.parent.relative_to(jsonl.parents[2])}/{rec.id}",
        "suite": rec.suite,
        "family": rec.family,
        "source_id": rec.source_id,
        "source_split": split_of.get(rec.source_id, "missing"),
        "category": rec.category,
        "decodes": ok,
        "psnr": value if math.isfinite(value) else None,
        "psnr_finite": math.isfinite(value),
        "identical": ok and value == math.inf,  # MSE 0: LQ equals GT exactly
        "steps": len(recipe.steps),
        "psnr_low": band[0],
        "psnr_high": band[1],
        "contains_held_combination": any(c <= fams for c in held_combos),
    }


def _step_rows(
    usage: str, pair: str, recipe: Recipe, spec: DegradationsConfig
) -> list[dict[str, Any]]:
    """One row per numeric parameter of each recipe step, with the spec's bounds for it."""
    rows = []
    for i, step in enumerate(recipe.steps):
        for name, val in step.params.items():
            if name == "seed" or isinstance(val, str | bool):
                continue
            bounds = param_bounds(spec, step.family, step.op, name, recipe.level)
            lo, hi = bounds if bounds is not None else (float("nan"), float("nan"))
            rows.append(
                {
                    "usage": usage,
                    "pair": pair,
                    "step": i,
                    "family": step.family,
                    "op": step.op,
                    "param": name,
                    "level": recipe.level,
                    "value": float(val),
                    "low": lo,
                    "high": hi,
                }
            )
    return rows


def pair_tables(
    pairs_dir: Path,
    bench_dir: Path,
    manifest: pd.DataFrame,
    spec: DegradationsConfig,
    cfg: ValidateConfig,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Per-usage pair tables (train, val, bench) and one table of every recipe step."""
    split_of = dict(zip(manifest["id"], manifest["split"], strict=True))
    held_combos = [set(c) for c in spec.held_out.combinations]
    tables: dict[str, list[dict]] = {"train": [], "val": [], "bench": []}
    steps: list[dict] = []
    for usage, jsonl in _pair_sources(pairs_dir, bench_dir):
        if not jsonl.is_file():
            raise FileNotFoundError(f"{jsonl}: missing; run `girml synthesize` first")
        for rec in read_jsonl(jsonl, PairRecord):
            row = _pair_row(jsonl, rec, split_of, held_combos, cfg)
            tables[usage].append(row)
            steps.extend(_step_rows(usage, row["pair"], rec.recipe, spec))
    frames = {k: pd.DataFrame(v) for k, v in tables.items()}
    return frames, pd.DataFrame(steps)


def _pair_common(degraded_only: bool = False) -> list[Any]:
    """Decode and PSNR-band checks every pair table shares.

    Fresh objects on each call (an expectation belongs to one suite).

    Args:
        degraded_only: the PSNR checks skip the ``clean`` family's rows.

    Returns:
        GX expectations.
    """
    import great_expectations.expectations as gxe

    where = {"row_condition": _DEGRADED, "condition_parser": "pandas"} if degraded_only else {}
    return [
        gxe.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="psnr_finite", value_set=[True], **where),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="psnr", column_B="psnr_low", or_equal=True, **where
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="psnr_high", column_B="psnr", or_equal=True, **where
        ),
    ]


def _manifest_suite(min_size: int) -> list[Any]:
    """Manifest checks: unique ids, known splits, and files that match their rows."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeInSet(column="file_exists", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="channels", value_set=[3]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="width", column_B="actual_width"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="height", column_B="actual_height"),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=min_size),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=min_size),
    ]


def _train_pairs_suite(held: list[str], held_categories: list[str]) -> list[Any]:
    """Train pairs: train-split sources only, nothing held out, then the common checks."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(column="source_split", value_set=["train"]),
        gxe.ExpectColumnValuesToNotBeInSet(column="category", value_set=held_categories),
        gxe.ExpectColumnValuesToNotBeInSet(column="family", value_set=held),
        gxe.ExpectColumnValuesToBeInSet(column="contains_held_combination", value_set=[False]),
        *_pair_common(),
    ]


def _val_pairs_suite(held_categories: list[str]) -> list[Any]:
    """Val pairs: val-split sources only, no held-out category, then the common checks."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(column="source_split", value_set=["val"]),
        gxe.ExpectColumnValuesToNotBeInSet(column="category", value_set=held_categories),
        *_pair_common(),
    ]


def _bench_pairs_suite(train_ids: list[str], val_ids: list[str]) -> list[Any]:
    """Bench pairs: no leakage from train or val, PSNR bands, and the clean family's rules."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="source_split",
            value_set=["test"],
            row_condition='suite != "unseen-content"',
            condition_parser="pandas",
        ),
        gxe.ExpectColumnValuesToNotBeInSet(column="source_id", value_set=train_ids),
        gxe.ExpectColumnValuesToNotBeInSet(column="source_id", value_set=val_ids),
        *_pair_common(degraded_only=True),
        # the clean family: input = ground truth (same pixels) and no degradation step
        gxe.ExpectColumnValuesToBeInSet(
            column="identical",
            value_set=[True],
            row_condition=_CLEAN,
            condition_parser="pandas",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="steps", value_set=[0], row_condition=_CLEAN, condition_parser="pandas"
        ),
    ]


def _train_steps_suite(held: list[str]) -> list[Any]:
    """Train recipe steps: in-distribution levels only, no held-out family."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeInSet(column="family", value_set=held),
        gxe.ExpectColumnValuesToBeInSet(column="level", value_set=["id"]),
    ]


def _recipe_steps_suite() -> list[Any]:
    """Every recipe step: each parameter value inside the spec's bounds for its level."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="low"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="value", column_B="low", or_equal=True
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="high", column_B="value", or_equal=True
        ),
    ]


def _suites(
    spec: DegradationsConfig,
    min_size: int,
    train_ids: list[str],
    val_ids: list[str],
    held_categories: list[str],
) -> dict[str, list[Any]]:
    """Expectation suites per table (GX is imported lazily: it is slow to import)."""
    held = list(spec.held_out.families)
    return {
        "manifest": _manifest_suite(min_size),
        "train_pairs": _train_pairs_suite(held, held_categories),
        "val_pairs": _val_pairs_suite(held_categories),
        "bench_pairs": _bench_pairs_suite(train_ids, val_ids),
        "train_steps": _train_steps_suite(held),
        "recipe_steps": _recipe_steps_suite(),
    }


def _checkpoint(context: Any, source: Any, name: str, expectations: list[Any]) -> Any:
    """Register table ``name``'s asset, suite and validation, and a checkpoint that reports
    failing rows by the table's key column."""
    import great_expectations as gx

    batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    return context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": [_KEY_COLUMN.get(name, "pair")],
            },
        )
    )


def _error(info: Any) -> str | None:
    """The exception message GX recorded for an expectation (flat or per metric), if any."""
    if not isinstance(info, dict):
        return None
    if info.get("exception_message"):
        return str(info["exception_message"])
    return next((m for v in info.values() if (m := _error(v))), None)


def _outcomes(name: str, checkpoint: Any, result: Any) -> list[dict[str, Any]]:
    """A JSON-safe record of each expectation one checkpoint run evaluated, in suite order."""
    suite = checkpoint.validation_definitions[0].suite
    rank = {e.id: i for i, e in enumerate(suite.expectations)}  # GX puts errors first
    records = []
    for run in result.run_results.values():
        for res in sorted(run.results, key=lambda r: rank.get(r.expectation_config.id, -1)):
            kwargs = {k: v for k, v in res.expectation_config.kwargs.items() if k != "batch_id"}
            error = _error(res.exception_info)
            records.append(
                {
                    "table": name,
                    "expectation": res.expectation_config.type,
                    "kwargs": _short(kwargs),
                    "success": bool(res.success),
                    "element_count": _short(res.result.get("element_count")),
                    "unexpected_count": _short(res.result.get("unexpected_count")),
                    "observed_value": _short(res.result.get("observed_value")),
                    "examples": _short(
                        res.result.get("partial_unexpected_index_list")
                        or res.result.get("partial_unexpected_list", [])
                    ),
                    **({"error": str(error)} if error and not res.success else {}),
                }
            )
    return records


def run_expectations(
    tables: dict[str, pd.DataFrame], suites: dict[str, list[Any]]
) -> ValidationReport:
    """Run each table's suite through a GX checkpoint (an in-memory GX context)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("girml")
    records: list[dict[str, Any]] = []
    for name, expectations in suites.items():
        checkpoint = _checkpoint(context, source, name, expectations)
        result = checkpoint.run(batch_parameters={"dataframe": tables[name]})
        records += _outcomes(name, checkpoint, result)
    failures = [r for r in records if not r["success"]]
    return ValidationReport(
        success=not failures, evaluated=len(records), failures=failures, expectations=records
    )


def _short(value: Any) -> Any:
    """JSON-safe, abbreviated copy (long value sets are cut to their first items)."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_short(v) for v in value[:8]]
        return [*items, f"... {len(value) - 8} more"] if len(value) > 8 else items
    if isinstance(value, np.generic):
        return value.item()
    return value


def validate_data(
    clean_dir: Path,
    pairs_dir: Path,
    bench_dir: Path,
    spec: DegradationsConfig,
    cfg: ValidateConfig,
    min_size: int,
    held_category: str | list[str] | None,
    out_dir: Path,
) -> ValidationReport:
    """Validate the clean set, the pairs and the benchmark recipes; write the report.

    Args:
        clean_dir: folder with ``manifest.csv`` and ``images/``.
        pairs_dir: folder with ``train/`` and ``val/`` pairs.
        bench_dir: folder with ``<suite>/<family>/recipes.jsonl``.
        spec: the degradation spec the recipes must respect.
        cfg: PSNR bands and decoding switch.
        min_size: the collect stage's minimum shorter side, pixels.
        held_category: the content category held out of training (``unseen-content``).
        out_dir: receives ``result.json`` (every expectation's outcome) and ``index.html``
            (the same as one self-contained page).

    Returns:
        The report; ``success`` is False when any expectation broke.
    """
    manifest = manifest_table(clean_dir, cfg.check_decode)
    pairs, steps = pair_tables(pairs_dir, bench_dir, manifest, spec, cfg)
    tables = {
        "manifest": manifest,
        "train_pairs": pairs["train"],
        "val_pairs": pairs["val"],
        "bench_pairs": pairs["bench"],
        "train_steps": steps[steps["usage"] == "train"],
        "recipe_steps": steps,
    }
    # leakage is judged on what training really used, not only on the manifest's labels
    train_ids = sorted(set(pairs["train"]["source_id"]))
    val_ids = sorted(set(pairs["val"]["source_id"]))
    held_categories = config_held_categories(held_category)
    suites = _suites(spec, min_size, train_ids, val_ids, held_categories)
    report = run_expectations(tables, suites)
    result = {
        "success": report.success,
        "evaluated_expectations": report.evaluated,
        "failed_expectations": len(report.failures),
        "rows": {name: len(df) for name, df in tables.items()},
        "failures": report.failures,
        "expectations": report.expectations,  # a list: `dvc metrics show` leaves it out
    }
    page = render_validation_page(result)
    write_text(out_dir / "result.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    write_text(out_dir / "index.html", page)
    report.page = out_dir / "index.html"
    log.info(report.summary())
    return report
