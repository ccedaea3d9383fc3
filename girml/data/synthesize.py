"""Synthesis of degraded/clean pairs and of the fixed benchmark suites (DVC stage ``synthesize``).

Planning and execution are separate: the plan (which clean image, which crop, which recipe) is
drawn in the main process from generators seeded by ``(seed, stream, family, index)``, so it does
not depend on the number of workers; execution applies each recipe (deterministic) in a process
pool and writes PNGs. Outputs are built in a staging folder and swapped in at the end, so a
failed or interrupted run leaves the previous outputs untouched and no half-written files.

Layout (relative to the output folders passed in):
    pairs/{train,val,select}/{gt,lq}/<id>.png + pairs/{train,val,select}/pairs.jsonl
    bench/<suite>/<family>/{gt,lq}/<id>.png + bench/<suite>/<family>/recipes.jsonl
Each JSONL line is a :class:`~girml.data.records.PairRecord`: ``{"id", "gt", "lq", "source_id",
"category", "crop": [y, x, h, w], "suite", "family", "recipe"}`` with paths relative to the
JSONL's folder.

The suites of :data:`CLEAN_SUITES` also hold a ``clean`` family: the same crops as the suite's
other families, with an empty recipe (no step) and an LQ file that is a byte copy of its GT. It
measures harm: what a restorer does to an image that needs no restoration.

The ``whole`` suite (:data:`WHOLE_SUITE`) holds whole test photos at full size, ``clean`` and
under each trained family at in-distribution levels: evaluation restores them as
``girml restore`` does, tiles included (:mod:`girml.evaluation.whole`).

The selection set (``pairs/select``, :data:`SELECT_SET`) holds the validation photos, whole but
box-reduced to ``synthesize.select_side``, clean and under each trained family: training keeps
the checkpoint that scores best on it, harm counted (:mod:`girml.training.selection`).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from girml.config import CLEAN_FAMILY, DegradationsConfig, SynthesizeConfig
from girml.core.imageio import (
    atomic_path,
    box_reduce,
    read_image,
    reduce_factor,
    swap_dir,
    to_tensor,
    to_uint8,
    write_png,
)
from girml.core.process import die_with_parent
from girml.data.records import PairRecord, write_jsonl
from girml.degradations import Recipe, apply_recipe, sample_recipe, sample_train_recipe

log = logging.getLogger(__name__)

SUITES = ("single-id", "single-ood", "mixed", "unseen", "unseen-content")
# Suites that also get the undegraded family CLEAN_FAMILY (input = ground truth).
CLEAN_SUITES = ("single-id", "unseen-content")
WHOLE_SUITE = "whole"
# Whole validation photos, reduced, clean and under each trained family: what the training
# loop's harm-aware checkpoint selection scores (girml.training.selection).
SELECT_SET = "select"
_LUMA = np.array([0.299, 0.587, 0.114])
_STREAMS = {
    "train": 0,
    "val": 1,
    **{suite: 10 + i for i, suite in enumerate(SUITES)},
    WHOLE_SUITE: 30,
    SELECT_SET: 31,
}


@dataclass(frozen=True)
class CleanImage:
    """One row of ``data/clean/manifest.csv``."""

    id: str
    path: Path
    width: int
    height: int
    category: str
    split: str


@dataclass(frozen=True)
class Job:
    """One pair to render: a crop of a clean image and the recipe to apply to it."""

    out_dir: str  # folder holding gt/, lq/ and the JSONL, relative to the staging root
    pair_id: str
    image: CleanImage
    crop: tuple[int, int, int, int]  # y, x, h, w
    recipe: Recipe
    suite: str
    family: str
    reduce: int = 1  # box-reduction factor applied to the crop (girml.core.imageio.box_reduce)


@dataclass(frozen=True)
class SynthesizeResult:
    counts: dict[str, int] = field(default_factory=dict)  # "<split or suite/family>" -> pairs


def read_manifest(manifest: Path, images_dir: Path) -> list[CleanImage]:
    """Parse ``manifest.csv`` (columns id,source,origin,width,height,category,split)."""
    with manifest.open(newline="", encoding="utf-8") as fh:
        return [
            CleanImage(
                id=row["id"],
                path=images_dir / f"{row['id']}.png",
                width=int(row["width"]),
                height=int(row["height"]),
                category=row["category"],
                split=row["split"],
            )
            for row in csv.DictReader(fh)
        ]


def _rng(seed: int, stream: str, key: str, index: int) -> np.random.Generator:
    """A generator keyed by names (crc32), so adding a family never reshuffles the others."""
    return np.random.default_rng([seed, _STREAMS[stream], zlib.crc32(key.encode()), index])


def _random_crop(rng: np.random.Generator, img: CleanImage, size: int) -> tuple[int, int, int, int]:
    y = int(rng.integers(0, img.height - size + 1))
    x = int(rng.integers(0, img.width - size + 1))
    return (y, x, size, size)


def grid_crops(images: Sequence[CleanImage], size: int, per_image: int) -> list[tuple]:
    """Non-overlapping crops, at most ``per_image`` per image, interleaved across images.

    Returns:
        ``(image, (y, x, size, size))`` tuples, round-robin over images (sorted by id) so the
        first N crops spread over as many photos as possible.
    """
    per: list[list[tuple]] = []
    for img in sorted(images, key=lambda im: im.id):
        rows, cols = img.height // size, img.width // size
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        if len(cells) > per_image:  # evenly spaced subset, deterministic
            picks = np.linspace(0, len(cells) - 1, per_image).round().astype(int)
            cells = [cells[i] for i in picks]
        oy, ox = (img.height - rows * size) // 2, (img.width - cols * size) // 2
        per.append([(img, (oy + r * size, ox + c * size, size, size)) for r, c in cells])
    out = []
    for i in range(max((len(p) for p in per), default=0)):
        out.extend(p[i] for p in per if i < len(p))
    return out


# Benchmark crops whose luma varies less than this (standard deviation, grey levels) are skipped.
MIN_CROP_STD = 1.0


def informative(img: CleanImage, crop: tuple[int, int, int, int]) -> bool:
    """Whether a crop has content: its BT.601 luma varies by at least :data:`MIN_CROP_STD`.

    A flat crop (a clear sky, an illustration's solid fill, a black border) can come back
    unchanged from blur, resize or multiplicative noise, so its input PSNR is infinite and it
    measures nothing: benchmarks skip it.
    """
    y, x, h, w = crop
    pixels = _load(img.path)[y : y + h, x : x + w].astype(np.float64)
    return float((pixels @ _LUMA).std()) >= MIN_CROP_STD


def _informative_crops(crops: list[tuple]) -> list[tuple]:
    """``crops`` (round-robin over images) without the flat ones, in the same order; each image
    is read once (the checks run image by image, not in the round-robin order)."""
    keep = {}
    for img, crop in sorted(crops, key=lambda c: c[0].id):
        keep[(img.id, crop)] = informative(img, crop)
    return [(img, crop) for img, crop in crops if keep[(img.id, crop)]]


def plan_pairs(
    images: Sequence[CleanImage],
    split: str,
    n: int,
    spec: DegradationsConfig,
    cfg: SynthesizeConfig,
) -> list[Job]:
    """Training/validation jobs: random crops of random images, training-distribution recipes."""
    usable = sorted(
        (im for im in images if min(im.width, im.height) >= cfg.patch_size), key=lambda im: im.id
    )
    if not usable:
        raise ValueError(
            f"no {split} image is at least patch_size={cfg.patch_size} px on its shorter side"
        )
    jobs = []
    for i in range(n):
        rng = _rng(cfg.seed, split, split, i)
        img = usable[int(rng.integers(len(usable)))]
        crop = _random_crop(rng, img, cfg.patch_size)
        recipe = sample_train_recipe(spec, rng)
        jobs.append(Job(split, f"{split}-{i:06d}", img, crop, recipe, split, recipe.family_key))
    return jobs


def _suite_families(spec: DegradationsConfig) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Per suite: (folder name, composer, families) entries, in a fixed order.

    An entry with no families is the undegraded :data:`~girml.config.CLEAN_FAMILY` (last, in
    the suites of :data:`CLEAN_SUITES`).
    """
    held = set(spec.held_out.families)
    held_combos = [sorted(c) for c in spec.held_out.combinations]
    trained = [f for f in spec.families if f not in held]
    seen_combos = [
        sorted(c)
        for c in spec.bench_combinations
        if sorted(c) not in held_combos and not set(c) & held
    ]
    suites = {
        "single-id": [(f, "single", [f]) for f in trained],
        "single-ood": [(f, "single", [f]) for f in trained],
        "mixed": [("+".join(c), "mixed", c) for c in seen_combos],
        "unseen": [(f, "single", [f]) for f in spec.held_out.families]
        + [("+".join(c), "mixed", c) for c in held_combos],
        "unseen-content": [(f, "single", [f]) for f in trained],
    }
    for suite in CLEAN_SUITES:
        suites[suite].append((CLEAN_FAMILY, "single", []))
    return suites


def clean_recipe() -> Recipe:
    """The recipe of the ``clean`` family: no step, so the LQ is the GT."""
    return Recipe(composer="single", level="id", steps=())


def plan_bench(
    test_images: Sequence[CleanImage],
    content_images: Sequence[CleanImage],
    spec: DegradationsConfig,
    cfg: SynthesizeConfig,
) -> list[Job]:
    """Benchmark jobs: the same non-overlapping crops under every family of every suite.

    Flat crops are skipped (:func:`informative`). The ``clean`` family of
    :data:`CLEAN_SUITES` takes the same crops with :func:`clean_recipe`.
    """
    crops = {
        name: _informative_crops(grid_crops(images, cfg.bench_crop, cfg.max_crops_per_image))
        for name, images in (("test", test_images), ("content", content_images))
    }
    jobs = []
    for suite, entries in _suite_families(spec).items():
        if suite == "unseen-content" and not cfg.held_categories:
            continue
        pool = crops["content" if suite == "unseen-content" else "test"]
        if entries and len(pool) < cfg.bench_per_family:
            where = (
                f"categories {cfg.held_categories}"
                if suite == "unseen-content"
                else "the test split"
            )
            raise ValueError(
                f"suite {suite}: only {len(pool)} non-overlapping {cfg.bench_crop}px crops in "
                f"{where}, bench_per_family={cfg.bench_per_family} needs more images, a smaller "
                "bench_crop or a larger max_crops_per_image"
            )
        level = "ood" if suite == "single-ood" else "id"
        for name, composer, families in entries:
            for j, (img, crop) in enumerate(pool[: cfg.bench_per_family]):
                if families:
                    rng = _rng(cfg.seed, suite, name, j)
                    recipe = sample_recipe(spec, composer, level, rng, families=families)
                else:
                    recipe = clean_recipe()
                jobs.append(Job(f"{suite}/{name}", f"{j:04d}", img, crop, recipe, suite, name))
    return jobs + plan_whole(test_images, spec, cfg)


def plan_whole(
    test_images: Sequence[CleanImage], spec: DegradationsConfig, cfg: SynthesizeConfig
) -> list[Job]:
    """Jobs of the ``whole`` suite: the first ``cfg.whole_photos`` test photos (by id; all when
    None), whole, under every trained family at in-distribution levels and ``clean``.

    Each (family, photo) draws its recipe from its own generator, so adding photos or families
    moves no existing recipe.
    """
    photos = sorted(test_images, key=lambda im: im.id)[: cfg.whole_photos]
    jobs = []
    for name in [*_trained_families(spec), CLEAN_FAMILY]:
        for img in photos:
            recipe = _whole_photo_recipe(spec, cfg, WHOLE_SUITE, name, img)
            crop = (0, 0, img.height, img.width)
            jobs.append(Job(f"{WHOLE_SUITE}/{name}", img.id, img, crop, recipe, WHOLE_SUITE, name))
    return jobs


def _trained_families(spec: DegradationsConfig) -> list[str]:
    held = set(spec.held_out.families)
    return [f for f in spec.families if f not in held]


def _whole_photo_recipe(
    spec: DegradationsConfig, cfg: SynthesizeConfig, stream: str, family: str, img: CleanImage
) -> Recipe:
    """``family`` at in-distribution levels for one whole photo (:func:`clean_recipe` for
    ``clean``), from a generator keyed by (stream, family, photo)."""
    if family == CLEAN_FAMILY:
        return clean_recipe()
    rng = _rng(cfg.seed, stream, family, zlib.crc32(img.id.encode()))
    return sample_recipe(spec, "single", "id", rng, families=[family])


def plan_select(
    val_images: Sequence[CleanImage], spec: DegradationsConfig, cfg: SynthesizeConfig
) -> list[Job]:
    """Jobs of the selection set (:data:`SELECT_SET`): every validation photo, whole, box-reduced
    to ``cfg.select_side``, clean and under each trained family at in-distribution levels.

    Seeded per (family, photo) like :func:`plan_whole`; empty when ``select_side`` is 0.
    """
    if cfg.select_side == 0:
        return []
    jobs = []
    for img in sorted(val_images, key=lambda im: im.id):
        factor = reduce_factor(img.height, img.width, cfg.select_side)
        for name in [*_trained_families(spec), CLEAN_FAMILY]:
            recipe = _whole_photo_recipe(spec, cfg, SELECT_SET, name, img)
            crop = (0, 0, img.height, img.width)
            pair_id = f"{SELECT_SET}-{name}-{img.id}"
            jobs.append(Job(SELECT_SET, pair_id, img, crop, recipe, SELECT_SET, name, factor))
    return jobs


@lru_cache(maxsize=8)
def _load(path: Path) -> np.ndarray:
    return read_image(path)


def _init_worker(parent_pid: int | None = None) -> None:
    """Pool worker setup: one torch thread; die with the parent (``kill -9`` leaves no orphan)."""
    if parent_pid is not None:
        die_with_parent(parent_pid)
    torch.set_num_threads(1)


def render(job: Job, root: Path) -> PairRecord:
    """Apply the job's recipe to its crop and write gt/lq PNGs; returns the JSONL record.

    A recipe without steps (the ``clean`` family) writes its LQ as a byte copy of the GT file.
    """
    y, x, h, w = job.crop
    gt = box_reduce(_load(job.image.path)[y : y + h, x : x + w], job.reduce)
    folder = root / job.out_dir
    gt_path, lq_path = folder / "gt" / f"{job.pair_id}.png", folder / "lq" / f"{job.pair_id}.png"
    write_png(gt_path, np.ascontiguousarray(gt))
    if job.recipe.steps:
        write_png(lq_path, to_uint8(apply_recipe(to_tensor(gt), job.recipe)))
    else:
        with atomic_path(lq_path) as tmp:
            shutil.copyfile(gt_path, tmp)
    return PairRecord(
        id=job.pair_id,
        gt=f"gt/{job.pair_id}.png",
        lq=f"lq/{job.pair_id}.png",
        source_id=job.image.id,
        category=job.image.category,
        crop=job.crop,
        suite=job.suite,
        family=job.family,
        recipe=job.recipe,
    )


def _render_chunk(jobs: list[Job], root: Path) -> list[PairRecord]:
    return [render(job, root) for job in jobs]


def _run(jobs: Sequence[Job], root: Path, workers: int, desc: str) -> list[PairRecord]:
    """Render jobs in a process pool (chunks keep per-process image caches warm)."""
    n_workers = workers or os.cpu_count() or 1
    chunks = [list(jobs[i : i + 16]) for i in range(0, len(jobs), 16)]
    records: list[PairRecord] = []
    with tqdm(total=len(jobs), desc=desc, unit="pair", leave=False) as bar:
        if n_workers == 1:
            _init_worker()
            for chunk in chunks:
                records.extend(_render_chunk(chunk, root))
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(
                n_workers, initializer=_init_worker, initargs=(os.getpid(),)
            ) as pool:
                try:
                    for chunk_records in pool.map(_render_chunk, chunks, [root] * len(chunks)):
                        records.extend(chunk_records)
                        bar.update(len(chunk_records))
                except BaseException:  # an error or a signal: drop the queued chunks and
                    # wait for the running ones (one per worker), so that no worker writes into
                    # the staging folder after the caller has removed it. (wait=False would
                    # also stop the `with` from waiting: the folder outlived the run.)
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    return records


def _remove_partial(staging: Path) -> bool:
    """Delete a staging folder; True when it is gone (a warning names it when it is not)."""
    shutil.rmtree(staging, ignore_errors=True)
    if staging.exists():
        log.warning("could not remove the partial output %s: delete it by hand", staging)
        return False
    return True


def _where(exc: OSError, target: Path, staging: Path, removed: bool) -> OSError:
    """``exc`` again, naming the output ``target``, the file being written and what became of
    the partial output: ``data/bench: No space left on device (writing data/.bench.partial/
    ...png; the partial output data/.bench.partial was removed)``."""
    if exc.errno is None:
        return exc
    writing = f"writing {exc.filename}; " if exc.filename is not None else ""
    fate = "was removed" if removed else "could not be removed: delete it by hand"
    reason = (
        f"{exc.strerror or os.strerror(exc.errno)} ({writing}the partial output {staging} {fate})"
    )
    return OSError(exc.errno, reason, str(target))


def synthesize(
    images: Sequence[CleanImage],
    spec: DegradationsConfig,
    cfg: SynthesizeConfig,
    pairs_dir: Path,
    bench_dir: Path,
) -> SynthesizeResult:
    """Write training/validation pairs and the benchmark suites.

    Args:
        images: the clean set (from :func:`read_manifest`).
        spec: degradation families, levels and held-out families/combinations.
        cfg: sizes, counts, seed, the held-out content category and the worker count.
        pairs_dir: output folder for ``train/`` and ``val/``.
        bench_dir: output folder for ``<suite>/<family>/``.

    Returns:
        Pair counts per split and per suite/family.

    Raises:
        OSError: writing failed (a full disk...): it names the output folder, the file and
            whether the partial output was removed (it always is, unless the disk refuses).
    """
    held = cfg.held_categories
    cats = sorted({im.category for im in images})
    unmatched = [c for c in held if c not in cats]
    if unmatched:
        raise ValueError(
            f"unseen_content_category {unmatched} matches no clean image; categories: {cats}"
        )
    seen = [im for im in images if im.category not in held]
    by_split = {s: [im for im in seen if im.split == s] for s in ("train", "val", "test")}
    content = [im for im in images if im.category in held]

    plans = {
        "pairs": plan_pairs(by_split["train"], "train", cfg.train_pairs, spec, cfg)
        + plan_pairs(by_split["val"], "val", cfg.val_pairs, spec, cfg)
        + plan_select(by_split["val"], spec, cfg),
        "bench": plan_bench(by_split["test"], content, spec, cfg),
    }
    counts: dict[str, int] = {}
    for name, target in (("pairs", pairs_dir), ("bench", bench_dir)):
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            records = _run(plans[name], staging, cfg.workers, desc=f"synthesize {name}")
            groups: dict[str, list[PairRecord]] = {}
            for job, rec in zip(plans[name], records, strict=True):
                groups.setdefault(job.out_dir, []).append(rec)
            for out_dir, recs in groups.items():
                jsonl = "pairs.jsonl" if name == "pairs" else "recipes.jsonl"
                write_jsonl(staging / out_dir / jsonl, recs)
                counts[out_dir] = len(recs)
            swap_dir(staging, target)
        except OSError as exc:  # a full disk, above all: say where, after cleaning up
            raise _where(exc, target, staging, _remove_partial(staging)) from exc
        finally:
            _remove_partial(staging)
    log.info("synthesized %d pairs in %d groups", sum(counts.values()), len(counts))
    return SynthesizeResult(counts=counts)
