"""A release's ``MODEL_CARD.md`` (:mod:`girml.artifacts.release`), rendered from a jinja2 template.

The card shows the release's provenance, its numbers (:mod:`.card_metrics`), the known limits
drawn from them, what the training data spans (:class:`Coverage`), the fp16 check and, when
given, the scores on real photos outside the project.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from girml.artifacts.card_metrics import CardMetrics
from girml.config import DegradationsConfig, held_categories

if TYPE_CHECKING:
    from girml.artifacts.real_photos import RealPhotos


def known_limits(metrics: CardMetrics, margin_db: float = 0.0) -> list[str]:
    """Where the model does worse than doing nothing or than a classical method, as sentences.

    Args:
        metrics: the card's numbers.
        margin_db: a loss smaller than this is not listed.
    """
    limits = []
    worse = [g for g in metrics.groups if g.vs_identity < -margin_db]
    for g in worse:
        limits.append(
            f"{g.suite}/{g.family}: the output is {-g.vs_identity:.2f} dB below the degraded input "
            f"({g.psnr_y:.2f} vs {g.input_psnr_y:.2f} dB PSNR-Y, {g.n} images)."
        )
    beaten = [g for g in metrics.groups if g.vs_best is not None and g.vs_best < -margin_db]
    for g in beaten:
        limits.append(
            f"{g.suite}/{g.family}: the classical `{g.best_name}` is {-g.vs_best:.2f} dB better "
            f"({g.best_psnr_y:.2f} vs {g.psnr_y:.2f} dB PSNR-Y)."
        )
    for key, value in metrics.harm.items():
        if key.startswith("harm_rate.") and value is not None and value > 0:
            suite = key.removeprefix("harm_rate.")
            limits.append(
                f"{suite}: {100 * value:.0f}% of the degraded images come out more than 0.1 dB "
                "(PSNR-Y) below their input."
            )
    return limits


@dataclass(frozen=True)
class Coverage:
    """What the training data spans, for the card's fixed paragraph on what it does not."""

    trained_families: tuple[str, ...]
    held_out_families: tuple[str, ...]
    held_out_combinations: tuple[str, ...]
    unseen_content_category: str | None
    train_patch_size: int | None

    @classmethod
    def from_spec(
        cls,
        spec: DegradationsConfig,
        unseen_content_category: str | list[str] | None,
        train_patch_size: int | None,
    ) -> Coverage:
        held = set(spec.held_out.families)
        return cls(
            trained_families=tuple(f for f in spec.families if f not in held),
            held_out_families=tuple(spec.held_out.families),
            held_out_combinations=tuple("+".join(c) for c in spec.held_out.combinations),
            unseen_content_category=", ".join(held_categories(unseen_content_category)) or None,
            train_patch_size=train_patch_size,
        )


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


# The card's layout, beside this module (jinja2, Markdown)
CARD_TEMPLATE = "model_card.md.j2"
TEMPLATES_DIR = Path(__file__).with_name("templates")


def _template() -> jinja2.Template:
    """The card's Jinja template: strict, Markdown (not escaped), with a ``tick`` filter."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["tick"] = lambda text: f"`{text}`"
    return env.get_template(CARD_TEMPLATE)


def _real_command(real_photos: RealPhotos | None) -> str:
    """The command that scored the real photos, as Markdown code."""
    if real_photos is not None and real_photos.command:
        return f"`{real_photos.command}`"
    return "`benchmarks/real_photos.py` (command line not recorded)"


def render_card(
    *,
    title: str,
    arch: str,
    n_params: int,
    weights: Mapping[str, Any],
    provenance: Mapping[str, Any],
    metrics: CardMetrics,
    coverage: Coverage,
    fp16: Any = None,
    real_photos: RealPhotos | None = None,
) -> str:
    """``MODEL_CARD.md`` text.

    Args:
        title: the card's heading.
        arch: ``model.type``.
        n_params: parameter count.
        weights: ``file``, ``dtype``, ``bytes``, ``sha256`` of the weights file.
        provenance: the release provenance as plain values (see
            :class:`girml.artifacts.provenance.Provenance`); ``data`` holds the training data
            summary.
        metrics: :func:`~girml.artifacts.card_metrics.card_metrics`.
        coverage: what the training data spans.
        fp16: the fp16 check (``diffs``, ``max_abs_diff``, ``tolerance_db``) when stored in fp16.
        real_photos: ``benchmarks/real_photos.py`` scores of these weights: a section
            "Real photos outside the project" (none without).
    """
    text = _template().render(
        title=title,
        arch=arch,
        n_params=n_params,
        weights=weights,
        p=provenance,
        data=provenance["data"],
        m=metrics,
        limits=known_limits(metrics),
        cov=coverage,
        fp16=fp16,
        real=real_photos,
        real_command=_real_command(real_photos),
        num=_num,
        code=lambda v: "not recorded" if v in (None, "", "unknown") else f"`{v}`",
    )
    return text
