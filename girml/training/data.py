"""Training and validation data: cached pairs, a seeded patch stream and its loader.

The training stream is a pure function of ``(seed, k)``, the global sample index: sample ``k``
uses pair ``perm_e[k % N]`` where ``perm_e`` is drawn from ``default_rng([seed, 0, e])`` for
epoch ``e = k // N``, and its crop, flip, rotation and online recipe come from
``default_rng([seed, 1, k])`` (whether it is a clean, identity sample from
``default_rng([seed, 2, k])``). A loader started at index ``s`` therefore yields exactly the
batches an uninterrupted run yields from ``s`` on, whatever the number of worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from girml.config import DegradationsConfig
from girml.core.imageio import read_image, to_tensor, to_uint8
from girml.data.records import TrainPair, read_jsonl
from girml.degradations import apply_recipe, sample_train_recipe

# black regions are not drawn into under-exposed samples: there a dark input must brighten
EXPOSURE_FAMILY = "lowlight"


@dataclass(frozen=True)
class PairSet:
    """Decoded pairs of one split, LQ already brought to its GT's size.

    Attributes:
        ids: pair ids from the JSONL.
        families: the record's ``family`` (e.g. ``"blur+noise"``).
        gt: clean images, each (H,W,3) uint8.
        lq: degraded images, each the shape of its GT, uint8.
    """

    ids: tuple[str, ...]
    families: tuple[str, ...]
    gt: tuple[np.ndarray, ...]
    lq: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PatchParams:
    """Where to crop and how to transform one training sample.

    Attributes:
        y, x: top-left corner of the crop.
        size: crop side in pixels.
        flip: mirror left-right after the crop.
        rot: number of counter-clockwise quarter turns (0..3) after the flip.
    """

    y: int
    x: int
    size: int
    flip: bool
    rot: int


def match_size(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic-resize an image to ``size`` (a no-op when it already has that size).

    Used to bring a low-resolution LQ (a ``downsample`` step) to its GT's size before the
    network, which maps images to images of the same size.

    Args:
        image: (B,C,h,w) float in [0,1].
        size: target (H, W), both >= 1.

    Returns:
        (B,C,H,W) float in [0,1] (clamped: bicubic overshoots).
    """
    if image.ndim != 4:
        raise ValueError(f"image must be (B,C,H,W), got shape {tuple(image.shape)}")
    if min(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def read_pair_records(jsonl: Path) -> list[TrainPair]:
    """Parse a ``pairs.jsonl`` written by the synthesize stage (one JSON object per line).

    Raises:
        FileNotFoundError: ``jsonl`` does not exist.
        ValueError: a bad record (the message names the file, line and key) or no record.
    """
    if not jsonl.is_file():
        raise FileNotFoundError(f"{jsonl}: pairs file not found (run `girml synthesize`)")
    records = read_jsonl(jsonl, TrainPair)
    if not records:
        raise ValueError(f"{jsonl}: no pairs")
    return records


def load_pairs(jsonl: Path) -> PairSet:
    """Decode every pair listed in ``jsonl`` once (paths are relative to its folder).

    A smaller LQ is upsampled (bicubic) to its GT's size and rounded back to uint8.

    Returns:
        The decoded :class:`PairSet`, in file order.
    """
    records = read_pair_records(jsonl)
    gts, lqs = [], []
    for rec in records:
        gt = read_image(jsonl.parent / rec.gt)
        lq = read_image(jsonl.parent / rec.lq)
        if lq.shape != gt.shape:
            lq = to_uint8(match_size(to_tensor(lq), gt.shape[:2]))
        gts.append(gt)
        lqs.append(lq)
    return PairSet(
        ids=tuple(rec.id for rec in records),
        families=tuple(rec.family for rec in records),
        gt=tuple(gts),
        lq=tuple(lqs),
    )


def sample_patch(rng: np.random.Generator, height: int, width: int, size: int) -> PatchParams:
    """Draw a uniform ``size`` x ``size`` crop position and one of the 8 flips/rotations."""
    if not 1 <= size <= min(height, width):
        raise ValueError(f"patch size must be in [1, {min(height, width)}], got {size}")
    y = int(rng.integers(0, height - size + 1))
    x = int(rng.integers(0, width - size + 1))
    return PatchParams(y=y, x=x, size=size, flip=bool(rng.integers(2)), rot=int(rng.integers(4)))


def black_region_mask(rng: np.random.Generator, size: int) -> Tensor:
    """A random soft-edged ellipse mask: 1 keeps the content, 0 turns it black.

    The ellipse's centre may lie outside the crop and either its inside or its outside is
    kept, so some crops are almost all black and some only have a black corner, like night
    skies, microscope and fundus images or studio shots against black.

    Args:
        rng: the sample's generator.
        size: crop side in pixels.

    Returns:
        (1,1,size,size) float32 in [0,1].
    """
    cy, cx = rng.uniform(-0.25, 1.25, size=2) * size
    ry, rx = rng.uniform(0.15, 0.9, size=2) * size
    theta = rng.uniform(0.0, np.pi)
    edge = rng.uniform(0.5, 3.0)  # ramp width in pixels
    keep_inside = bool(rng.integers(2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    # radial distance to the ellipse, approximately in pixels
    dist = (np.sqrt((u / rx) ** 2 + (v / ry) ** 2) - 1.0) * np.sqrt(rx * ry)
    inside = np.clip(0.5 - dist / edge, 0.0, 1.0)
    mask = inside if keep_inside else 1.0 - inside
    return torch.from_numpy(mask.astype(np.float32))[None, None]


def apply_patch(images: Tensor, params: PatchParams) -> Tensor:
    """Crop, then flip and rotate, a batch of images in the same way.

    Args:
        images: (B,C,H,W) tensor (any dtype); stack GT and LQ here to keep them aligned.
        params: from :func:`sample_patch`.

    Returns:
        (B,C,size,size) tensor.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B,C,H,W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    p = params
    if not (0 <= p.y <= height - p.size and 0 <= p.x <= width - p.size and p.size >= 1):
        raise ValueError(f"crop {p} does not fit a {height}x{width} image")
    if p.rot not in range(4):
        raise ValueError(f"rot must be in 0..3, got {p.rot}")
    out = images[..., p.y : p.y + p.size, p.x : p.x + p.size]
    if p.flip:
        out = out.flip(-1)
    return torch.rot90(out, p.rot, dims=(-2, -1)).contiguous()


class TrainPatches(Dataset[tuple[Tensor, Tensor]]):
    """The training stream: item ``k`` is the ``k``-th sample of the seeded stream.

    Indices are global sample indices (unbounded); ``len()`` is the number of pairs, one epoch.

    Args:
        pairs: decoded training pairs (kept in memory, shared with forked workers).
        patch_size: crop side, at most the smallest image side.
        seed: stream seed.
        online_prob: chance that a sample's LQ is a fresh degradation of its GT crop, drawn
            from ``spec`` with :func:`~girml.degradations.sample_train_recipe`, instead of the
            stored LQ.
        spec: the degradation spec; required when ``online_prob > 0``.
        black_region_prob: chance that an on-the-fly sample's clean crop is first multiplied
            by a :func:`black_region_mask` (and that is its target), unless its recipe has a
            low-light step. Collections of photos rarely hold black backgrounds, and a model
            that never saw one learns that every dark input is under-exposed and brightens
            black skies. Keeping the masks out of low-light samples leaves the model a cue:
            black next to well-exposed content stays black, a dark image as a whole brightens.
        clean_prob: chance that a sample's input is its clean crop itself (target = input).
            A model that only ever sees degraded inputs learns that every input needs
            changing and shifts the brightness of photos that need nothing; identity samples
            teach it to leave clean content alone.
    """

    def __init__(
        self,
        pairs: PairSet,
        patch_size: int,
        seed: int,
        online_prob: float = 0.0,
        spec: DegradationsConfig | None = None,
        black_region_prob: float = 0.0,
        clean_prob: float = 0.0,
    ) -> None:
        if len(pairs) == 0:
            raise ValueError("pairs is empty")
        smallest = min(min(img.shape[:2]) for img in pairs.gt)
        if not 1 <= patch_size <= smallest:
            raise ValueError(
                f"patch_size must be in [1, {smallest}] (smallest training image side), "
                f"got {patch_size}"
            )
        if not 0.0 <= online_prob <= 1.0:
            raise ValueError(f"online_prob must be in [0, 1], got {online_prob}")
        if not 0.0 <= black_region_prob <= 1.0:
            raise ValueError(f"black_region_prob must be in [0, 1], got {black_region_prob}")
        if not 0.0 <= clean_prob <= 1.0:
            raise ValueError(f"clean_prob must be in [0, 1], got {clean_prob}")
        if online_prob > 0 and spec is None:
            raise ValueError(f"online_prob={online_prob} needs a degradations spec, got None")
        self.pairs = pairs
        self.patch_size = patch_size
        self.seed = seed
        self.online_prob = online_prob
        self.spec = spec
        self.black_region_prob = black_region_prob
        self.clean_prob = clean_prob
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def pair_index(self, k: int) -> int:
        """The pair used by sample ``k``: a fresh permutation of the pairs every epoch."""
        if k < 0:
            raise IndexError(f"sample index must be >= 0, got {k}")
        epoch, pos = divmod(k, len(self.pairs))
        if self._perm is None or self._perm[0] != epoch:
            perm = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.pairs))
            self._perm = (epoch, perm)
        return int(self._perm[1][pos])

    def __getitem__(self, k: int) -> tuple[Tensor, Tensor]:
        """Sample ``k`` as ``(lq, gt)``, each (3,P,P) float32 in [0,1]."""
        i = self.pair_index(k)
        rng = np.random.default_rng([self.seed, 1, k])
        gt_full = self.pairs.gt[i]
        params = sample_patch(rng, gt_full.shape[0], gt_full.shape[1], self.patch_size)
        # drawn from a generator of its own, so a zero probability leaves the stream unchanged
        clean = self.clean_prob > 0 and (
            np.random.default_rng([self.seed, 2, k]).random() < self.clean_prob
        )
        online = self.online_prob > 0 and rng.random() < self.online_prob
        if clean:
            gt = apply_patch(to_tensor(gt_full), params)
            return gt[0], gt[0]
        if online:
            gt = apply_patch(to_tensor(gt_full), params)
            recipe = sample_train_recipe(self.spec, rng)
            # drawn after the recipe, so a zero probability leaves the stream unchanged
            if (
                self.black_region_prob > 0
                and rng.random() < self.black_region_prob
                and EXPOSURE_FAMILY not in recipe.families
            ):
                gt = gt * black_region_mask(rng, self.patch_size)
            # quantised like the stored LQ PNGs, so both sources look alike to the network
            lq = to_tensor(to_uint8(match_size(apply_recipe(gt, recipe), gt.shape[-2:])))
        else:
            both = apply_patch(torch.cat([to_tensor(gt_full), to_tensor(self.pairs.lq[i])]), params)
            gt, lq = both[:1], both[1:]
        return lq[0], gt[0]


class StreamSampler(Sampler[int]):
    """Yields the global sample indices ``start, start + 1, ..., stop - 1``."""

    def __init__(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
        self.start = start
        self.stop = stop

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def make_loader(
    dataset: TrainPatches,
    batch_size: int,
    start: int,
    stop: int,
    num_workers: int,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader over samples ``[start, stop)`` of ``dataset``, in order, in batches.

    Args:
        dataset: the training stream.
        batch_size: samples per batch, >= 1.
        start: first global sample index (resume: optimizer steps done x samples per step).
        stop: one past the last sample index.
        num_workers: worker processes (0 loads in the calling process); workers persist.
        pin_memory: pin batches for faster host-to-GPU copies.

    Returns:
        A ``DataLoader`` yielding ``(lq, gt)`` batches, each (B,3,P,P) float32 in [0,1].
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=StreamSampler(start, stop),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        drop_last=False,
    )
