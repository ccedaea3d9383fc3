"""Figures of the interpretation report.

Plots use matplotlib's object API (no pyplot state); image grids are tiled with numpy and
labelled with Pillow, which is far faster than one matplotlib axes per image. Every function
returns PNG bytes, so a figure can be both written to ``figures/`` and embedded in the HTML as
a data URI.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

DPI = 100
SUITE_MARKERS = {"single-id": "o", "single-ood": "^", "mixed": "s", "unseen": "X"}
OTHER_MARKER = "D"
ERROR_GAIN = 4.0  # error maps show |restored - gt| x 4 so small errors are visible
ZOOM = 2  # image tiles are enlarged by pixel replication (no smoothing)
GAP = 6  # px between tiles
LABEL_HEIGHT = 18  # px of the text line above each row of tiles
FONT_SIZE = 12
WINDOW_COLOUR = (0, 255, 0)


def png_bytes(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _palette(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _scatter(
    ax: Axes, xy: np.ndarray, colour_by: Sequence[str], suites: Sequence[str], title: str
) -> None:
    names = list(dict.fromkeys(colour_by))
    colours = _palette(names)
    labels, suite_arr = np.asarray(colour_by), np.asarray(suites)
    for suite in dict.fromkeys(suites):
        marker = SUITE_MARKERS.get(suite, OTHER_MARKER)
        for name in names:
            rows = (labels == name) & (suite_arr == suite)
            if rows.any():
                ax.scatter(*xy[rows].T, s=22, marker=marker, color=colours[name], alpha=0.8)
    for name in names:
        ax.scatter([], [], marker="o", color=colours[name], label=name)
    for suite in dict.fromkeys(suites):
        ax.scatter([], [], marker=SUITE_MARKERS.get(suite, OTHER_MARKER), color="grey", label=suite)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def tsne_figure(
    xy: np.ndarray, families: Sequence[str], categories: Sequence[str], suites: Sequence[str]
) -> bytes:
    """Two t-SNE panels of the same (N,2) points: coloured by family, then by content category.

    Marker shapes give the suite (circle single-id, triangle single-ood, square mixed, cross
    unseen, diamond others).
    """
    fig = Figure(figsize=(13, 5.5))
    left, right = fig.subplots(1, 2)
    _scatter(left, xy, families, suites, "coloured by degradation family")
    _scatter(right, xy, categories, suites, "coloured by content category")
    fig.tight_layout()
    return png_bytes(fig)


def _uint8(tile: np.ndarray) -> np.ndarray:
    if tile.dtype == np.uint8:
        return tile
    return (np.clip(tile, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def mosaic(rows: Sequence[tuple[str, Sequence[np.ndarray]]], columns: Sequence[str]) -> bytes:
    """A grid of images as PNG: a text label above each row, column titles on top.

    Tiles are enlarged ``ZOOM`` times by pixel replication and placed top-left in cells as
    large as the largest tile.

    Args:
        rows: ``(label, tiles)``; tiles are (h,w,3) uint8 or float in [0,1].
        columns: one title per tile column.
    """
    if not rows:
        raise ValueError("mosaic needs at least one row")
    font = ImageFont.load_default(size=FONT_SIZE)
    tiles = [_uint8(t).repeat(ZOOM, axis=0).repeat(ZOOM, axis=1) for _, ts in rows for t in ts]
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(max(t.shape[1] for t in tiles), *(int(font.getlength(c)) + GAP for c in columns))
    ncols = max(len(ts) for _, ts in rows)
    text_w = max(font.getlength(label) for label, _ in rows)
    width = max(ncols * cell_w + (ncols + 1) * GAP, int(text_w) + 2 * GAP)
    row_h = LABEL_HEIGHT + cell_h + GAP
    canvas = np.full((LABEL_HEIGHT + len(rows) * row_h + GAP, width, 3), 255, dtype=np.uint8)
    it = iter(tiles)
    for r, (_, row_tiles) in enumerate(rows):
        top = LABEL_HEIGHT + r * row_h + LABEL_HEIGHT
        for c in range(len(row_tiles)):
            tile = next(it)
            left = GAP + c * (cell_w + GAP)
            canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for c, title in enumerate(columns):
        draw.text((GAP + c * (cell_w + GAP), 2), title, fill=(0, 0, 0), font=font)
    for r, (label, _) in enumerate(rows):
        draw.text((GAP, LABEL_HEIGHT + r * row_h + 2), label, fill=(0, 0, 160), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def heat_overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """|attribution| summed over channels, normalised to its 99.5th percentile, over the image.

    Args:
        image: (H,W,3) uint8.
        attribution: (C,H,W) map.
        alpha: weight of the heat colours.

    Returns:
        (H,W,3) float64 in [0,1]: ``alpha * inferno(heat) + (1 - alpha) * gray(image)``.
    """
    heat = np.abs(attribution).sum(axis=0)
    top = np.percentile(heat, 99.5)
    heat = np.clip(heat / top, 0.0, 1.0) if top > 0 else np.zeros_like(heat)
    gray = image.astype(np.float64).mean(axis=2, keepdims=True) / 255.0
    return alpha * colormaps["inferno"](heat)[..., :3] + (1 - alpha) * gray


def with_box(image: np.ndarray, window: tuple[int, int, int]) -> np.ndarray:
    """A uint8 copy of ``image`` with the 1 px outline of ``window`` = (y, x, size) in green."""
    out = _uint8(image).copy()
    y, x, size = window
    out[y, x : x + size] = out[y + size - 1, x : x + size] = WINDOW_COLOUR
    out[y : y + size, x] = out[y : y + size, x + size - 1] = WINDOW_COLOUR
    return out


@dataclass(frozen=True)
class LamPanel:
    """One LAM result to draw: the input (H,W,3) uint8, the (C,H,W) map and its window."""

    title: str
    image: np.ndarray
    attribution: np.ndarray
    window: tuple[int, int, int]
    di: float


def lam_figure(panels: Sequence[LamPanel]) -> bytes:
    """One row per panel: the input with the output window (green), and the LAM heat map."""
    rows = [
        (
            f"{p.title}   DI = {p.di:.1f}",
            [with_box(p.image, p.window), with_box(heat_overlay(p.image, p.attribution), p.window)],
        )
        for p in panels
    ]
    return mosaic(rows, ["input and output window", "LAM attribution"])


def bar_figure(values: Mapping[str, float], ylabel: str, title: str) -> bytes:
    """Horizontal bars of ``values`` (label -> number), in the given order from the top."""
    names = list(values)
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh(range(len(names)), [values[n] for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return png_bytes(fig)


@dataclass(frozen=True)
class SensitivityPanel:
    """One family's curves: strengths, the gain per restorer and the declared ranges.

    ``segments`` are (label, (low, high), gain) drawn as flat lines over a range: benchmark
    means of methods that could not be swept (e.g. specialists).
    """

    title: str
    xlabel: str
    values: Sequence[float]
    curves: Mapping[str, Sequence[float]]
    id_range: tuple[float, float]
    ood_range: tuple[float, float] | None
    log: bool
    segments: Sequence[tuple[str, tuple[float, float], float]] = ()


def sensitivity_figure(panels: Sequence[SensitivityPanel]) -> bytes:
    """A grid of PSNR-gain-vs-strength plots, training (id) range shaded green, ood orange."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(5 * cols, 3.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    styles = {"model": {"color": "black", "lw": 2.0, "marker": "o"}}
    for ax, panel in zip(axes, panels, strict=False):
        ax.axvspan(*panel.id_range, color="tab:green", alpha=0.15, label="training (id) range")
        if panel.ood_range is not None:
            ax.axvspan(*panel.ood_range, color="tab:orange", alpha=0.12, label="ood range")
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        for name, gains in panel.curves.items():
            style = styles.get(name, {"ls": "--", "marker": "s", "ms": 4})
            ax.plot(panel.values, gains, label=name, **style)
        for label, (low, high), gain in panel.segments:
            ax.plot([low, high], [gain, gain], lw=3, alpha=0.7, label=label)
        if panel.log:
            ax.set_xscale("log")
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel("PSNR-Y gain (dB)")
        ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


