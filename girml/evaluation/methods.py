"""Outside restorers (``evaluate.methods``): scored by the harness like the model and baselines.

Each :class:`~girml.config.MethodSpec` names one method and one source:

- ``command``: a program that restores a folder. Per run, the method's degraded inputs (one
  (suite, family) at a time, or all at once with ``batch: all``) are written as PNGs into a
  temporary folder that replaces ``{in}``; ``{out}`` is an empty folder where the program must
  write ``<same file name>`` for each input. The command is split like a shell would
  (:func:`shlex.split`) but runs without one, in the project root, for at most ``timeout_s``.
- ``mlflow``: a registered model (``models:/name@alias``, ``models:/name/3``, ``runs:/...``),
  loaded by the caller's model loader (the evaluate stage passes
  :func:`girml.artifacts.loading.load_model`) and run like the model (``evaluate.tile``).
- ``python``: ``package.module:function``, imported. ``kind: restorer`` (the default): the
  function is the restorer, (H,W,3) uint8 -> (H,W,3) uint8. ``kind: module_factory``: the
  function is called once without arguments and returns a torch ``nn.Module``, run like the
  model. An explicit field, not a guess from the signature: a restorer with a default
  argument and a factory look alike.

Failures. What makes a whole method unusable raises :class:`MethodError`, one line naming the
method and what failed: an unimportable function, an unloadable model, a program that cannot
start, times out or exits non-zero (the line ends with the last line of its stderr; the rest is
logged at debug level), or no image scored at all. :func:`load_methods` first runs each method
once on the bench's first image (:func:`check_method`), so a broken method fails in seconds,
before anything is scored. After that, a failure on one image (the function raised, the program
wrote no readable file, or an output of the wrong shape or type) is recorded for that image and
the other images are scored: the image has no row in ``per_image.csv`` and ``eval.json`` lists
it under ``methods.<name>.errors`` (one ``"<suite>/<family>/<id>: <reason>"`` per image), with
the count in ``methods.<name>.failed``.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from girml.config import EvaluateConfig, MethodSpec
from girml.core.errors import EX_BAD_INPUT
from girml.core.imageio import ImageReadError, read_image, write_png
from girml.evaluation.bench import Bench, BenchItem
from girml.evaluation.harness import MethodRows, evaluate_batches
from girml.evaluation.restorers import (
    BatchRestoreFn,
    ModelLoader,
    model_restorer,
    per_image,
    usable_output,
)
from girml.metrics import LpipsMetric, NiqeModel
from girml.tracking.store import configure

log = logging.getLogger(__name__)

# the end of a failed program's stderr logged (at debug level) when it fails
STDERR_TAIL_CHARS = 2000


class MethodError(RuntimeError):
    """An outside method cannot be evaluated at all: one line that names it and what failed.

    Attributes:
        code: the exit code for the command line: :data:`girml.core.errors.EX_BAD_INPUT` (2) when
            ``evaluate.methods`` names something that is not there or cannot start (a module,
            a function, a model, a program), 1 when the method ran and failed.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _first_line(exc: BaseException) -> str:
    """``"<Type>: <first line of the message>"``, or the type alone."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def load_methods(
    specs: Sequence[MethodSpec],
    tile: int | None,
    project_root: Path,
    load_model: ModelLoader,
    bench: Bench | None = None,
) -> dict[str, BatchRestoreFn]:
    """Every method's batch restorer, by name: functions imported, models loaded, now.

    Args:
        specs: ``evaluate.methods``.
        tile: ``evaluate.tile``, for models (None: whole-image inference).
        project_root: the command's working folder and the home of the default MLflow store
            (configured with :func:`girml.tracking.store.configure` when a spec needs it).
        load_model: loads an ``mlflow`` method's model by URI, on the CPU in eval mode
            (:func:`girml.artifacts.loading.load_model`).
        bench: when given, each method is tried on its first image (:func:`check_method`).

    Returns:
        ``{name: restorer}`` in ``specs`` order, for :func:`evaluate_outside`.

    Raises:
        MethodError: a function that cannot be imported or is no callable, a factory that
            returns no ``nn.Module``, a model that cannot be loaded; with ``bench``, a method
            that fails on its first image.
    """
    if any(spec.mlflow is not None for spec in specs):
        configure(project_root)
    restorers = {}
    for spec in specs:
        restorers[spec.name] = load_method(spec, tile, project_root, load_model)
        if bench is not None:
            check_method(spec.name, restorers[spec.name], bench)
    return restorers


def check_method(name: str, restore_batch: BatchRestoreFn, bench: Bench) -> None:
    """Run a method on the bench's first image, before anything is scored.

    A program that exits non-zero, hangs past its ``timeout_s`` or writes nothing, or a function
    that raises, then fails in the time one image takes, not after the model, the baselines and
    the other methods were scored. (A method that fails on that image alone fails as a whole.)

    Raises:
        MethodError: one line naming the method, the image and the reason.
    """
    if not bench.items:
        return
    item = bench.items[0]
    lq, _ = bench.load(item)
    outcomes = restore_batch([item], [lq])
    out = usable_output(outcomes[0], lq, name, item.lq) if outcomes else None
    if out is None or isinstance(out, Exception):
        reason = "no output" if out is None else _first_line(out)
        where = f"{item.suite}/{item.family}/{item.id}"
        raise MethodError(f"method {name!r} failed on {where}, tried before scoring: {reason}")


def load_method(
    spec: MethodSpec, tile: int | None, project_root: Path, load_model: ModelLoader
) -> BatchRestoreFn:
    """One method's batch restorer (see :func:`load_methods`)."""
    if spec.command is not None:
        return command_restorer(spec.name, spec.command, project_root, spec.timeout_s)
    if spec.mlflow is not None:
        try:
            model = load_model(spec.mlflow)
        except (OSError, ValueError) as exc:
            message = f"method {spec.name!r}: cannot load {spec.mlflow}: {_first_line(exc)}"
            raise MethodError(message, EX_BAD_INPUT) from exc
        return per_image(model_restorer(model, tile))
    assert spec.python is not None  # MethodSpec holds exactly one source
    function = import_function(spec.name, spec.python)
    if spec.kind == "restorer":
        return per_image(function)
    module = function()
    if not isinstance(module, nn.Module):
        raise MethodError(
            f"method {spec.name!r}: {spec.python}() returned {type(module).__name__}, "
            "expected a torch nn.Module (kind: module_factory)",
            EX_BAD_INPUT,
        )
    return per_image(model_restorer(module.eval(), tile))


