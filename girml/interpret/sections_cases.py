"""Section 6 of the interpretation report: cases to look at, the worst harms on inputs the model
should barely touch.

Two kinds, up to ``k`` each:

- ``clean``: the benchmark's ``clean`` crops (input = ground truth, so an unchanged output
  scores the 100 dB cap) with the lowest output PSNR-Y, among those made worse;
- ``mild``: degraded ``single-id`` crops (in-distribution degradations) whose PSNR-Y gain is
  most negative, beyond :data:`~girml.evaluation.report.HARM_MARGIN_DB`.

The candidates are the model's rows of ``metrics/per_image.csv`` (every benchmark image) when
given, else the report's own samples. Each case gets one generated sentence: what the input
was, the PSNR-Y in and out, and what likely happened, read from the pixels when the report
restored that image (its sample: brightness, contrast, colour and detail of the output against
the input), else from the numbers alone. Cases with a sample are also shown as thumbnails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from girml.config import CLEAN_FAMILY
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.report import HARM_MARGIN_DB
from girml.interpret import figures
from girml.interpret.inputs import Sample
from girml.interpret.sections import Section
from girml.interpret.sections_comparisons import comparison_row

CASES_PER_KIND = 4
MILD_SUITE = "single-id"
# what counts as a visible change of an 8-bit image (levels of 255, ratios of std)
SHIFT_LEVELS = 8.0
LOW_CONTRAST, HIGH_CONTRAST = 0.75, 1.35
LOW_DETAIL, HIGH_DETAIL = 0.6, 1.6
DARK, BRIGHT, FLAT = 64.0, 190.0, 12.0
_LUMA = np.array([0.299, 0.587, 0.114])
_CHANNELS = ("red", "green", "blue")


@dataclass(frozen=True)
class Case:
    """One harmed image: where it is and its PSNR-Y (dB) before and after."""

    kind: str  # "clean" or "mild"
    suite: str
    family: str
    id: str
    level: str
    psnr_in: float
    psnr_out: float

    @property
    def gain(self) -> float:
        return self.psnr_out - self.psnr_in

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.suite, self.family, self.id)


def _candidates(
    rows: Sequence[Mapping[str, object]] | None, samples: Sequence[Sample]
) -> list[Case]:
    """Every scored image of the model, from the per-image rows or else from the samples."""
    if rows is not None:
        out = []
        for row in rows:
            if row.get("method", MODEL_METHOD) != MODEL_METHOD:
                continue
            psnr_in, psnr_out = float(row["psnr_y_input"]), float(row["psnr_y"])
            if math.isfinite(psnr_in) and math.isfinite(psnr_out):
                key = (str(row["suite"]), str(row["family"]), str(row["id"]))
                out.append(Case("", *key, str(row.get("level", "")), psnr_in, psnr_out))
        return out
    return [
        Case("", s.item.suite, s.item.family, s.item.id, s.item.level, s.psnr_in, s.psnr_out)
        for s in samples
    ]


def harmed_cases(
    rows: Sequence[Mapping[str, object]] | None, samples: Sequence[Sample], k: int
) -> list[Case]:
    """Up to ``k`` clean and ``k`` mild cases, worst first (see the module docstring)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    found = _candidates(rows, samples)
    harmed = [c for c in found if c.gain < -HARM_MARGIN_DB]
    clean = sorted((c for c in harmed if c.family == CLEAN_FAMILY), key=lambda c: c.psnr_out)
    mild = sorted(
        (c for c in harmed if c.family != CLEAN_FAMILY and c.suite == MILD_SUITE),
        key=lambda c: c.gain,
    )
    return [_kind(c, "clean") for c in clean[:k]] + [_kind(c, "mild") for c in mild[:k]]


def _kind(case: Case, kind: str) -> Case:
    return Case(kind, case.suite, case.family, case.id, case.level, case.psnr_in, case.psnr_out)


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ _LUMA


def _detail(luma: np.ndarray) -> float:
    """Mean absolute Laplacian: how much fine detail an image has."""
    if min(luma.shape) < 3:
        return 0.0
    lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    return float(np.abs(lap).mean())


def looks(image: np.ndarray) -> str:
    """A few words on an (H,W,3) uint8 image: dark, bright, flat (empty when none applies)."""
    luma = _luma(image)
    words = []
    if luma.mean() < DARK:
        words.append("dark")
    elif luma.mean() > BRIGHT:
        words.append("bright")
    if luma.std() < FLAT:
        words.append("flat")
    return " ".join(words)


