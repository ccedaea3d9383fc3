"""The seeded patch stream (girml.training.data): crops, alignment, online degradations,
black regions, clean samples, pair loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from girml.config import DegradationsConfig
from girml.config import parse_section as parse
from girml.core.imageio import write_png
from girml.metrics import psnr
from girml.training.data import (
    PatchParams,
    TrainPatches,
    apply_patch,
    black_region_mask,
    load_pairs,
    make_loader,
    match_size,
    sample_patch,
)
from tests.factories import textured_image, tiny_params
from tests.training.common import identity_pairs


def test_match_size() -> None:
    x = torch.rand(2, 3, 8, 10)
    assert match_size(x, (8, 10)) is x
    up = match_size(x, (16, 20))
    assert up.shape == (2, 3, 16, 20) and up.min() >= 0 and up.max() <= 1
    with pytest.raises(ValueError, match="got shape"):
        match_size(x[0], (16, 20))
    with pytest.raises(ValueError, match="size must be positive"):
        match_size(x, (0, 4))


def test_patch_params_and_alignment() -> None:
    rng = np.random.default_rng(0)
    drawn = [sample_patch(rng, 40, 48, 16) for _ in range(200)]
    assert {(p.flip, p.rot) for p in drawn} == {(f, r) for f in (False, True) for r in range(4)}
    assert all(0 <= p.y <= 24 and 0 <= p.x <= 32 for p in drawn)
    img = torch.rand(2, 3, 40, 48)
    plain = apply_patch(img, PatchParams(y=5, x=7, size=16, flip=False, rot=0))
    assert torch.equal(plain, img[..., 5:21, 7:23])
    turned = apply_patch(img, PatchParams(y=5, x=7, size=16, flip=True, rot=1))
    assert torch.equal(turned, torch.rot90(plain.flip(-1), 1, dims=(-2, -1)))
    with pytest.raises(ValueError, match="patch size must be in"):
        sample_patch(rng, 40, 48, 41)
    with pytest.raises(ValueError, match="does not fit"):
        apply_patch(img, PatchParams(y=30, x=0, size=16, flip=False, rot=0))
    with pytest.raises(ValueError, match=r"rot must be in 0\.\.3, got 4"):
        apply_patch(img, PatchParams(y=0, x=0, size=16, flip=False, rot=4))

    # in the dataset, whatever the crop and transform, GT and LQ stay pixel-aligned
    dataset = TrainPatches(identity_pairs(), patch_size=24, seed=1)
    for k in range(40):
        lq, gt = dataset[k]
        assert lq.shape == gt.shape == (3, 24, 24)
        torch.testing.assert_close(lq, 1.0 - gt, atol=1e-6, rtol=0)


def test_stream_is_a_function_of_seed_and_index() -> None:
    pairs = identity_pairs()
    dataset = TrainPatches(pairs, patch_size=16, seed=5)
    # every epoch visits each pair exactly once, in a fresh order
    epochs = [[dataset.pair_index(e * 6 + i) for i in range(6)] for e in range(3)]
    assert all(sorted(order) == list(range(6)) for order in epochs)
    assert len({tuple(order) for order in epochs}) > 1
    # same (seed, k) -> same sample, from a fresh dataset and whatever was read before
    again = TrainPatches(pairs, patch_size=16, seed=5)
    for k in (17, 3, 30):
        assert all(torch.equal(a, b) for a, b in zip(dataset[k], again[k], strict=True))
    other = TrainPatches(pairs, patch_size=16, seed=6)
    assert not torch.equal(dataset[3][1], other[3][1])

    def collect(start: int, workers: int) -> torch.Tensor:
        loader = make_loader(dataset, batch_size=4, start=start, stop=36, num_workers=workers)
        return torch.cat([torch.cat([lq, gt], dim=1) for lq, gt in loader])

    full = collect(0, 0)
    assert full.shape == (36, 6, 16, 16)
    assert torch.equal(collect(12, 2), full[12:])  # resumed at an offset, with workers
    with pytest.raises(ValueError, match="start <= stop"):
        make_loader(dataset, batch_size=4, start=5, stop=4, num_workers=0)
    with pytest.raises(ValueError, match="patch_size must be in"):
        TrainPatches(pairs, patch_size=41, seed=0)


def test_black_region_mask_shapes_and_range() -> None:
    rng = np.random.default_rng(0)
    masks = torch.cat([black_region_mask(rng, 32) for _ in range(200)])
    assert masks.shape == (200, 1, 32, 32)
    assert masks.min() == 0.0 and masks.max() == 1.0
    black = (masks < 0.01).flatten(1).float().mean(1)
    assert black.min() < 0.1 and black.max() > 0.9  # from a black corner to a black crop
    soft = ((masks > 0.01) & (masks < 0.99)).float().mean()
    assert 0 < soft < 0.2  # a thin ramp at the edge, not a fade
    again = torch.cat([black_region_mask(np.random.default_rng(0), 32) for _ in range(1)])
    assert torch.equal(again[0], masks[0])


def test_black_regions_blacken_the_target_of_online_samples_only() -> None:
    pairs = identity_pairs()
    families = tiny_params()["degradations"]["families"]

    def only(family: str) -> DegradationsConfig:
        raw = {"families": {family: families[family]}, "train_composers": {"single": 1.0}}
        return parse(raw, "degradations", DegradationsConfig)

    noise_only = only("noise")
    with pytest.raises(ValueError, match="black_region_prob"):
        TrainPatches(pairs, 32, 0, 1.0, noise_only, black_region_prob=1.5)
    plain = TrainPatches(pairs, 32, 0, 1.0, noise_only)
    always = TrainPatches(pairs, 32, 0, 1.0, noise_only, black_region_prob=1.0)
    never = TrainPatches(pairs, 32, 0, 1.0, noise_only, black_region_prob=0.0)
    stored = TrainPatches(pairs, 32, 0, 0.0, noise_only, black_region_prob=1.0)
    for k in range(8):
        lq, gt = always[k]
        assert (gt == 0).float().mean() > 0.02  # part of the target is black ...
        assert (gt < plain[k][1] - 1e-6).any()  # ... where the plain crop was not
        black = gt.amax(0) == 0
        assert lq[:, black].mean() < 0.25  # its input is dark there too (noise only)
        assert all(torch.equal(a, b) for a, b in zip(never[k], plain[k], strict=True))
        lq_stored, gt_stored = stored[k]  # stored pairs are already degraded: untouched
        assert torch.equal(gt_stored, plain[k][1])
        torch.testing.assert_close(lq_stored, 1.0 - gt_stored)
    # low-light samples keep their content: a dark input as a whole must still brighten
    low_light = {"ops": {"low_light": {"params": {"gamma": {"id": [1, 3]}, "exposure": 0.5}}}}
    dark_only = parse(
        {"families": {"lowlight": low_light}, "train_composers": {"single": 1.0}},
        "degradations",
        DegradationsConfig,
    )
    dim = TrainPatches(pairs, 32, 0, 1.0, dark_only, black_region_prob=1.0)
    dim_plain = TrainPatches(pairs, 32, 0, 1.0, dark_only)
    for k in range(4):
        assert all(torch.equal(a, b) for a, b in zip(dim[k], dim_plain[k], strict=True))


def test_online_degradations_use_the_spec() -> None:
    pairs = identity_pairs()
    with pytest.raises(ValueError, match="needs a degradations spec"):
        TrainPatches(pairs, patch_size=32, seed=0, online_prob=0.5)
    families = tiny_params()["degradations"]["families"]

    def detail(x: torch.Tensor) -> float:  # mean absolute horizontal gradient
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    def only(family: str) -> DegradationsConfig:
        raw = {"families": {family: families[family]}, "train_composers": {"single": 1.0}}
        return parse(raw, "degradations", DegradationsConfig)

    noise_only, blur_only = only("noise"), only("blur")
    low_res = parse(
        {
            "families": {"resize": {"ops": {"downsample": {"params": {"scale": 2.0}}}}},
            "train_composers": {"single": 1.0},
        },
        "degradations",
        DegradationsConfig,
    )
    lq, gt = TrainPatches(pairs, patch_size=32, seed=0, online_prob=1.0, spec=low_res)[0]
    assert lq.shape == gt.shape == (3, 32, 32)  # upsampled back to the patch size
    assert detail(lq) < detail(gt)
    noisy = TrainPatches(pairs, patch_size=32, seed=0, online_prob=1.0, spec=noise_only)
    blurry = TrainPatches(pairs, patch_size=32, seed=0, online_prob=1.0, spec=blur_only)

    for k in range(6):
        (lq_n, gt_n), (lq_b, gt_b) = noisy[k], blurry[k]
        assert torch.equal(gt_n, gt_b)  # same crop; only the degradation differs
        assert not torch.allclose(lq_n, 1.0 - gt_n)  # not the stored (inverted) LQ
        assert detail(lq_n) > detail(gt_n) > detail(lq_b)
        assert torch.equal(lq_n * 255, (lq_n * 255).round())  # quantised like a PNG
        assert torch.equal(noisy[k][0], lq_n)  # fresh but deterministic
    mixed = TrainPatches(pairs, patch_size=32, seed=0, online_prob=0.5, spec=noise_only)
    stored = sum(
        torch.allclose(lq, 1.0 - gt, atol=1e-6) for lq, gt in (mixed[k] for k in range(40))
    )
    assert 8 <= stored <= 32


def test_low_resolution_lq_is_upsampled_to_the_gt(tmp_path: Path) -> None:
    gt = textured_image(0, 32, 40)
    write_png(tmp_path / "gt" / "a.png", gt)
    write_png(tmp_path / "lq" / "a.png", gt[::2, ::2].copy())
    record = {"id": "a", "gt": "gt/a.png", "lq": "lq/a.png", "family": "resize"}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(record) + "\n")
    pairs = load_pairs(tmp_path / "pairs.jsonl")
    assert pairs.lq[0].shape == gt.shape and pairs.lq[0].dtype == np.uint8
    assert psnr(pairs.lq[0], gt) > 20  # roughly the same picture
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"id": "a", "gt": "gt/a.png"}) + "\n")
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['family', 'lq'\]"):
        load_pairs(tmp_path / "pairs.jsonl")


def test_clean_samples_are_identity_pairs_and_leave_the_stream_alone() -> None:
    pairs = identity_pairs()
    with pytest.raises(ValueError, match="clean_prob"):
        TrainPatches(pairs, 32, 0, clean_prob=-0.1)
    plain = TrainPatches(pairs, 32, 0)
    none = TrainPatches(pairs, 32, 0, clean_prob=0.0)
    every = TrainPatches(pairs, 32, 0, clean_prob=1.0)
    some = TrainPatches(pairs, 32, 0, clean_prob=0.3)
    clean_count = 0
    for k in range(60):
        lq, gt = plain[k]
        assert all(torch.equal(a, b) for a, b in zip(none[k], plain[k], strict=True))
        lq_c, gt_c = every[k]
        assert torch.equal(lq_c, gt_c) and torch.equal(gt_c, gt)  # input = its clean crop
        lq_s, gt_s = some[k]
        assert torch.equal(gt_s, gt)  # same crop either way
        if torch.equal(lq_s, gt_s):
            clean_count += 1
        else:
            assert torch.equal(lq_s, lq)  # a non-clean sample is the plain stream's sample
    assert 8 <= clean_count <= 28  # about 30% of 60
    assert all(torch.equal(a, b) for a, b in zip(some[5], some[5], strict=True))
