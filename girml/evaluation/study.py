"""The study stage's library: read the per-image rows of every evaluated method, rank them
(:mod:`girml.evaluation.leaderboard`), write the study's files
(:mod:`girml.evaluation.study_files`) and log the leaderboard to MLflow.

Input: the evaluate stage's per-image rows (``metrics/per_image.csv``, columns
:data:`girml.evaluation.report.ROW_COLUMNS`): the model, the champion, the baselines, the
specialists and outside methods, and the rows of each study approach
(``metrics/approaches/<name>/per_image.csv``), all scored on the same benchmark images.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from girml.core.imageio import write_text
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.leaderboard import Cost, Leaderboard, leaderboard
from girml.evaluation.published import study_protocols
from girml.evaluation.report import ROW_COLUMNS
from girml.evaluation.study_files import method_metrics, plot_csv, render_html, study_json
from girml.evaluation.uncertainty import BOOTSTRAP_SAMPLES
from girml.tracking.logs import log_metrics, log_params_flat
from girml.tracking.runs import start_run

_TEXT_COLUMNS = frozenset({"method", "suite", "family", "id", "source_id", "level"})


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
    protocols_dir: Path | None = None,
    cost_note: str | None = None,
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
        protocols_dir: where the protocol stage writes ``<protocol>.json``
            (``metrics/protocols``); when given, the files gain a ``protocols`` part: the
            measured protocol scores found there beside the published results
            (:func:`girml.evaluation.published.study_protocols`), never ranked.
        cost_note: how the evaluate stage measured its methods' costs
            (:attr:`girml.evaluation.costs.MeasuredCosts.note`), for the page; None: it did not.

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
    protocols = None if protocols_dir is None else study_protocols(Path(protocols_dir))
    sources = ", ".join(str(path) for path in dict.fromkeys(owner.values()))
    meta = {"per-image rows": sources, "images": len(rows)}
    files = {  # every text first: a failure to build one leaves all three files as they were
        Path(out_json): json.dumps(study_json(board, protocols), indent=2, allow_nan=False) + "\n",
        Path(plots_csv): plot_csv(board),
        Path(html_dir) / "index.html": render_html(board, meta, protocols, cost_note),
    }
    for path, text in files.items():
        write_text(path, text)
    return board


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
            :func:`girml.tracking.store.tracking_uri`).
        experiment: experiment name.
        tags: extra parent tags, e.g. :func:`girml.tracking.provenance.provenance_tags`.
    """
    with start_run(
        experiment,
        project_root,
        run_name="study",
        tags={**dict(tags or {}), "stage": "study"},
        log_system_metrics=False,
    ) as parent:
        log_params_flat(
            {
                "reference": board.reference,
                "seed": board.seed,
                "n_boot": board.n_boot,
                "methods": board.names(),
            }
        )
        for result in board.methods:
            with start_run(
                experiment,
                project_root,
                run_name=result.method,
                tags={"method": result.method, "rank": str(result.rank)},
                log_system_metrics=False,
                nested=True,
            ):
                log_metrics(0, method_metrics(result, board.reference))
        return str(parent.info.run_id)
