"""MLflow adapter: tracking store, experiments, runs, params/metrics/curves and the model registry.

Contract (DESIGN.md):

- Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project root>/mlflow.db``.
  With a SQLite store, experiments are created with their artifacts in ``mlartifacts/`` next to
  the database file (``<project root>/mlartifacts`` by default), never in a ``./mlruns`` that
  depends on the working directory.
- Registered model :data:`REGISTERED_MODEL` with aliases :data:`CHAMPION` and
  :data:`CHALLENGER` (stages are deprecated in MLflow 3).
- Runs carry :func:`provenance_tags`: git commit, DVC output hashes and the params hash.
- Nothing here reaches the network: :func:`configure` turns MLflow telemetry off (unless the
  user opted in through ``MLFLOW_DISABLE_TELEMETRY``) and async logging off, and models are
  logged with explicit pip requirements so MLflow never infers them.

Registered versions are weights plus config: the run's ``model`` artifact is an MLflow pyfunc
model whose ``model`` artifact is a model folder (``weights.pt`` + ``config.yaml``, see
:mod:`girml.models.store`) and whose code is :mod:`girml.tracking.restorer_model` (MLflow's
models from code). Loading rebuilds the network with ``build_model(config)``; nothing is
unpickled. Versions registered before that (MLflow's ``pytorch`` flavour, a pickled module) are
refused by :func:`load_logged_model` (:class:`~girml.errors.UnsafeModelError`): unpickling runs
whatever code the file holds. ``girml convert-model`` (:mod:`girml.models.convert`) turns one
that the user trusts into a model folder, once. (MLflow's ``pt2`` format is no option: an
exported graph is specialised to the example's batch size and to H, W multiples of the padding
multiple, and MLflow loads it with ``weights_only=False`` too.)
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import math
import os
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import psutil
import torch
import yaml
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.telemetry import set_telemetry_client
from mlflow.types.schema import Schema, TensorSpec
from pydantic import BaseModel
from torch import nn

import girml
from girml.config import ModelConfig
from girml.tracking.runs import SUPPRESS_URL_PRINT, TrackedRun

log = logging.getLogger(__name__)

REGISTERED_MODEL = "gir-restorer"
CHAMPION = "champion"
CHALLENGER = "challenger"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
ARTIFACT_ROOT_ENV = "GIRML_ARTIFACT_ROOT"  # artifact root for new experiments (e.g. s3://...)
PARAM_VALUE_LIMIT = 500  # the historical MLflow limit; servers older than 2.x still enforce it
# registered versions: a pyfunc from code (MODEL_CODE) whose MODEL_ARTIFACT is a model folder
MODEL_FORMAT = "girml-weights-config"
MODEL_ARTIFACT = "model"
MODEL_CODE = Path(__file__).with_name("restorer_model.py")
_PIP_REQUIREMENTS = [
    f"torch=={torch.__version__.split('+')[0]}",
    f"numpy=={np.__version__}",
    "pyyaml",
]
_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
# MLflow's own retries of HTTP requests to a tracking server (mlflow/environment_variables.py;
# its defaults: 7 retries, backoff factor 2, 120 s timeout), set by configure() when unset.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


# --------------------------------------------------------------------------- store


def tracking_uri(project_root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set and not empty, else ``sqlite:///<root>/mlflow.db``.

    Note that :func:`configure` exports the URI it sets as ``MLFLOW_TRACKING_URI`` (MLflow does
    so for subprocesses), so within one process the first configured store wins.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root.resolve() / DB_FILE}"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI; None for other stores or in-memory SQLite."""
    prefix = "sqlite:///"
    path = unquote(uri[len(prefix) :].split("?", 1)[0]) if uri.startswith(prefix) else ""
    return Path(path) if path and path != ":memory:" else None