def import_function(name: str, target: str) -> Callable[..., Any]:
    """The callable ``package.module:function`` names.

    Raises:
        MethodError: the module cannot be imported (not found, or its code raised), lacks the
            attribute, or it is no callable.
    """
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    # Importing runs the module's code, which may raise anything: one line, not a traceback.
    except Exception as exc:
        message = f"method {name!r}: cannot import {module_name!r}: {_first_line(exc)}"
        raise MethodError(message, EX_BAD_INPUT) from exc
    function = getattr(module, attr, None)
    if not callable(function):
        found = "not found" if function is None else f"a {type(function).__name__}"
        message = f"method {name!r}: {target} is {found}, expected a callable"
        raise MethodError(message, EX_BAD_INPUT)
    return function


def command_restorer(
    name: str, command: str, cwd: Path, timeout_s: float | None = None
) -> BatchRestoreFn:
    """A batch restorer that runs ``command`` once per batch over a folder of PNGs.

    Args:
        name: the method, for messages.
        command: the program and its arguments; ``{in}`` and ``{out}`` in any argument are
            replaced by the input and output folders.
        cwd: where the program runs.
        timeout_s: seconds one run may take (None: no limit).

    Returns:
        ``fn(items, lqs)``: per input, the pixels of ``{out}/<its file name>``, or the
        :class:`~girml.core.imageio.ImageReadError` saying why there are none.

    Raises:
        MethodError: (when called) the program cannot start, times out or exits non-zero.
    """
    argv = shlex.split(command)

    def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        with tempfile.TemporaryDirectory(prefix=f"girml-{name}-") as tmp:
            in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
            in_dir.mkdir()
            out_dir.mkdir()
            names = [input_name(index, item) for index, item in enumerate(items)]
            for file_name, lq in zip(names, lqs, strict=True):
                write_png(in_dir / file_name, lq)
            args = [arg.replace("{in}", str(in_dir)).replace("{out}", str(out_dir)) for arg in argv]
            _run(name, args, cwd, timeout_s, shown=command)
            return [_read_output(out_dir / file_name) for file_name in names]

    return restore


