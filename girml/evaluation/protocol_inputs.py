"""The inputs of a protocol's rows, made as the protocol's defining paper makes them.

:func:`build_rows` turns each row of a protocol (:class:`girml.config.ProtocolSpec`) into images
to restore, from the test sets the ``testset`` stage prepared
(:func:`girml.data.testsets.read_prepared`):

- ``given``: the set's own degraded images (or, for a ``real`` set, the photos alone);
- ``gaussian``: noise of ``sigma`` on the clean images, from one legacy ``np.random`` stream
  seeded once per protocol, rows in order and images in name order, on the image first cut to
  the convention's multiple, truncated to 8 bits: AirNet's ``DenoiseTestDataset`` exactly;
- ``degradations``: each family of ``params.yaml: degradations`` at each level of the protocol
  (and a ``clean`` row, the input its own ground truth), each image's recipe drawn from a
  generator keyed by (seed, set, family, level, image) with the synthesize stage's sampler and
  applied as its :func:`girml.data.synthesize.render` applies it, at load time.

Every input and target is first centre-cropped to the convention's ``input_multiple``
(``crop_img(base=16)``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from girml.config import CLEAN_FAMILY, DegradationsConfig, ProtocolSpec, ProtocolTask
from girml.core.imageio import read_image, to_tensor, to_uint8
from girml.data.synthesize import clean_recipe
from girml.data.testsets import PreparedSet
from girml.degradations import Recipe, apply_recipe, sample_recipe
from girml.metrics.conventions import Convention, get_convention


@dataclass(frozen=True)
class RowImage:
    """One image of a row: its id, its input file (what names it) and how to load it."""

    id: str
    path: Path
    load: Callable[[], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Row:
    """A protocol row ready to score.

    Attributes:
        name: the row's name in the results (``cbsd68-s25``, ``kodak24-noise-ood``).
        set: the test set.
        input: how its inputs are made, in words.
        convention: its metric convention; None for photos without ground truth (NIQE).
        images: its images, in name order.
    """

    name: str
    set: str
    input: str
    convention: Convention | None
    images: list[RowImage]


def crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Centre-crop (H, W, C) to multiples of ``multiple`` as AirNet/PromptIR ``crop_img`` does:
    the odd pixel, when the excess is odd, comes off the end."""
    h, w = image.shape[:2]
    ch, cw = h % multiple, w % multiple
    return image[ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2]


def add_gaussian_noise(clean: np.ndarray, sigma: float, rng: np.random.RandomState) -> np.ndarray:
    """AirNet's ``_add_gaussian_noise``: ``clip(clean + randn * sigma, 0, 255)`` truncated to uint8.

    Args:
        clean: (H, W, 3) uint8.
        sigma: noise std on the 0-255 scale.
        rng: the protocol's legacy stream (``np.random.seed(s)`` is ``RandomState(s)``).
    """
    noise = rng.randn(*clean.shape)
    return np.clip(clean + noise * sigma, 0, 255).astype(np.uint8)


def _given(lq: Path, gt: Path | None, multiple: int) -> tuple[np.ndarray, np.ndarray | None]:
    lq_pixels = crop_to_multiple(read_image(lq), multiple)
    if gt is None:
        return lq_pixels, None
    gt_pixels = crop_to_multiple(read_image(gt), multiple)
    if lq_pixels.shape != gt_pixels.shape:
        raise ValueError(
            f"{lq} is {lq_pixels.shape[:2]} but its ground truth {gt} is {gt_pixels.shape[:2]}"
        )
    return lq_pixels, gt_pixels


