"""The numbers of a release card: the model against the input and the best classical method.

They come from the evaluate stage's outputs, never from a new run: ``metrics/per_family.csv``
gives, per (suite, family), the released model's mean PSNR-Y and SSIM-Y, the degraded input's
(which is what the ``identity`` baseline scores) and every classical baseline's;
``metrics/eval.json`` says which registered version each method column describes and holds the
harm keys. As in ``eval.json``, suite numbers are means over the suite's degraded families (each
family weighs the same; the undegraded ``clean`` family is judged by the harm keys only).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from girml.config import CLEAN_FAMILY
from girml.evaluation.report import best_baselines, harm_metrics

MODEL_METHOD = "model"  # eval.json's champion.version: the version evaluate scored as "model"
CHAMPION_METHOD = "champion"  # champion.previous_version: the champion it was compared with
IDENTITY = "identity"
HARM_KEYS = (  # DESIGN.md "Metric names": the clean family is in single-id and unseen-content
    "harm.clean_psnr_y.single-id",
    "harm.clean_psnr_y.unseen-content",
    "harm_rate.single-id",
    "harm_rate.unseen-content",
    "harm.worst_family_gain",
)
_NUMERIC = ("n", "psnr_y", "ssim_y", "psnr_y_input", "ssim_y_input", "psnr_gain")
_OPTIONAL_NUMERIC = ("harm_rate", "niqe", "block_shift")  # not in every suite: empty -> NaN


def read_per_family(path: Path) -> list[dict[str, Any]]:
    """Rows of ``metrics/per_family.csv``: ``method, suite, family`` as text, scores as floats.

    Empty cells (NaN in the evaluate stage's writer) become NaN.

    Raises:
        FileNotFoundError: no file (the message says to run the evaluate stage).
        ValueError: a required column is missing or a number does not parse (the message names
            the file, line and column).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro evaluate` first")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [
            c
            for c in ("method", "suite", "family", *_NUMERIC)
            if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            row: dict[str, Any] = dict(raw)
            for column in (*_NUMERIC, *(c for c in _OPTIONAL_NUMERIC if c in raw)):
                try:
                    row[column] = float(raw[column]) if raw[column] else math.nan
                except ValueError:
                    raise ValueError(
                        f"{path}:{line}: {column} = {raw[column]!r} is not a number"
                    ) from None
            rows.append(row)
    return rows


def method_for_version(eval_metrics: Mapping[str, Any], version: int | None, source: str) -> str:
    """Which ``per_family.csv`` method describes registered version ``version``.

    ``eval.json`` records ``champion.version`` (the version evaluate scored as ``model``) and
    ``champion.previous_version`` (the champion it was compared with, scored as ``champion``
    unless it was the same version).

    Raises:
        ValueError: ``version`` is None or neither of the two (the message says what to run).
    """
    evaluated = eval_metrics.get("champion.version")
    previous = eval_metrics.get("champion.previous_version")
    if version is not None and version == evaluated:
        return MODEL_METHOD
    if version is not None and version == previous:
        return CHAMPION_METHOD
    which = "names no registered version" if version is None else f"is version {version}"
    raise ValueError(
        f"{source} {which}, but metrics/eval.json describes version {evaluated} "
        f"(and champion {previous}): evaluate that model first (`dvc repro evaluate` with it "
        "in models/latest)"
    )


@dataclass(frozen=True, kw_only=True)
class _Versus:
    """A score of the model with the input's and the best classical method's, and the two
    differences the card reports."""

    psnr_y: float
    ssim_y: float
    input_psnr_y: float
    best_name: str | None
    best_psnr_y: float | None

    @property
    def vs_identity(self) -> float:
        """Model minus degraded input (= the ``identity`` baseline), dB."""
        return self.psnr_y - self.input_psnr_y

    @property
    def vs_best(self) -> float | None:
        """Model minus the best classical method, dB (None without one)."""
        return None if self.best_psnr_y is None else self.psnr_y - self.best_psnr_y


@dataclass(frozen=True, kw_only=True)
class GroupScore(_Versus):
    """One (suite, family) of the card: the model against the input and the best classical."""

    suite: str
    family: str
    n: int


@dataclass(frozen=True, kw_only=True)
class SuiteScore(_Versus):
    """Suite means (families weighted equally) of the model, the input and the best classical.

    ``best_name`` is the one classical method with the highest suite mean PSNR-Y.
    """

    suite: str
    families: int


@dataclass(frozen=True)
class CardMetrics:
    """Everything numeric the card shows.

    Attributes:
        method: the ``per_family.csv`` method whose rows describe the released model.
        suites: per suite with ground truth, in file order.
        groups: per (suite, family), in file order.
        harm: every harm key: its value, or None when not measured.
        harm_note: why harm values are missing (empty when all were measured).
    """

    method: str
    suites: tuple[SuiteScore, ...]
    groups: tuple[GroupScore, ...]
    harm: dict[str, float | None]
    harm_note: str

    def summary(self) -> dict[str, Any]:
        """Suite means and harm as plain YAML-safe values (for the release's ``config.yaml``)."""
        return {
            "method": self.method,
            "suites": {
                s.suite: {
                    "psnr_y": round(s.psnr_y, 4),
                    "ssim_y": round(s.ssim_y, 4),
                    "psnr_y_identity": round(s.input_psnr_y, 4),
                    "best_classical": s.best_name,
                    "psnr_y_best_classical": None
                    if s.best_psnr_y is None
                    else round(s.best_psnr_y, 4),
                }
                for s in self.suites
            },
            "harm": {k: v for k, v in self.harm.items()},
        }


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _group_score(
    row: Mapping[str, Any], best: Mapping[str, tuple[str | None, float | None]]
) -> GroupScore:
    """One ``per_family.csv`` row of the model, with the best classical method of its family."""
    best_name, best_psnr_y = best.get(row["family"], (None, None))
    return GroupScore(
        suite=row["suite"],
        family=row["family"],
        n=int(row["n"]),
        psnr_y=row["psnr_y"],
        ssim_y=row["ssim_y"],
        input_psnr_y=row["psnr_y_input"],
        best_name=best_name,
        best_psnr_y=best_psnr_y,
    )


def _suite_score(
    suite: str,
    members: list[GroupScore],
    per_family: Sequence[Mapping[str, Any]],
    candidates: Sequence[str],
) -> SuiteScore:
    """Means over a suite's families (equal weights), and the classical method whose mean
    over the same families is highest (the earliest listed wins a tie)."""
    families = {g.family for g in members}
    means = {
        name: _mean(
            [
                r["psnr_y"]
                for r in per_family
                if r["method"] == name and r["suite"] == suite and r["family"] in families
            ]
        )
        for name in candidates
    }
    ranked = [(v, -i, name) for i, (name, v) in enumerate(means.items()) if math.isfinite(v)]
    top = max(ranked) if ranked else None
    return SuiteScore(
        suite=suite,
        families=len(members),
        psnr_y=_mean([g.psnr_y for g in members]),
        ssim_y=_mean([g.ssim_y for g in members]),
        input_psnr_y=_mean([g.input_psnr_y for g in members]),
        best_name=None if top is None else top[2],
        best_psnr_y=None if top is None else top[0],
    )


def card_metrics(
    per_family: Sequence[Mapping[str, Any]],
    method: str,
    classical: Sequence[str],
    eval_metrics: Mapping[str, Any],
) -> CardMetrics:
    """Tables of the model (rows of ``method``) against the input and the classical methods.

    Args:
        per_family: rows of :func:`read_per_family`.
        method: the method that describes the released model (:func:`method_for_version`).
        classical: the classical baseline names; ``identity`` is shown as the input instead.
        eval_metrics: ``metrics/eval.json``; its harm keys describe the ``model`` method only.
            Harm of another method is computed from its rows
            (:func:`~girml.evaluation.report.harm_metrics`, as the evaluate stage does).

    Raises:
        ValueError: no row of ``method`` with ground truth.
    """
    rows = [
        r
        for r in per_family
        if r["method"] == method and r["family"] != CLEAN_FAMILY and math.isfinite(r["psnr_y"])
    ]
    if not rows:
        raise ValueError(f"per_family.csv has no scored row of method {method!r}")
    candidates = [c for c in classical if c != IDENTITY]
    suites_in_order = list(dict.fromkeys(r["suite"] for r in rows))
    best = {suite: best_baselines(per_family, candidates, suite) for suite in suites_in_order}
    groups = tuple(_group_score(r, best[r["suite"]]) for r in rows)
    suites = [
        _suite_score(suite, [g for g in groups if g.suite == suite], per_family, candidates)
        for suite in suites_in_order
    ]
    harm, note = _harm(per_family, eval_metrics, method)
    return CardMetrics(method, tuple(suites), groups, harm, note)


def _harm(
    per_family: Sequence[Mapping[str, Any]], eval_metrics: Mapping[str, Any], method: str
) -> tuple[dict[str, float | None], str]:
    present = {k: float(v) for k, v in harm_metrics(per_family, method).items()}
    if method == MODEL_METHOD:  # eval.json's own keys win (the same numbers, as published)
        present |= {
            k: float(v)
            for k, v in eval_metrics.items()
            if k.startswith(("harm.", "harm_rate.")) and isinstance(v, int | float)
        }
    keys = list(dict.fromkeys([*HARM_KEYS, *sorted(present)]))
    harm: dict[str, float | None] = {k: present.get(k) for k in keys}
    missing = [k for k, v in harm.items() if v is None]
    note = (
        "Not measured (no clean family or harm_rate column in metrics/per_family.csv, no key "
        "in metrics/eval.json): " + ", ".join(missing)
        if missing
        else ""
    )
    return harm, note
