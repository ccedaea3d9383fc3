"""Stage ``protocols@<name>``: score the model, the degraded input and ``evaluate.methods`` on one
protocol (``protocols.run``), by the metric convention of the paper that defined it.

Reads the test sets of data/protocols/ (the ``testset`` stages), models/latest (restored as the
evaluate stage restores it: ``evaluate.tile`` and ``evaluate.self_ensemble``) and data/clean (the
NIQE reference, for photos without ground truth); writes metrics/protocols/<name>.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from girml.artifacts.loading import load_model
from girml.artifacts.store import load_model_dir
from girml.baselines import BASELINES
from girml.config import BUILTIN_PROTOCOLS, ProtocolSpec
from girml.core.imageio import write_text
from girml.core.paths import CLEAN_DIR, MODEL_DIR, PROTOCOL_DATA_DIR, PROTOCOL_METRICS_DIR
from girml.data.testsets import SET_FILE, PreparedSet, how_to_get, read_prepared
from girml.evaluation.methods import MethodError, load_methods
from girml.evaluation.protocol_inputs import build_rows
from girml.evaluation.protocols import INPUT_METHOD, MODEL_METHOD, run_protocol
from girml.evaluation.restorers import BatchRestoreFn, model_restorer, per_image
from girml.evaluation.scores import fit_pristine_niqe
from girml.stages.contract import Echo, StageFailed, StageParams


def protocol_of(reads: StageParams, name: str) -> ProtocolSpec:
    """``protocols.custom.<name>`` or the built-in protocol ``name``; StageFailed otherwise."""
    found = reads.value("protocols.custom").get(name) or BUILTIN_PROTOCOLS.get(name)
    if found is None:
        known = sorted({*BUILTIN_PROTOCOLS, *reads.value("protocols.custom")})
        raise StageFailed(f"{reads.path}: no protocol {name!r}; known: {known}")
    return found


def _sets(name: str, spec: ProtocolSpec) -> dict[str, PreparedSet | None]:
    """The protocol's test sets as the testset stages wrote them (None: an optional one absent)."""
    sets: dict[str, PreparedSet | None] = {}
    for task in spec.tasks:
        folder = PROTOCOL_DATA_DIR / task.set
        if (folder / SET_FILE).is_file():
            sets[task.set] = read_prepared(folder)
        elif task.optional:
            sets[task.set] = None
        else:
            raise StageFailed(
                f"protocol {name} needs test set {task.set}, but {folder}/{SET_FILE} is missing: "
                f"list it under protocols.sets and run `dvc repro testset@{task.set}`. "
                + how_to_get(task.set)
            )
    return sets


def _finite(value: Any) -> Any:
    """``value`` with every NaN (an undefined mean) turned into None, for strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(params: Path, name: str, echo: Echo) -> None:
    """Score protocol ``name``; write metrics/protocols/<name>.json."""
    reads = StageParams(params, "protocols", key=name)
    spec = protocol_of(reads, name)
    tile, ensemble = reads.value("evaluate.tile"), reads.value("evaluate.self_ensemble")
    methods = reads.value("evaluate.methods")
    patch = reads.value("evaluate.niqe_patch_size")
    try:
        rows, skipped = build_rows(spec, _sets(name, spec), reads.section("degradations"))
        restorers: dict[str, BatchRestoreFn] = {
            MODEL_METHOD: per_image(model_restorer(load_model_dir(MODEL_DIR), tile, ensemble)),
            INPUT_METHOD: per_image(BASELINES.get(INPUT_METHOD)),
            **load_methods(methods, tile, Path.cwd(), load_model),
        }
        result = run_protocol(
            name,
            spec,
            rows,
            restorers,
            outside=[method.name for method in methods],
            niqe=lambda: fit_pristine_niqe(CLEAN_DIR, patch),
        )
    except MethodError as exc:  # an outside method: one line naming it, and its exit code
        raise StageFailed(str(exc), exc.code) from None
    except ValueError as exc:  # a set that cannot give a row's inputs, an unknown convention
        raise StageFailed(f"protocol {name}: {exc}") from None
    result.update(skipped=skipped, model=str(MODEL_DIR))
    out = PROTOCOL_METRICS_DIR / f"{name}.json"
    write_text(out, json.dumps(_finite(result), indent=2) + "\n")
    for row, entry in {**result["sets"], **result["no_reference"]}.items():
        scores = entry["methods"][MODEL_METHOD]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if k != "n" and v == v)
        echo(f"protocol {name}: {row} ({entry['n']} images): model {shown}")
    echo(f"protocol {name}: wrote {out}")