def _held(lq: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return lq, gt


def _degraded(gt: Path, multiple: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray | None]:
    """The synthesize stage's render in memory: the cut ground truth and the recipe applied."""
    clean = crop_to_multiple(read_image(gt), multiple)
    if not recipe.steps:  # the clean row: the input is its ground truth
        return clean.copy(), clean
    return to_uint8(apply_recipe(to_tensor(clean), recipe)), clean


def _need(prepared: PreparedSet, task: ProtocolTask, kinds: tuple[str, ...]) -> None:
    if prepared.kind not in kinds:
        raise ValueError(
            f"row {task.row}: input {task.input} needs a set of kind {' or '.join(kinds)}, "
            f"but {prepared.name} is {prepared.kind}"
        )


def _degraded_rows(
    task: ProtocolTask,
    prepared: PreparedSet,
    spec: ProtocolSpec,
    degradations: DegradationsConfig,
    conv: Convention,
) -> list[Row]:
    """One row per (family, level) of ``degradations``, then a ``clean`` row.

    Recipes are drawn here, once; each input is made when it is loaded (what the synthesize
    stage's :func:`~girml.data.synthesize.render` does, without writing every image to disk).
    """
    rows = []
    for family in [*degradations.families, CLEAN_FAMILY]:
        for level in spec.levels if family != CLEAN_FAMILY else ["id"]:
            name = f"{task.row}-{family}" + (f"-{level}" if family != CLEAN_FAMILY else "")
            key = [spec.seed, *(zlib.crc32(s.encode()) for s in (task.set, family, level))]
            images = []
            for image in prepared.images:
                assert image.gt is not None  # _need: clean or pairs
                if family == CLEAN_FAMILY:
                    recipe = clean_recipe()
                else:
                    rng = np.random.default_rng([*key, zlib.crc32(image.id.encode())])
                    recipe = sample_recipe(degradations, "single", level, rng, families=[family])
                load = partial(_degraded, image.gt, conv.input_multiple, recipe)
                images.append(RowImage(image.id, image.gt, load))
            what = "clean (input = ground truth)" if family == CLEAN_FAMILY else f"{family} {level}"
            rows.append(Row(name, task.set, f"degradations: {what}", conv, images))
    return rows


def build_rows(
    spec: ProtocolSpec,
    sets: Mapping[str, PreparedSet | None],
    degradations: DegradationsConfig,
) -> tuple[list[Row], list[str]]:
    """The rows of ``spec`` with their inputs, and the optional rows left out.

    Args:
        spec: the protocol.
        sets: its test sets as prepared, by name; None for one that was not fetched.
        degradations: ``params.yaml: degradations`` (for ``degradations`` rows).

    Returns:
        ``(rows, skipped)``: rows in the protocol's order (a ``degradations`` row expands to
        one row per family and level), and the names of optional rows whose set is absent.

    Raises:
        ValueError: a set that a required row needs is absent, a row whose input its set cannot
            give (noise on photos without ground truth), or an unknown convention.
    """
    rng = np.random.RandomState(spec.noise_seed)
    rows: list[Row] = []
    skipped: list[str] = []
    for task in spec.tasks:
        prepared = sets.get(task.set)
        if prepared is None:
            if not task.optional:
                raise ValueError(f"row {task.row}: test set {task.set} was not prepared")
            skipped.append(task.row)
            continue
        conv = get_convention(task.convention or spec.convention)
        multiple = conv.input_multiple
        if task.input == "given":
            _need(prepared, task, ("pairs", "real"))
            real = prepared.kind == "real"
            images = [
                RowImage(im.id, im.lq, partial(_given, im.lq, im.gt, multiple))
                for im in prepared.images
                if im.lq is not None
            ]
            rows.append(Row(task.row, task.set, "given", None if real else conv, images))
        elif task.input == "gaussian":
            _need(prepared, task, ("clean", "pairs"))
            assert task.sigma is not None  # ProtocolTask requires it
            images = []
            for im in prepared.images:
                assert im.gt is not None
                clean = crop_to_multiple(read_image(im.gt), multiple)
                noisy = add_gaussian_noise(clean, task.sigma, rng)
                images.append(RowImage(im.id, im.gt, partial(_held, noisy, clean)))
            rows.append(Row(task.row, task.set, f"gaussian sigma={task.sigma:g}", conv, images))
        else:
            _need(prepared, task, ("clean", "pairs"))
            rows += _degraded_rows(task, prepared, spec, degradations, conv)
    return rows, skipped
