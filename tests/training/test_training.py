"""Training: schedule, the seeded patch stream, EMA, resume after kill -9, fingerprints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.config import parse_section as parse
from girml.imageio import write_png
from girml.metrics import psnr
from girml.models import build_model
from girml.training.data import (
    PairSet,
    PatchParams,
    TrainPatches,
    apply_patch,
    black_region_mask,
    load_pairs,
    make_loader,
    match_size,
    sample_patch,
)
from girml.training.loop import (
    EMA,
    KEEP_PREVIOUS,
    TrainResult,
    build_optimizer,
    build_scheduler,
    claim_checkpoint_dir,
    complete_checkpoints,
    lr_factor,
    run_fingerprint,
    set_aside_dirs,
    train,
    validate,
)
from tests.factories import (
    REPO,
    kill_when,
    spawn_python,
    synthesize_tiny,
    textured_image,
    tiny_params,
)

MODEL = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
BASE = TrainConfig(
    seed=3,
    steps=40,
    batch_size=4,
    patch_size=16,
    lr=2e-3,
    warmup_steps=5,
    ema_decay=0.9,
    val_every=20,
    ckpt_every=10,
    log_every=10,
    num_workers=0,
    # the plain loop these tests were written for (params.yaml's defaults switch these on)
    loss="charbonnier",
    online_degradation_prob=0.0,
    clean_prob=0.0,
    channels_last=False,
    num_threads=0,
)


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread: faster for tiny convs on a busy 2-core machine, and the same
    thread count as the killed subprocess, so resumed runs match bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory, spec: DegradationsConfig) -> Path:
    """24 train and 6 val 32x32 pairs synthesized from the tiny clean set."""
    return synthesize_tiny(tmp_path_factory.mktemp("data")) / "pairs"


@pytest.fixture(scope="module")
def baseline(pairs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    """One uninterrupted run of :data:`BASE`, and its checkpoint folder."""
    ckpt = tmp_path_factory.mktemp("baseline-ckpt")
    return train(MODEL, BASE, pairs_dir, ckpt), ckpt


def _weights_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _identity_pairs(n: int = 6, size: int = 40) -> PairSet:
    """Pairs whose LQ is the pixelwise inverse of the GT, to check alignment."""
    gts = tuple(textured_image(i, size, size + 8) for i in range(n))
    return PairSet(
        ids=tuple(f"p{i}" for i in range(n)),
        families=tuple("noise" if i % 2 else "blur" for i in range(n)),
        gt=gts,
        lq=tuple(255 - gt for gt in gts),
    )


# --------------------------------------------------------------------------- schedule


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.05)
    optimizer = build_optimizer(nn.Linear(2, 2), cfg)
    scheduler = build_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(cfg.steps + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3 / 11)
    assert np.all(np.diff(lrs[:11]) > 0)  # warm-up rises ...
    assert lrs[10] == pytest.approx(1e-3)  # ... to the peak
    assert np.all(np.diff(lrs[10:]) <= 1e-15)  # cosine only decays
    assert lrs[55] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))  # half way: the midpoint
    assert lrs[100] == pytest.approx(5e-5)  # the floor
    assert lr_factor(500, 10, 100, 0.05) == pytest.approx(0.05)
    assert lr_factor(0, 0, 1, 0.0) == 1.0
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        lr_factor(-1, 10, 100, 0.05)
    with pytest.raises(ValueError, match="min_lr_ratio must be in"):
        lr_factor(1, 10, 100, 1.5)


# --------------------------------------------------------------------------- data


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
    dataset = TrainPatches(_identity_pairs(), patch_size=24, seed=1)
    for k in range(40):
        lq, gt = dataset[k]
        assert lq.shape == gt.shape == (3, 24, 24)
        torch.testing.assert_close(lq, 1.0 - gt, atol=1e-6, rtol=0)


def test_stream_is_a_function_of_seed_and_index() -> None:
    pairs = _identity_pairs()
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
    pairs = _identity_pairs()
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
    pairs = _identity_pairs()
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


def test_load_pairs_and_validate(pairs_dir: Path) -> None:
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    assert len(val) == 6
    assert all(g.shape == q.shape == (32, 32, 3) for g, q in zip(val.gt, val.lq, strict=True))
    metrics, per_family = validate(nn.Identity(), val, batch_size=4)
    assert metrics["val.psnr_gain"] == pytest.approx(0.0, abs=1e-12)  # identity restores nothing
    assert sum(f["n"] for f in per_family.values()) == 6
    assert set(per_family) == set(val.families)
    weighted = sum(f["psnr_y_input"] * f["n"] for f in per_family.values()) / 6
    assert weighted == pytest.approx(metrics["val.psnr_y_input"])
    with pytest.raises(FileNotFoundError, match="pairs file not found"):
        load_pairs(pairs_dir / "nope" / "pairs.jsonl")


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


def test_ema_tracks_the_model() -> None:
    model = nn.Linear(3, 3)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.module.weight.clone()
    ema.update(model)  # first update: warm-up decay 2/11, mostly the new weights
    expected = before + (model.weight - before) * (1 - 2 / 11)
    torch.testing.assert_close(ema.module.weight, expected)
    assert not ema.module.weight.requires_grad
    restored = EMA(nn.Linear(3, 3), decay=0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 1 and torch.equal(restored.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(model, decay=1.0)


# --------------------------------------------------------------------------- training


def test_loss_falls_and_ema_is_validated(
    baseline: tuple[TrainResult, Path], pairs_dir: Path
) -> None:
    result, ckpt = baseline
    losses = [row["loss"] for row in result.history if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert [row["step"] for row in result.history if "val.psnr_y_model" in row] == [20, 40]
    assert result.resumed_from is None
    assert result.metrics["steps"] == 40 and result.metrics["train_seconds"] > 0
    assert result.metrics["samples_per_second"] > 0
    assert not result.model.training and next(result.model.parameters()).device.type == "cpu"
    assert sum(f["n"] for f in result.per_family.values()) == 6
    assert [step for step, _ in complete_checkpoints(ckpt)] == [30, 40]  # the last two

    # the returned model holds the EMA weights, not the raw ones, and is what was validated
    val = load_pairs(pairs_dir / "val" / "pairs.jsonl")
    raw = build_model(MODEL)
    raw.load_state_dict(load_file(ckpt / "checkpoint-40" / "model.safetensors"))
    assert not _weights_equal(raw, result.model)
    assert validate(result.model, val)[0] == {
        k: v for k, v in result.metrics.items() if k.startswith("val.")
    }
    assert validate(raw, val)[0]["val.psnr_y_model"] != result.metrics["val.psnr_y_model"]


def test_same_seed_same_weights(
    baseline: tuple[TrainResult, Path], pairs_dir: Path, tmp_path: Path
) -> None:
    again = train(MODEL, BASE, pairs_dir, tmp_path / "ckpt")
    assert _weights_equal(again.model, baseline[0].model)
    assert again.metrics["val.psnr_y_model"] == baseline[0].metrics["val.psnr_y_model"]


def test_grad_accumulation_matches_a_bigger_batch(pairs_dir: Path, tmp_path: Path) -> None:
    # batch 4 x 1 and batch 2 x 2 consume the same samples per optimizer step and average the
    # same gradients, so they end at the same weights (up to float rounding)
    cfg = BASE.model_copy(update={"steps": 6, "val_every": 6, "ckpt_every": 6, "loss": "l1"})
    big = train(MODEL, cfg, pairs_dir, tmp_path / "big")
    accum = train(
        MODEL,
        cfg.model_copy(update={"batch_size": 2, "grad_accum": 2}),
        pairs_dir,
        tmp_path / "acc",
    )
    sa, sb = big.model.state_dict(), accum.model.state_dict()
    assert not _weights_equal(big.model, build_model(MODEL))
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], atol=1e-5, rtol=1e-4)


def test_online_training_runs(pairs_dir: Path, spec: DegradationsConfig, tmp_path: Path) -> None:
    cfg = BASE.model_copy(
        update={"steps": 4, "online_degradation_prob": 0.5, "freq_weight": 0.05, "val_every": 4}
    )
    with pytest.raises(ValueError, match="needs the degradations spec"):
        train(MODEL, cfg, pairs_dir, tmp_path / "ckpt")
    result = train(MODEL, cfg, pairs_dir, tmp_path / "ckpt", spec=spec)
    assert result.metrics["steps"] == 4 and np.isfinite(result.metrics["val.psnr_y_model"])


def test_resume_after_kill_matches_an_uninterrupted_run(
    baseline: tuple[TrainResult, Path], pairs_dir: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ckpt"
    code = "\n".join(
        [
            "import time, torch",
            "from pathlib import Path",
            "from girml.config import ModelConfig, TrainConfig",
            "from girml.training.loop import train",
            "torch.set_num_threads(1)",
            f"model = ModelConfig.model_validate_json({MODEL.model_dump_json()!r})",
            f"cfg = TrainConfig.model_validate_json({BASE.model_dump_json()!r})",
            # slow the run down at each log so the kill surely lands before the end
            f"train(model, cfg, Path({str(pairs_dir)!r}), Path({str(ckpt)!r}),",
            "      on_log=lambda step, row: time.sleep(0.3))",
        ]
    )
    proc = spawn_python(code, cwd=REPO)
    kill_when(lambda: bool(complete_checkpoints(ckpt)), proc, 120, poll_s=0.02)
    killed_at = complete_checkpoints(ckpt)[-1][0]
    assert killed_at < BASE.steps

    resumed = train(MODEL, BASE, pairs_dir, ckpt)
    expected = baseline[0]
    assert resumed.resumed_from == killed_at
    # exact on CPU: same samples, same optimizer/scheduler/EMA state, same thread count
    assert _weights_equal(resumed.model, expected.model)
    assert resumed.metrics["val.psnr_y_model"] == expected.metrics["val.psnr_y_model"]
    assert resumed.per_family == expected.per_family

    def trace(history: list[dict[str, float]]) -> list[tuple]:
        return [(r["step"], r.get("loss"), r.get("val.psnr_y_model")) for r in history]

    assert trace(resumed.history) == trace(expected.history)


def test_changed_config_does_not_resume(pairs_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 6, "ckpt_every": 3, "val_every": 6})
    first = train(MODEL, cfg, pairs_dir, ckpt)
    assert first.resumed_from is None and [s for s, _ in complete_checkpoints(ckpt)] == [3, 6]
    (ckpt / "checkpoint-9.tmp").mkdir()  # a save killed half-way
    (ckpt / "notes.txt").write_text("not ours")

    # reporting-only settings keep the fingerprint: the finished run is reused as is
    cosmetic = cfg.model_copy(update={"log_every": 2, "val_every": 3, "num_workers": 1})
    again = train(MODEL, cosmetic, pairs_dir, ckpt)
    assert again.resumed_from == 6 and _weights_equal(again.model, first.model)
    assert not (ckpt / "checkpoint-9.tmp").exists()

    changed = cfg.model_copy(update={"lr": 1e-3})
    fresh = train(MODEL, changed, pairs_dir, ckpt)
    assert fresh.resumed_from is None
    assert not _weights_equal(fresh.model, first.model)
    assert (ckpt / "notes.txt").exists()  # only checkpoints are moved
    # the first config's checkpoints were set aside, not deleted: going back resumes from them
    (aside,) = set_aside_dirs(ckpt)
    assert [s for s, _ in complete_checkpoints(aside)] == [3, 6]
    back = train(MODEL, cfg, pairs_dir, ckpt)
    assert back.resumed_from == 6 and _weights_equal(back.model, first.model)
    assert [s for s, _ in complete_checkpoints(set_aside_dirs(ckpt)[0])] == [3, 6]  # `changed`


def test_bad_config_never_costs_checkpoints(pairs_dir: Path, tmp_path: Path) -> None:
    """A run of another config that dies before its first save leaves every checkpoint."""
    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 4, "ckpt_every": 2, "val_every": 4})
    first = train(MODEL, cfg, pairs_dir, ckpt)
    too_big = cfg.model_copy(update={"patch_size": 4096})  # fails after claiming the folder
    with pytest.raises(ValueError, match="patch_size"):
        train(MODEL, too_big, pairs_dir, ckpt)
    with pytest.raises(KeyError, match="unet9000"):
        train(MODEL.model_copy(update={"type": "unet9000"}), cfg, pairs_dir, ckpt)
    assert complete_checkpoints(ckpt) == []
    (aside,) = set_aside_dirs(ckpt)  # the same set, moved once, never deleted
    assert [s for s, _ in complete_checkpoints(aside)] == [2, 4]
    again = train(MODEL, cfg, pairs_dir, ckpt)
    assert again.resumed_from == 4 and _weights_equal(again.model, first.model)

    # a new config's first save prunes all but the last KEEP_PREVIOUS set-aside sets
    other = cfg.model_copy(update={"lr": 1e-3})
    third = cfg.model_copy(update={"lr": 3e-4})
    train(MODEL, other, pairs_dir, ckpt)
    assert len(set_aside_dirs(ckpt)) == 1
    train(MODEL, third, pairs_dir, ckpt)
    assert len(set_aside_dirs(ckpt)) == KEEP_PREVIOUS == 1
    assert [s for s, _ in complete_checkpoints(ckpt)] == [2, 4]


def test_fingerprint_covers_config_and_pairs(pairs_dir: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_bytes((pairs_dir / "train" / "pairs.jsonl").read_bytes())
    base = run_fingerprint(MODEL, BASE, jsonl, None, 1)
    assert run_fingerprint(MODEL, BASE.model_copy(update={"log_every": 1}), jsonl, None, 1) == base
    assert run_fingerprint(MODEL, BASE.model_copy(update={"steps": 41}), jsonl, None, 1) != base
    assert run_fingerprint(MODEL.model_copy(update={"width": 16}), BASE, jsonl, None, 1) != base
    assert run_fingerprint(MODEL, BASE, jsonl, None, 2) != base
    jsonl.write_bytes(jsonl.read_bytes()[:-200])
    changed = run_fingerprint(MODEL, BASE, jsonl, None, 1)
    assert changed["config"] == base["config"] and changed["train_pairs"] != base["train_pairs"]

    ckpt = tmp_path / "ckpt"
    assert not claim_checkpoint_dir(ckpt, base)  # empty folder: nothing to resume
    (ckpt / "checkpoint-4").mkdir()
    assert claim_checkpoint_dir(ckpt, base) and (ckpt / "checkpoint-4").exists()
    assert not claim_checkpoint_dir(ckpt, changed) and not (ckpt / "checkpoint-4").exists()
    (aside,) = set_aside_dirs(ckpt)
    assert (aside / "checkpoint-4").is_dir()
    assert json.loads((aside / "fingerprint.json").read_text()) == base
    assert claim_checkpoint_dir(ckpt, base) and (ckpt / "checkpoint-4").is_dir()
    assert set_aside_dirs(ckpt) == []


# --------------------------------------------------------------------------- do-no-harm, speed


def test_clean_samples_are_identity_pairs_and_leave_the_stream_alone() -> None:
    pairs = _identity_pairs()
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


def test_speed_switches_train_the_same_model(pairs_dir: Path, tmp_path: Path) -> None:
    # channels_last and the fused optimizer change float rounding only, not what is learned
    cfg = BASE.model_copy(update={"steps": 6, "val_every": 6, "ckpt_every": 6})
    plain = train(MODEL, cfg, pairs_dir, tmp_path / "plain")
    fast_cfg = cfg.model_copy(update={"channels_last": True, "fused_optim": True})
    fast = train(MODEL, fast_cfg, pairs_dir, tmp_path / "fast")
    assert not _weights_equal(plain.model, build_model(MODEL))
    sa, sb = plain.model.state_dict(), fast.model.state_dict()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], atol=1e-4, rtol=1e-3)
    assert abs(plain.metrics["val.psnr_y_model"] - fast.metrics["val.psnr_y_model"]) < 0.01
    assert build_optimizer(build_model(MODEL), fast_cfg).defaults["fused"] is True


def test_num_threads_holds_for_the_run_and_is_restored(pairs_dir: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    cfg = BASE.model_copy(update={"steps": 4, "log_every": 2, "num_threads": 2})
    before = torch.get_num_threads()  # 1, from the module's fixture
    train(
        MODEL,
        cfg,
        pairs_dir,
        tmp_path / "t",
        on_log=lambda *_: seen.append(torch.get_num_threads()),
    )
    assert seen == [2, 2] and torch.get_num_threads() == before
    with pytest.raises(FileNotFoundError):  # restored after a failure too
        train(MODEL, cfg, tmp_path / "no-pairs", tmp_path / "u")
    assert torch.get_num_threads() == before


def test_compile_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    from girml.training.loop import compile_or_eager

    model = build_model(MODEL)
    example = torch.rand(2, 3, 32, 32)
    expected = model(example).detach()

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    assert compile_or_eager(model, example) is False
    assert torch.equal(model(example).detach(), expected)  # runs eagerly, same function
    assert all(p.grad is None for p in model.parameters())


def test_init_from_fine_tunes_from_a_model_folder(pairs_dir: Path, tmp_path: Path) -> None:
    from girml.models.store import save_model_dir

    cfg = BASE.model_copy(update={"steps": 4, "val_every": 4, "ckpt_every": 4})
    source = train(MODEL, cfg, pairs_dir, tmp_path / "src")
    folder = save_model_dir(source.model, MODEL, tmp_path / "model")
    # zero steps of fine-tuning would be the source; one step at a tiny lr stays close to it
    tuned_cfg = cfg.model_copy(update={"init_from": str(folder), "steps": 1, "lr": 1e-9})
    tuned = train(MODEL, tuned_cfg, pairs_dir, tmp_path / "tuned")
    tiny_lr = cfg.model_copy(update={"steps": 1, "lr": 1e-9})
    scratch = train(MODEL, tiny_lr, pairs_dir, tmp_path / "s")
    sa, st = source.model.state_dict(), tuned.model.state_dict()
    for key in sa:
        torch.testing.assert_close(st[key], sa[key], atol=1e-5, rtol=1e-4)
    assert not _weights_equal(scratch.model, tuned.model)
    # the source is part of the fingerprint: other checkpoints are not resumed
    assert run_fingerprint(MODEL, tuned_cfg, pairs_dir / "train" / "pairs.jsonl", None, 1) != (
        run_fingerprint(MODEL, cfg, pairs_dir / "train" / "pairs.jsonl", None, 1)
    )


def test_bad_init_from_fails_before_touching_checkpoints(pairs_dir: Path, tmp_path: Path) -> None:
    from girml.models.store import save_model_dir

    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 3, "val_every": 3, "ckpt_every": 3})
    train(MODEL, cfg, pairs_dir, ckpt)
    before = sorted(p.name for p in ckpt.iterdir())
    missing = cfg.model_copy(update={"init_from": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match=r"train\.init_from=.*nowhere"):
        train(MODEL, missing, pairs_dir, ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == before
    wider = MODEL.model_copy(update={"width": MODEL.width * 2})
    other = save_model_dir(build_model(wider), wider, tmp_path / "wide")
    with pytest.raises(ValueError, match=r"do not fit params\.yaml's model section"):
        train(MODEL, cfg.model_copy(update={"init_from": str(other)}), pairs_dir, tmp_path / "c2")