def input_name(index: int, item: BenchItem) -> str:
    """The PNG file name of the ``index``-th input of a batch: ``00003_<id>.png``.

    The index keeps names unique when a batch spans families or real photos share a name;
    characters other than letters, digits, ``.``, ``_``, ``-`` in the id become ``_``.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(item.id).with_suffix("").as_posix())
    return f"{index:05d}_{stem}.png"


def _run(name: str, args: list[str], cwd: Path, timeout_s: float | None, shown: str) -> None:
    """Run a method's program; raise :class:`MethodError` unless it exits 0 in time.

    The program gets a session of its own, so that a timeout (or an exception here, such as
    :class:`~girml.core.process.Terminated`) ends it with every process it started: a leftover child
    holding its output pipes would otherwise keep this call waiting. ``shown`` is the command
    as ``evaluate.methods`` gives it (``{in}``, ``{out}``), for messages.
    """
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise MethodError(f"method {name!r}: cannot run `{shown}`: {exc}", EX_BAD_INPUT) from None
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        message = f"method {name!r}: `{shown}` ran past its timeout_s of {timeout_s} s"
        raise MethodError(message) from None
    except BaseException:
        _kill_session(proc)
        raise
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", errors="replace")[-STDERR_TAIL_CHARS:].rstrip()
        log.debug("method %r: stderr of `%s`:\n%s", name, shown, tail)
        last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        said = f"; its last stderr line: {last}" if last else "; its stderr is empty"
        raise MethodError(f"method {name!r}: `{shown}` exited with {proc.returncode}{said}")
    log.debug("method %r: `%s` done", name, shown)


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the session ``proc`` leads (it and its children) and reap ``proc``."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _read_output(path: Path) -> np.ndarray | ImageReadError:
    """The pixels of an output file, or the error saying it is missing or unreadable (naming
    it ``{out}/<name>``: the temporary folder differs from run to run)."""
    if not path.exists():
        return ImageReadError(f"{{out}}/{path.name}", "no output file: the program wrote none")
    try:
        return read_image(path)
    except ImageReadError as exc:
        return ImageReadError(f"{{out}}/{path.name}", exc.reason)


def evaluate_outside(
    name: str,
    restore_batch: BatchRestoreFn,
    batch: Literal["family", "all"],
    bench: Bench,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
) -> MethodRows:
    """:func:`~girml.evaluation.harness.evaluate_batches` of one outside method.

    Args:
        name: the method (its rows' ``method``).
        restore_batch: from :func:`load_methods`.
        batch: the spec's ``batch``.
        bench, cfg, niqe_model, lpips: as for :func:`~girml.evaluation.harness.evaluate_method`.

    Raises:
        MethodError: the restorer raised it, or no image was scored (the first failure named).
    """
    result = evaluate_batches(
        restore_batch, bench, cfg, niqe_model, lpips, method=name, batch=batch
    )
    if result.failures:
        log.warning("method %r: %d image(s) not scored", name, len(result.failures))
        if not result.rows:
            first = result.failures[0].describe().strip().splitlines()[0]
            raise MethodError(f"method {name!r} failed on every image; the first: {first}")
    return result