@dataclass(frozen=True)
class ComparisonRow:
    """One benchmark image: degraded, restored and ground-truth (h,w,3) uint8 crops, and the
    PSNR-Y of the whole degraded and restored images."""

    label: str
    lq: np.ndarray
    restored: np.ndarray
    gt: np.ndarray
    psnr_in: float
    psnr_out: float


def error_map(restored: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(H,W,3) float in [0,1]: ``|restored - gt|`` (channel mean) x 4, in the magma colormap."""
    diff = np.abs(restored.astype(np.float64) - gt.astype(np.float64)).mean(axis=2) / 255.0
    return colormaps["magma"](np.clip(diff * ERROR_GAIN, 0.0, 1.0))[..., :3]


def comparison_figure(rows: Sequence[ComparisonRow]) -> bytes:
    """One row per image: degraded / restored / ground truth / error map (x4)."""
    return mosaic(
        [
            (
                f"{r.label}: PSNR-Y {r.psnr_in:.2f} -> {r.psnr_out:.2f} dB "
                f"({r.psnr_out - r.psnr_in:+.2f})",
                [r.lq, r.restored, r.gt, error_map(r.restored, r.gt)],
            )
            for r in rows
        ],
        ["degraded", "restored", "ground truth", f"|error| x {ERROR_GAIN:g}"],
    )