def what_changed(before: np.ndarray, after: np.ndarray) -> list[str]:
    """What the output did to its input, both (H,W,3) uint8: brightness, contrast, colour cast
    and detail changes past the module's thresholds, in words (empty when none is visible)."""
    lb, la = _luma(before), _luma(after)
    out = []
    shift = la.mean() - lb.mean()
    if abs(shift) > SHIFT_LEVELS:
        out.append(f"{'brightened' if shift > 0 else 'darkened'} by {abs(shift):.0f} levels")
    ratio = (la.std() + 1e-6) / (lb.std() + 1e-6)
    if ratio < LOW_CONTRAST:
        out.append(f"lost contrast (x{ratio:.2f}, greyer)")
    elif ratio > HIGH_CONTRAST:
        out.append(f"gained contrast (x{ratio:.2f})")
    cast = after.reshape(-1, 3).mean(0) - before.reshape(-1, 3).mean(0) - shift
    channel = int(np.argmax(np.abs(cast)))
    if abs(cast[channel]) > SHIFT_LEVELS:
        sign = "towards" if cast[channel] > 0 else "away from"
        out.append(f"shifted colour {sign} {_CHANNELS[channel]}")
    detail = (_detail(la) + 1e-6) / (_detail(lb) + 1e-6)
    if detail < LOW_DETAIL:
        out.append("smoothed away fine detail")
    elif detail > HIGH_DETAIL:
        out.append("added texture or artefacts")
    return out


def sentence(case: Case, sample: Sample | None) -> str:
    """One sentence on a case: the input, the PSNR-Y in and out, what likely happened."""
    where = f"{case.suite}/{case.family} #{case.id}"
    look = [looks(sample.lq)] if sample is not None and looks(sample.lq) else []
    if case.kind == "clean":
        what = " ".join(["a clean", *look, "crop"])
    else:
        level = [f"level-{case.level}"] if case.level else []
        what = " ".join(["a", *look, "crop with a", *level, case.family, "degradation"])
    changes = what_changed(sample.lq, sample.restored) if sample is not None else []
    if changes:
        happened = "the output " + ", ".join(changes)
    elif case.kind == "clean":
        happened = "the model altered an image it should have left unchanged"
    else:
        happened = "the restoration made it worse than its input"
    return (
        f"{where}: {what}; {happened}: {case.psnr_in:.1f} -> {case.psnr_out:.1f} dB "
        f"({case.gain:+.1f})."
    )


def cases_section(
    rows: Sequence[Mapping[str, object]] | None,
    samples: Sequence[Sample],
    k: int = CASES_PER_KIND,
) -> Section:
    """Section 6: the worst harms on clean and single-id inputs, one sentence each.

    Args:
        rows: the model's per-image rows (``metrics/per_image.csv``; other methods' rows are
            skipped), or None to rank the report's samples instead.
        samples: the report's restored images (their pixels explain a case; thumbnails).
        k: cases per kind, >= 1.
    """
    sec = Section("cases", "Cases to look at")
    cases = harmed_cases(rows, samples, k)
    source = "metrics/per_image.csv" if rows is not None else "the images of this report"
    sec.para(
        f"The worst harms among {source}: up to {k} clean crops (input = ground truth, "
        f"unchanged = 100 dB) with the lowest output PSNR-Y, and up to {k} {MILD_SUITE} crops "
        f"with the most negative gain (more than {HARM_MARGIN_DB:g} dB worse). What happened "
        "is read from the pixels where this report restored the image."
    )
    by_key = {(s.item.suite, s.item.family, s.item.id): s for s in samples}
    sec.data["cases"] = []
    for case in cases:
        text = sentence(case, by_key.get(case.key))
        sec.data["cases"].append({**case.__dict__, "gain": case.gain, "sentence": text})
    if not cases:
        sec.para("No clean or single-id crop was made worse: nothing to look at.")
        return sec
    for kind, title in (("clean", "Clean inputs"), ("mild", f"{MILD_SUITE} inputs")):
        texts = [c["sentence"] for c in sec.data["cases"] if c["kind"] == kind]
        if texts:
            sec.table([title], [[text] for text in texts])
    shown = [(c, by_key[c.key]) for c in cases if c.key in by_key]
    if shown:
        rows_ = [comparison_row(f"{c.kind} {c.suite}/{c.family} #{c.id}", s) for c, s in shown]
        sec.figure("cases.png", figures.comparison_figure(rows_), "cases with thumbnails")
    return sec