def configure(project_root: Path) -> str:
    """Point MLflow at the project's tracking store, offline; returns the tracking URI.

    Sets MLflow's global tracking URI, ``MLFLOW_ENABLE_ASYNC_LOGGING=false``, MLflow's own
    "View run" print off (it shows the URI's password; :mod:`girml.tracking.runs` logs masked
    links instead) and, unless the user set them, ``MLFLOW_DISABLE_TELEMETRY=true`` and
    :data:`HTTP_DEFAULTS` (a tracking server that is down fails in seconds, not after MLflow's 7
    retries with backoff). Creates the SQLite file's folder if needed.
    """
    os.environ.update({"MLFLOW_ENABLE_ASYNC_LOGGING": "false", SUPPRESS_URL_PRINT: "true"})
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        set_telemetry_client()  # MLflow built its client at import; this re-reads the variable
    uri = tracking_uri(project_root)
    db = _sqlite_file(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, project_root: Path) -> str:
    """Return the id of experiment ``name``, creating (or restoring a deleted) one if needed.

    Configures the store first (:func:`configure`). A new experiment gets
    ``artifact_location`` = ``$GIRML_ARTIFACT_ROOT/<name>`` when that variable is set (e.g.
    ``s3://bucket/mlflow``, with ``MLFLOW_S3_ENDPOINT_URL`` for a non-AWS endpoint), else on a
    SQLite store ``<database folder>/mlartifacts`` as a ``file://`` URI; a tracking server
    otherwise chooses its own artifact location.
    """
    uri = configure(project_root)
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    db = _sqlite_file(uri)
    root = os.environ.get(ARTIFACT_ROOT_ENV)
    if root:  # e.g. s3://bucket/mlflow, with MLFLOW_S3_ENDPOINT_URL for a non-AWS endpoint
        location = f"{root.rstrip('/')}/{name}"
    elif db is not None:
        location = (db.resolve().parent / ARTIFACTS_DIR).as_uri()
    else:
        location = None
    return str(client.create_experiment(name, artifact_location=location))


def start_run(
    experiment: str,
    project_root: Path,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    log_system_metrics: bool = True,
    nested: bool = False,
) -> mlflow.ActiveRun:
    """Start a run in ``experiment`` (created if needed); use it as a context manager.

    The run ends when the ``with`` block does: FINISHED, FAILED if the block raised, KILLED if
    it was left by Ctrl-C or a signal turned into ``SystemExit`` (``girml.process``). The run
    records its process (PID, host, start time) as tags, and runs of the experiment left
    RUNNING by a process that is gone are first closed as KILLED (:func:`close_stale_runs`).

    Args:
        experiment: experiment name.
        project_root: where the default tracking store lives (see :func:`tracking_uri`).
        run_name: display name; MLflow picks one when None.
        tags: e.g. ``provenance_tags(...)`` plus the stage name.
        log_system_metrics: sample CPU/RAM/disk (psutil) into ``system/*`` metrics.
        nested: start a child of the active run (e.g. one tuning trial).

    Returns:
        MLflow's ``ActiveRun``; ``run.info.run_id`` identifies it.
    """
    experiment_id = ensure_experiment(experiment, project_root)
    closed = close_stale_runs(experiment_id)
    if closed:
        log.warning(
            "closed %d run(s) left RUNNING by a process that is gone, as KILLED: %s",
            len(closed),
            ", ".join(closed),
        )
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags={**dict(tags or {}), **_process_tags()},
        nested=nested,
        log_system_metrics=log_system_metrics,
    )
    return TrackedRun(run)


# Tags that name the process behind a run, so that a later start can tell a dead run from a
# live one (see close_stale_runs).
PID_TAG = "girml.pid"
HOST_TAG = "girml.host"
PID_STARTED_TAG = "girml.pid_started"  # the process's creation time (epoch seconds)
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI


def _process_tags() -> dict[str, str]:
    me = psutil.Process()
    return {
        PID_TAG: str(me.pid),
        HOST_TAG: socket.gethostname(),
        PID_STARTED_TAG: f"{me.create_time():.2f}",
    }


