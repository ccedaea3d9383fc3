"""girml.metrics.lpips: LPIPS (AlexNet v0.1) loading, errors and metric properties."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from skimage import data

from girml.core.imageio import to_tensor, to_uint8
from girml.degradations import OPS
from girml.metrics.lpips import LpipsMetric, load_lpips


def _random_weights(path: Path, seed: int = 0) -> Path:
    gen = torch.Generator().manual_seed(seed)
    state = {
        k: torch.rand(v.shape, generator=gen) * (0.1 if k.startswith("lin") else 0.05)
        for k, v in LpipsMetric().state_dict().items()
    }
    torch.save(state, path)
    return path


def test_lpips_state_dict_keys_are_the_documented_ones() -> None:
    convs = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}
    heads = {f"lin{i}.model.1.weight" for i in range(5)}
    assert set(LpipsMetric().state_dict()) == convs | heads


def test_lpips_without_path_is_not_computed() -> None:
    assert load_lpips(None) is None


def test_lpips_random_weights_properties(tmp_path: Path) -> None:
    metric = load_lpips(_random_weights(tmp_path / "lpips_alex.pth"))
    assert metric is not None and not metric.training
    img = data.astronaut()[:64, :48]
    other = to_uint8(OPS.get("gaussian_noise")(to_tensor(img), 30.0, seed=1))
    assert metric.score(img, img) == 0.0
    d = metric.score(img, other)
    assert d > 0
    assert metric.score(other, img) == pytest.approx(d, rel=1e-6)
    assert metric.score(img, other) == d  # deterministic
    batch = metric(to_tensor(img).repeat(2, 1, 1, 1), to_tensor(other).repeat(2, 1, 1, 1))
    assert batch.shape == (2,)


def test_lpips_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        load_lpips(tmp_path / "nowhere.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"corrupt\.pth: unreadable LPIPS weights"):
        load_lpips(corrupt)
    partial = tmp_path / "partial.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, partial)
    with pytest.raises(ValueError, match=r"partial\.pth: not AlexNet-LPIPS v0\.1 weights"):
        load_lpips(partial)


def test_lpips_rejects_small_or_mismatched_images(tmp_path: Path) -> None:
    metric = load_lpips(_random_weights(tmp_path / "w.pth"))
    assert metric is not None
    img = data.astronaut()
    with pytest.raises(ValueError, match="H, W >= 31"):
        metric.score(img[:30, :40], img[:30, :40])
    with pytest.raises(ValueError, match="equal shapes"):
        metric.score(img[:40, :40], img[:40, :41])
