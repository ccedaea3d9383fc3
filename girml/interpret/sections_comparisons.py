"""Section 4 of the interpretation report: the worst and best restorations, side by side.

Per (suite, family), the images with the lowest and highest PSNR-Y gain, each cropped to its
most textured square: degraded, restored, ground truth and the error map.
"""

from __future__ import annotations

from collections.abc import Sequence

from girml.config import InterpretConfig
from girml.interpret import figures
from girml.interpret.attribution import textured_window
from girml.interpret.inputs import Sample
from girml.interpret.sections import Section

COMPARISON_CROP = 64  # px: whole 128 px crops x 4 panels made the page tens of MB


def comparisons_section(samples: Sequence[Sample], cfg: InterpretConfig) -> Section:
    """Section 4: worst and best images of every (suite, family) by PSNR gain."""
    sec = Section("comparisons", "Visual comparisons")
    k = cfg.comparisons_per_family
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    by_suite: dict[str, list[figures.ComparisonRow]] = {}
    for group, members in groups.items():
        ranked = sorted(members, key=lambda s: s.gain)
        worst, best = ranked[:k], ranked[max(k, len(ranked) - k) :][::-1]
        picks = [("worst", s) for s in worst] + [("best", s) for s in best]
        sec.data[group] = [{"case": c, "id": s.item.id, "gain": s.gain} for c, s in picks]
        by_suite.setdefault(members[0].item.suite, []).extend(
            comparison_row(f"{group} {case} (#{s.item.id})", s) for case, s in picks
        )
    sec.para(
        f"Per suite/family, the {k} worst and {k} best images by PSNR-Y gain among the images "
        f"of the representation section, cropped to their most textured {COMPARISON_CROP} px "
        "square (PSNR of the whole image)."
    )
    for suite, rows in by_suite.items():
        sec.figure(f"comparisons_{suite}.png", figures.comparison_figure(rows), suite)
    return sec


def comparison_row(label: str, s: Sample) -> figures.ComparisonRow:
    """A comparison figure's row of one sample, cropped to its most textured square."""
    y, x, size = textured_window(s.gt, min(COMPARISON_CROP, *s.gt.shape[:2]))
    crop = (slice(y, y + size), slice(x, x + size))
    return figures.ComparisonRow(
        label, s.lq[crop], s.restored[crop], s.gt[crop], s.psnr_in, s.psnr_out
    )
