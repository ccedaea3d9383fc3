"""girml.evaluation.protocol_inputs: a protocol's inputs made as its defining paper makes them.

The noise rows are compared with AirNet's own procedure, re-implemented here from its public
code (XLearning-SCU/2022-CVPR-AirNet@bedea82: test.py:L78 seeds numpy once, L118-126 noise
sigma 15, 25, 50 in turn; utils/dataset_utils.py:L186-187,L194 crop, then noise, then uint8).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from girml.config import DegradationsConfig, ProtocolSpec, ProtocolTask
from girml.core.imageio import read_image
from girml.data.testsets import PreparedImage, PreparedSet
from girml.evaluation.protocol_inputs import build_rows, crop_to_multiple
from tests.factories import tiny_params
from tests.protocol_sets import IDS, prepare_folder_sets

SPEC = DegradationsConfig.model_validate(tiny_params()["degradations"])


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PreparedSet]:
    return prepare_folder_sets(
        ["cbsd68", "rain100l", "real-photos"], tmp_path_factory.mktemp("sets")
    )


def _airnet_crop(image: np.ndarray, base: int = 16) -> np.ndarray:
    """AirNet utils/image_utils.py crop_img, as written there."""
    h = image.shape[0]
    w = image.shape[1]
    crop_h = h % base
    crop_w = w % base
    return image[crop_h // 2 : h - crop_h + crop_h // 2, crop_w // 2 : w - crop_w + crop_w // 2, :]


@pytest.fixture
def global_numpy_rng() -> Iterator[None]:
    """AirNet draws from numpy's global generator: leave it as it was."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def test_crop_to_multiple_is_airnets_crop_img() -> None:
    image = np.arange(37 * 53 * 3).reshape(37, 53, 3)
    for base in (1, 8, 16):
        assert np.array_equal(crop_to_multiple(image, base), _airnet_crop(image, base))
    assert crop_to_multiple(image, 16).shape == (32, 48, 3)


def test_noise_rows_are_airnets_noisy_images(sets: dict, global_numpy_rng: None) -> None:
    """One stream for the three rows, images in name order: the same bytes as AirNet's."""
    spec = ProtocolSpec(
        tasks=[ProtocolTask(set="cbsd68", input="gaussian", sigma=s) for s in (15, 25, 50)],
        convention="airnet",
    )
    rows, skipped = build_rows(spec, sets, SPEC)
    assert [row.name for row in rows] == ["cbsd68-s15", "cbsd68-s25", "cbsd68-s50"] and not skipped
    np.random.seed(0)
    for row, sigma in zip(rows, (15, 25, 50), strict=True):
        assert [image.id for image in row.images] == IDS["cbsd68"]
        for image in row.images:
            clean_patch = _airnet_crop(read_image(image.path))
            noise = np.random.randn(*clean_patch.shape)
            noisy_patch = np.clip(clean_patch + noise * sigma, 0, 255).astype(np.uint8)
            lq, gt = image.load()
            assert np.array_equal(lq, noisy_patch) and np.array_equal(gt, clean_patch)


def test_degradation_rows_are_seeded_per_image_and_hold_a_clean_row(sets: dict) -> None:
    spec = ProtocolSpec(tasks=[ProtocolTask(set="cbsd68", input="degradations")], convention="gir")
    rows, _ = build_rows(spec, sets, SPEC)
    families = list(SPEC.families)
    want = [f"cbsd68-{f}-{level}" for f in families for level in ("id", "ood")] + ["cbsd68-clean"]
    assert [row.name for row in rows] == want
    again, _ = build_rows(spec, sets, SPEC)
    for row, same in zip(rows, again, strict=True):
        for image, twin in zip(row.images, same.images, strict=True):
            (lq, gt), (lq2, _) = image.load(), twin.load()
            assert np.array_equal(lq, lq2)  # the same recipe every time
            assert np.array_equal(lq, gt) == (row.name == "cbsd68-clean")
            assert gt.shape == read_image(image.path).shape  # gir cuts nothing


def test_rows_refuse_inputs_their_set_cannot_give(sets: dict) -> None:
    def spec(*tasks: ProtocolTask) -> ProtocolSpec:
        return ProtocolSpec(tasks=list(tasks), convention="gir")

    noisy_real = spec(ProtocolTask(set="real-photos", input="gaussian", sigma=25))
    with pytest.raises(ValueError, match="needs a set of kind clean or pairs, but real-photos"):
        build_rows(noisy_real, sets, SPEC)
    with pytest.raises(ValueError, match="input given needs a set of kind pairs or real"):
        build_rows(spec(ProtocolTask(set="cbsd68")), sets, SPEC)
    absent = {**sets, "lol-v1": None}
    with pytest.raises(ValueError, match="test set lol-v1 was not prepared"):
        build_rows(spec(ProtocolTask(set="lol-v1")), absent, SPEC)
    rows, skipped = build_rows(
        spec(ProtocolTask(set="rain100l"), ProtocolTask(set="lol-v1", optional=True)), absent, SPEC
    )
    assert [row.name for row in rows] == ["rain100l"] and skipped == ["lol-v1"]
    real, _ = build_rows(spec(ProtocolTask(set="real-photos")), sets, SPEC)
    assert real[0].convention is None and real[0].images[0].load()[1] is None


def test_given_pairs_are_cut_alike_and_a_size_mismatch_names_both_files(
    sets: dict, tmp_path: Path
) -> None:
    rows, _ = build_rows(
        ProtocolSpec(tasks=[ProtocolTask(set="rain100l")], convention="airnet"), sets, SPEC
    )
    lq, gt = rows[0].images[0].load()
    assert lq.shape == gt.shape == (32, 48, 3)
    pair = sets["rain100l"].images[0]
    assert pair.gt is not None
    Image.fromarray(read_image(pair.gt)[:20]).save(tmp_path / "short.png")
    broken = PreparedSet(
        "rain100l", "pairs", [PreparedImage(pair.id, pair.lq, tmp_path / "short.png")]
    )
    rows, _ = build_rows(
        ProtocolSpec(tasks=[ProtocolTask(set="rain100l")], convention="airnet"),
        {"rain100l": broken},
        SPEC,
    )
    with pytest.raises(
        ValueError, match=r"rain-001\.png is \(32, 48\) but its ground truth .*short"
    ):
        rows[0].images[0].load()