def _process_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` runs and, when ``started`` is known, is the same process (not a reuse)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's live process
        return True


def close_stale_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment_id`` whose process on this host is gone.

    A run started by :func:`start_run` records its PID, host and process start time as tags; a
    process killed by ``kill -9`` (or a crash of the interpreter) cannot end its run, which stays
    RUNNING forever. Such a run is closed here with a note in its description. Runs of other
    hosts, runs without these tags and runs whose process still lives are left alone.

    Returns:
        The ids of the runs closed.
    """
    client = MlflowClient()
    host = socket.gethostname()
    closed = []
    stale = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    for run in stale:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit():
            continue
        try:
            started: float | None = float(tags.get(PID_STARTED_TAG, ""))
        except ValueError:
            started = None
        if _process_alive(int(pid), started):
            continue
        note = (
            f"Closed as KILLED by girml on {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: "
            f"the process that ran it (PID {pid} on {host}) had ended without closing it "
            "(killed with -9, out of memory, or a crash)."
        )
        previous = tags.get(NOTE_TAG)
        client.set_tag(run.info.run_id, NOTE_TAG, f"{previous}\n\n{note}" if previous else note)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        closed.append(run.info.run_id)
    return closed


# --------------------------------------------------------------------------- params and metrics


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else None
    if text is None:
        plain = isinstance(value, list | tuple | Mapping)
        text = json.dumps(value, default=str) if plain else str(value)
    if len(text) > PARAM_VALUE_LIMIT:
        text = text[: PARAM_VALUE_LIMIT - 3] + "..."
    return text


def flatten_params(params: Mapping[str, Any] | BaseModel, prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings (and pydantic configs) to ``{"a.b.c": "value"}`` strings.

    Lists become JSON; every value is cut to :data:`PARAM_VALUE_LIMIT` characters (ending in
    ``...`` when cut).
    """
    if isinstance(params, BaseModel):
        params = params.model_dump(mode="json")
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = _param_value(value)
    return flat


def log_params_flat(params: Mapping[str, Any] | BaseModel) -> dict[str, str]:
    """Log :func:`flatten_params` of ``params`` to the active run; returns what was logged."""
    flat = flatten_params(params)
    mlflow.log_params(flat)
    return flat


def log_metrics(step: int, metrics: Mapping[str, float]) -> None:
    """Log scalar ``metrics`` (names may contain dots and slashes) at ``step`` >= 0."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    mlflow.log_metrics({name: float(value) for name, value in metrics.items()}, step=step)


def _check_artifact_name(path_name: str) -> PurePosixPath:
    path = PurePosixPath(path_name)
    if not path_name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"path_name must be a relative artifact path, got {path_name!r}")
    return path


def log_curves(history: Sequence[Mapping[str, float]], path_name: str, x_key: str = "step") -> None:
    """Log a metric history as ``<path_name>.csv`` and a ``<path_name>.png`` plot (artifacts).

    Rows may have different metrics (e.g. validation every N steps); missing cells are empty in
    the CSV and skipped in the plot, which has one panel per metric against ``x_key``.

    Args:
        history: rows like ``{"step": 100, "loss": 0.05, "val/psnr": 27.1}``.
        path_name: artifact path without suffix, e.g. ``"curves/train"``.
        x_key: the column every row must have, used as the x axis.
    """
    artifact = _check_artifact_name(path_name)
    if not history:
        raise ValueError("history is empty")
    columns = [x_key]
    for i, row in enumerate(history):
        if x_key not in row:
            raise ValueError(f"history[{i}] has no {x_key!r}: {dict(row)}")
        columns.extend(key for key in row if key not in columns)
    metrics = columns[1:]
    with tempfile.TemporaryDirectory(prefix="girml-curves-") as tmp:
        csv_path = Path(tmp) / f"{artifact.name}.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)

        ncols = min(3, max(1, len(metrics)))
        nrows = max(1, math.ceil(len(metrics) / ncols))
        fig = Figure(figsize=(4.5 * ncols, 3.2 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            points = [(row[x_key], row[metric]) for row in history if metric in row]
            ax.plot(*zip(*points, strict=True), marker="." if len(points) < 50 else None)
            ax.set_title(metric)
            ax.set_xlabel(x_key)
            ax.grid(alpha=0.3)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        png_path = csv_path.with_suffix(".png")
        fig.savefig(png_path, dpi=100)  # Figure without pyplot renders with Agg

        folder = str(artifact.parent) if str(artifact.parent) != "." else None
        mlflow.log_artifact(str(csv_path), artifact_path=folder)
        mlflow.log_artifact(str(png_path), artifact_path=folder)


# --------------------------------------------------------------------------- models


def _any_size(signature: ModelSignature) -> ModelSignature:
    """Free the batch, height and width of (B,C,H,W) tensor specs: the networks take any size."""

    def free(schema: Schema) -> Schema:
        return Schema([TensorSpec(s.type, (-1, s.shape[1], -1, -1), s.name) for s in schema.inputs])

    return ModelSignature(inputs=free(signature.inputs), outputs=free(signature.outputs))


def log_and_register_model(
    model: nn.Module,
    input_example: np.ndarray,
    *,
    model_cfg: ModelConfig,
    registered_name: str = REGISTERED_MODEL,
    artifact_name: str = "model",
) -> int:
    """Log ``model`` to the active run as weights plus config and register it as a new version.

    The logged model is a pyfunc (:mod:`girml.tracking.restorer_model`) holding the model folder
    :func:`girml.models.store.save_model_dir` writes, with a tensor signature inferred from
    ``input_example`` and the model's output on it, relaxed to (-1,3,-1,-1) since the networks
    accept any size. Loading it back needs the ``girml`` package importable (its version is
    stored in the model's metadata).

    Args:
        model: restoration network built from ``model_cfg``, on any device; not modified.
        input_example: (1,3,H,W) float32 in [0,1]; keep it small (it is stored as JSON).
        model_cfg: the architecture config ``build_model`` rebuilds the network from.
        registered_name: registered model name.
        artifact_name: name of the logged model within the run.

    Returns:
        The new version number.
    """
    from girml.models.store import save_model_dir

    if input_example.ndim != 4 or input_example.shape[:2] != (1, 3):
        raise ValueError(f"input_example must be (1,3,H,W), got shape {input_example.shape}")
    if input_example.dtype != np.float32:
        raise ValueError(f"input_example must be float32, got {input_example.dtype}")
    if mlflow.active_run() is None:
        raise RuntimeError("log_and_register_model needs an active run (see start_run)")
    cpu_model = copy.deepcopy(model).cpu().eval()
    with torch.inference_mode():
        output = cpu_model(torch.from_numpy(input_example)).clamp(0, 1).numpy()
    with tempfile.TemporaryDirectory(prefix="girml-log-model-") as tmp:
        folder = save_model_dir(cpu_model, model_cfg, Path(tmp) / MODEL_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=artifact_name,
            python_model=str(MODEL_CODE),
            artifacts={MODEL_ARTIFACT: str(folder)},
            signature=_any_size(infer_signature(input_example, output)),
            input_example=input_example,
            registered_model_name=registered_name,
            pip_requirements=_PIP_REQUIREMENTS,
            metadata={"girml_version": girml.__version__, "format": MODEL_FORMAT},
        )
    return int(info.registered_model_version)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point ``models:/<name>@<alias>`` at ``version`` (moving it if it pointed elsewhere)."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def get_alias_version(name: str, alias: str) -> int | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise


def alias_uri(
    project_root: Path, name: str = REGISTERED_MODEL, alias: str = CHAMPION
) -> str | None:
    """``models:/<name>@<alias>`` when the project's registry has that alias, else None.

    A SQLite store whose file does not exist is not created just to look.
    """
    db = _sqlite_file(tracking_uri(project_root))
    if db is not None and not db.is_file():
        return None
    configure(project_root)
    return f"models:/{name}@{alias}" if get_alias_version(name, alias) is not None else None


def store_exists(project_root: Path) -> bool:
    """False only for a SQLite store whose file does not exist (nothing is created to look)."""
    db = _sqlite_file(tracking_uri(project_root))
    return db is None or db.is_file()


def model_version_of(uri: str) -> tuple[int, str] | None:
    """``(version, run id)`` behind ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

    Returns None for other URIs (``runs:/...``, ``models:/<model id>``) and for a version or
    alias the registry does not have. The store must be configured (:func:`configure`).
    """
    if not uri.startswith("models:/"):
        return None
    ref = uri[len("models:/") :].strip("/")
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        elif ref.count("/") == 1 and ref.rsplit("/", 1)[1].isdigit():
            name, version = ref.rsplit("/", 1)
            found = client.get_model_version(name, version)
        else:
            return None
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise
    return int(found.version), str(found.run_id)


def load_logged_model(uri: str) -> nn.Module:
    """Load a model logged by :func:`log_and_register_model`, on the CPU, in eval mode.

    The version's model folder is read directly (``weights.pt`` with torch's weights-only
    unpickler, ``config.yaml`` with ``safe_load``) and the network rebuilt from its config; the
    pyfunc's code file is not run. Nothing is unpickled.

    Args:
        uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/<id>/<name>``,
            ``models:/<model id>`` or a local MLflow model folder.

    Raises:
        ValueError: the URI does not resolve to a loadable model (the message names it).
        girml.errors.UnsafeModelError: a pickled model (MLflow's ``pytorch`` flavour, or a
            ``weights.pt`` holding Python objects): one line naming ``uri`` and how to convert it.
    """
    if (Path(uri) / "MLmodel").is_file():  # a local MLflow model: read in place
        return _load_mlmodel(Path(uri), uri)
    # a refusal or an error is one line, not under MLflow's download progress bars
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="girml-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (MlflowException, OSError) as exc:
            message = exc.message if isinstance(exc, MlflowException) else str(exc)
            raise ValueError(f"cannot load model {uri}: {message}") from None
        return _load_mlmodel(local, uri)


def _load_mlmodel(local: Path, uri: str) -> nn.Module:
    """The network of MLflow model folder ``local`` (``uri`` names it in errors)."""
    from girml.errors import UnsafeModelError
    from girml.models.store import load_model_dir

    flavors = model_flavors(local, uri)
    artifacts = flavors.get("python_function", {}).get("artifacts", {})
    if MODEL_ARTIFACT in artifacts:
        try:
            return load_model_dir(local / artifacts[MODEL_ARTIFACT]["path"])
        except UnsafeModelError as exc:  # it named the folder inside
            raise UnsafeModelError(uri, exc.what) from None
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"cannot load model {uri}: {exc}") from None
    if "pytorch" in flavors:
        raise UnsafeModelError(uri, pickled_flavor(flavors["pytorch"]))
    raise ValueError(f"{uri}: neither a girml model folder nor a pytorch model ({sorted(flavors)})")


def pickled_flavor(pytorch_flavor: Mapping[str, Any]) -> str:
    """What an ``MLmodel`` file's ``pytorch`` flavour holds, for ``UnsafeModelError``."""
    form = pytorch_flavor.get("serialization_format") or "pickle"
    data = pytorch_flavor.get("model_data", "data")
    return f"a pickled PyTorch model (MLflow's pytorch flavour, {form} format in {data}/)"


def model_flavors(local: Path, uri: str) -> dict[str, Any]:
    """The ``flavors`` of the ``MLmodel`` file in (downloaded) model folder ``local``.

    Raises:
        ValueError: no ``MLmodel`` file, or one that lists no flavors (names ``uri``).
    """
    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise ValueError(f"cannot load model {uri}: no MLmodel file in it")
    flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors")
    if not isinstance(flavors, dict):
        raise ValueError(f"cannot load model {uri}: its MLmodel file lists no flavors")
    return flavors


# --------------------------------------------------------------------------- provenance


def _git(root: Path, *args: str) -> str | None:
    """``git <args>`` output in ``root`` (stripped), or None outside git / without git."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def dvc_output_hashes(lock_path: Path) -> dict[str, str]:
    """``{"dvc.<out path>": md5}`` for every stage output recorded in ``dvc.lock``.

    Returns an empty dict when the file does not exist (no stage has run yet).

    Raises:
        ValueError: the file is not valid YAML or not shaped like a ``dvc.lock``.
    """
    if not lock_path.is_file():
        return {}
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
        stages = lock.get("stages", {})
        return {
            f"dvc.{out['path']}": str(out["md5"])
            for stage in stages.values()
            for out in (stage or {}).get("outs", [])
            if "md5" in out
        }
    except yaml.YAMLError as exc:
        raise ValueError(f"{lock_path}: not valid YAML ({exc})") from None
    except (AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"{lock_path}: unexpected dvc.lock structure ({exc!r})") from None


def provenance_tags(project_root: Path, params_path: Path) -> dict[str, str]:
    """Run tags that pin what produced a run (never environment variables or credentials).

    Args:
        project_root: the git work tree holding ``dvc.lock``.
        params_path: the params file; relative paths are taken from ``project_root``.

    Returns:
        ``git_commit`` (``"unknown"`` outside git or before the first commit), ``git_dirty``
        (``"true"``/``"false"``, counting untracked files; ``"unknown"`` outside git),
        ``dvc.<out path>`` = md5 of each output in ``dvc.lock``, and ``params_hash`` (first 16
        hex digits of the params file's sha256).
    """
    params_file = params_path if params_path.is_absolute() else project_root / params_path
    if not params_file.is_file():
        raise FileNotFoundError(f"params file {params_file} not found")
    status = _git(project_root, "status", "--porcelain")
    return {
        "git_commit": _git(project_root, "rev-parse", "HEAD") or "unknown",
        "git_dirty": "unknown" if status is None else str(bool(status)).lower(),
        **dvc_output_hashes(project_root / "dvc.lock"),
        "params_hash": hashlib.sha256(params_file.read_bytes()).hexdigest()[:16],
    }


@dataclass(frozen=True)
class RunRecord:
    """What a finished run recorded: tags, params and the last value of each metric."""

    run_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def run_record(run_id: str) -> RunRecord:
    """Tags, params and latest metrics of run ``run_id`` (the store must be configured).

    Raises:
        ValueError: the store has no such run (the message names it).
    """
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise ValueError(f"MLflow run {run_id}: {exc.message}") from None
    data = run.data
    return RunRecord(run_id, dict(data.tags), dict(data.params), dict(data.metrics))
