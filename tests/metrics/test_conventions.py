"""girml.metrics.conventions: each paper's PSNR/SSIM reproduced to 1e-6 against its own code.

Each ``_ref_*`` function below is a transcription of the paper's evaluation code, written from
the file and lines cited beside it (read in the public repositories at the commits named in
girml/metrics/conventions.py). Where the reference calls scikit-image, the transcription calls
the installed scikit-image the way the paper's pinned version behaves; where it calls OpenCV or
pytorch_msssim (not installed here), the transcription spells out their arithmetic.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from girml.core.imageio import to_uint8
from girml.metrics import psnr, ssim
from girml.metrics.conventions import CONVENTIONS, Convention, get_convention, score_pair

PSNR_TOL = 1e-6  # dB
SSIM_TOL = 1e-6


# --- image pairs ------------------------------------------------------------------------------


def _random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 target and a float32 'network output' near it, partly outside [0, 1]."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    restored = target / 255.0 + rng.normal(0, 0.06, target.shape)
    return restored.astype(np.float32), target


def _structured_pair() -> tuple[np.ndarray, np.ndarray]:
    """A photo crop and a smoothed, brightened, noisy version of it."""
    target = data.astronaut()[100:164, 180:260]
    rng = np.random.default_rng(7)
    smooth = (target[:-2, :-2].astype(np.float64) + target[2:, 2:]) / 2.0
    restored = np.pad(smooth, ((1, 1), (1, 1), (0, 0)), mode="edge") / 255.0 * 1.04 + 0.01
    restored += rng.normal(0, 0.01, restored.shape)
    return restored.astype(np.float32), target


def _quantized_pair() -> tuple[np.ndarray, np.ndarray]:
    """A restored image already saved as 8-bit (a method's PNG output) and its target."""
    restored, target = _random_pair(3)
    return np.clip(np.rint(restored * 255), 0, 255).astype(np.uint8), target


PAIRS = {
    "random0": lambda: _random_pair(0),
    "random1": lambda: _random_pair(1),
    "structured": _structured_pair,
    "uint8": _quantized_pair,
}


def _tensors(restored: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """What the reference test loops hold: (1, 3, H, W) float32 restored and clean tensors.

    The clean image is ``ToTensor`` of the uint8 file (uint8 / 255 in float32); a uint8 restored
    image stands for a saved output read back the same way.
    """

    def to_t(image: np.ndarray) -> torch.Tensor:
        arr = image.astype(np.float32) / np.float32(255) if image.dtype == np.uint8 else image
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)[None]))

    return to_t(restored), to_t(target)


# --- transcriptions of the reference code ----------------------------------------------------


def _ref_compute_psnr_ssim(recoverd: torch.Tensor, clean: torch.Tensor, skimage_018: bool):
    """XLearning-SCU/2022-CVPR-AirNet and va1shn9v/PromptIR utils/val_utils.py:L50-66.

    ``structural_similarity(..., multichannel=True)`` is written ``channel_axis=-1`` (its 0.19
    meaning; current scikit-image ignores ``multichannel``). scikit-image 0.18.2 (AirNet's
    airnet.yaml:L78) cast the images to float64 inside SSIM, so for AirNet the float64 images are
    passed; 0.19.3 (PromptIR's env.yml:L217) kept float32, as the installed version does.
    """
    assert recoverd.shape == clean.shape
    recoverd = np.clip(recoverd.detach().cpu().numpy(), 0, 1)
    clean = np.clip(clean.detach().cpu().numpy(), 0, 1)
    recoverd = recoverd.transpose(0, 2, 3, 1)
    clean = clean.transpose(0, 2, 3, 1)
    psnr_sum, ssim_sum = 0, 0
    for i in range(recoverd.shape[0]):
        psnr_sum += peak_signal_noise_ratio(clean[i], recoverd[i], data_range=1)
        a, b = (clean[i], recoverd[i])
        if skimage_018:
            a, b = a.astype(np.float64), b.astype(np.float64)
        ssim_sum += structural_similarity(a, b, data_range=1, channel_axis=-1)
    return psnr_sum / recoverd.shape[0], ssim_sum / recoverd.shape[0]


def _ref_moceir(restored: torch.Tensor, clean_patch: torch.Tensor):
    """eduardzamfir/MoCE-IR src/test.py:L101-108 with calc_ssim of L48-49."""
    restored = torch.clamp(restored, 0, 1)
    restored = restored.cpu().detach().permute(0, 2, 3, 1).squeeze(0).numpy()
    clean = clean_patch.cpu().detach().permute(0, 2, 3, 1).squeeze(0).numpy()
    ssim_val = structural_similarity(
        clean, restored, channel_axis=2, gaussian_weights=True, data_range=1.0, full=False
    )
    return peak_signal_noise_ratio(clean, restored, data_range=1), ssim_val


def _ref_pt_psnr(y_true: torch.Tensor, y_pred: torch.Tensor, maxval: float = 1.0):
    """mv-lab/InstructIR metrics.py:L15-18."""
    mse = torch.mean((y_true - y_pred) ** 2, dim=(1, 2, 3))
    psnr_t = 20 * torch.log10(maxval / torch.sqrt(mse))
    return psnr_t.unsqueeze(1)


def _ref_msssim_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """VainF/pytorch-msssim pytorch_msssim/ssim.py:L11-25 (_fspecial_gauss_1d), L28-54
    (gaussian_filter), L57-102 (_ssim), L105-161 (ssim with size_average=True, win 11, 1.5)."""
    size, sigma = 11, 1.5
    coords = torch.arange(size, dtype=torch.float)
    coords -= size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g /= g.sum()
    win = g.unsqueeze(0).unsqueeze(0)
    win = win.repeat([x.shape[1]] + [1] * (len(x.shape) - 1))

    def gaussian_filter(inp: torch.Tensor) -> torch.Tensor:
        out = inp
        for i, s in enumerate(inp.shape[2:]):
            assert s >= win.shape[-1]
            out = torch.nn.functional.conv2d(
                out, weight=win.transpose(2 + i, -1), stride=1, padding=0, groups=inp.shape[1]
            )
        return out

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu1, mu2 = gaussian_filter(x), gaussian_filter(y)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = 1.0 * (gaussian_filter(x * x) - mu1_sq)
    sigma2_sq = 1.0 * (gaussian_filter(y * y) - mu2_sq)
    sigma12 = 1.0 * (gaussian_filter(x * y) - mu1_mu2)
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return torch.flatten(ssim_map, 2).mean(-1).mean()


def _ref_instructir_rgb(x: torch.Tensor, x_hat: torch.Tensor):
    """mv-lab/InstructIR test.py:L63-66 (x is the HQ image, x_hat the unclipped output)."""
    psnr_restore = torch.mean(_ref_pt_psnr(x, x_hat))
    ssim_restore = _ref_msssim_ssim(x, x_hat, data_range=1.0)
    return psnr_restore.item(), ssim_restore.item()


def _ref_bgr2ycbcr_y(img: np.ndarray) -> np.ndarray:
    """mv-lab/InstructIR metrics.py:L247-277 (y_only=True) with L190-244 for float32 input."""
    img_type = img.dtype
    assert img_type == np.float32  # _convert_input_type_range raises for other floats
    img = img.astype(np.float32)
    out_img = np.dot(img, [24.966, 128.553, 65.481]) + 16.0
    out_img /= 255.0
    return out_img.astype(img_type)


def _ref_to_y_channel(img: np.ndarray) -> np.ndarray:
    """mv-lab/InstructIR metrics.py:L172-187."""
    if np.max(img) > 1.0:
        img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        img = _ref_bgr2ycbcr_y(img)
        img = img[..., None]
    return img * 255.0


def _ref_swinir_psnr(img1: np.ndarray, img2: np.ndarray) -> float:
    """mv-lab/InstructIR metrics.py:L25-62 with crop_border=0, test_y_channel=True.

    The final ``255. / np.sqrt(mse)`` is float64 as under NumPy 1.x (the paper's environment;
    NumPy 2 would keep the float32 scalar).
    """
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    img1, img2 = _ref_to_y_channel(img1), _ref_to_y_channel(img2)
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float("inf")
    return 20.0 * np.log10(255.0 / np.float64(np.sqrt(mse)))


def _ref_swinir_ssim_channel(img1: np.ndarray, img2: np.ndarray) -> float:
    """mv-lab/InstructIR metrics.py:L65-96; ``cv2.filter2D(img, -1, window)[5:-5, 5:-5]`` is the
    2-D correlation with the 11x11 window where it fits inside the image (border mode unused)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    x = np.arange(11) - 5.0
    kernel = np.exp(-(x**2) / (2 * 1.5**2))
    kernel /= kernel.sum()  # cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel)

    def filter2d(img: np.ndarray) -> np.ndarray:
        return correlate(img, window, mode="mirror")[5:-5, 5:-5]

    mu1, mu2 = filter2d(img1), filter2d(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = filter2d(img1**2) - mu1_sq
    sigma2_sq = filter2d(img2**2) - mu2_sq
    sigma12 = filter2d(img1 * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return ssim_map.mean()


def _ref_swinir_ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    """mv-lab/InstructIR metrics.py:L99-143 with crop_border=0, test_y_channel=True."""
    img1, img2 = img1.astype(np.float64), img2.astype(np.float64)
    img1, img2 = _ref_to_y_channel(img1), _ref_to_y_channel(img2)
    ssims = [_ref_swinir_ssim_channel(img1[..., i], img2[..., i]) for i in range(img1.shape[2])]
    return np.array(ssims).mean()


def _ref_instructir_y(x: torch.Tensor, x_hat: torch.Tensor):
    """mv-lab/InstructIR test.py:L70-79 (the derain sets' Y scores)."""
    _x_hat = np.clip(x_hat[0].permute(1, 2, 0).cpu().detach().numpy(), 0, 1).astype(np.float32)
    _x = np.clip(x[0].permute(1, 2, 0).cpu().detach().numpy(), 0, 1).astype(np.float32)
    _x_hat = (_x_hat * 255).astype(np.uint8)
    _x = (_x * 255).astype(np.uint8)
    return _ref_swinir_psnr(_x, _x_hat), _ref_swinir_ssim(_x, _x_hat)


def _reference(name: str, restored: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    out_t, ref_t = _tensors(restored, target)
    if name == "airnet":
        return _ref_compute_psnr_ssim(out_t, ref_t, skimage_018=True)
    if name == "promptir":
        return _ref_compute_psnr_ssim(out_t, ref_t, skimage_018=False)
    if name == "moceir":
        return _ref_moceir(out_t, ref_t)
    if name == "instructir":
        return _ref_instructir_rgb(ref_t, out_t)
    if name == "instructir-y":
        return _ref_instructir_y(ref_t, out_t)
    # gir: girml's own evaluation (tests/metrics/test_fidelity.py holds it to BasicSR) on the
    # output as girml saves it
    out8 = restored if restored.dtype == np.uint8 else to_uint8(out_t)
    return psnr(out8, target, 0, test_y=True), ssim(out8, target, 0, test_y=True)


# --- conformance ----------------------------------------------------------------------------


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_score_pair_matches_the_reference_code(name: str, pair: str) -> None:
    restored, target = PAIRS[pair]()
    got = score_pair(restored, target, CONVENTIONS[name])
    want_psnr, want_ssim = _reference(name, restored, target)
    assert abs(got["psnr"] - want_psnr) <= PSNR_TOL, (got, want_psnr)
    assert abs(got["ssim"] - want_ssim) <= SSIM_TOL, (got, want_ssim)


def test_float64_input_scores_as_its_float32_tensor() -> None:
    restored, target = _structured_pair()
    for conv in CONVENTIONS.values():
        assert score_pair(restored.astype(np.float64), target, conv) == score_pair(
            restored, target, conv
        )
        assert score_pair(restored, target / 255.0, conv) == score_pair(restored, target, conv)


def test_identical_images_score_perfectly() -> None:
    _, target = _structured_pair()
    for conv in CONVENTIONS.values():
        got = score_pair(target, target, conv)
        assert got["psnr"] == math.inf and got["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_skimage_multichannel_argument_is_ignored_by_current_scikit_image() -> None:
    """PromptIR issue #35: the papers' ``multichannel=True`` no longer loops over channels."""
    restored, target = _structured_pair()
    ref = target.astype(np.float32) / 255
    with pytest.raises(ValueError, match="win_size exceeds image extent"):
        structural_similarity(ref, restored, data_range=1, multichannel=True)


# --- the conventions really differ --------------------------------------------------------------


def test_swapped_conventions_are_told_apart() -> None:
    """Scoring with the wrong convention misses the reference by far more than the tolerance."""
    restored, target = _structured_pair()
    scores = {name: score_pair(restored, target, conv) for name, conv in CONVENTIONS.items()}
    for a in scores:
        for b in scores:
            if a == b or {a, b} == {"airnet", "promptir"}:  # those two differ only in float bits
                continue
            gap = max(
                abs(scores[a]["psnr"] - scores[b]["psnr"]),
                abs(scores[a]["ssim"] - scores[b]["ssim"]) * 100,
            )
            assert gap > 1e-3, (a, b, scores[a], scores[b])


def test_y_weights_follow_the_formula() -> None:
    """An error in the red channel alone weighs 65.481 in BT.601 Y, 24.966 in InstructIR's."""
    _, target = _structured_pair()
    restored = target.copy()
    restored[..., 0] = np.where(
        restored[..., 0] < 128, restored[..., 0] + 20, restored[..., 0] - 20
    )
    bt601 = dataclasses.replace(CONVENTIONS["instructir-y"], y_formula="bt601", name="bt601")
    swapped = score_pair(restored, target, CONVENTIONS["instructir-y"])["psnr"]
    straight = score_pair(restored, target, bt601)["psnr"]
    # Y is rounded to float32 before the difference, so allow a little more than exact
    assert straight - swapped == pytest.approx(-20 * math.log10(65.481 / 24.966), abs=1e-3)
    rgb = score_pair(restored, target, CONVENTIONS["airnet"])["psnr"]
    assert abs(rgb - straight) > 1.0


def test_crop_border_leaves_out_the_border() -> None:
    _, target = _structured_pair()
    restored = target.copy()
    restored[:3] = 255 - restored[:3]
    gir = CONVENTIONS["gir"]
    assert score_pair(restored, target, gir)["psnr"] < 40
    cropped = score_pair(restored, target, dataclasses.replace(gir, crop_border=3))
    assert cropped["psnr"] == math.inf
    airnet = dataclasses.replace(CONVENTIONS["airnet"], crop_border=3)
    assert score_pair(restored, target, airnet)["psnr"] == math.inf


def test_rounding_and_truncation_differ() -> None:
    """0.6 of a grey level above each target value: rounding adds 1, truncation nothing."""
    _, target = _structured_pair()
    restored = (np.minimum(target, 254).astype(np.float32) + 0.6) / 255
    conv = CONVENTIONS["instructir-y"]
    assert score_pair(restored, np.minimum(target, 254), conv)["psnr"] == math.inf
    rounded = dataclasses.replace(conv, to_8bit="round")
    assert score_pair(restored, np.minimum(target, 254), rounded)["psnr"] < 60
    # without 8-bit rounding the 0.6 level error stays: float PSNR is 20 log10(255 / 0.6)
    float_psnr = score_pair(restored, np.minimum(target, 254), CONVENTIONS["promptir"])["psnr"]
    assert float_psnr == pytest.approx(20 * math.log10(255 / 0.6), abs=1e-3)


def test_clipping_matters_only_where_the_convention_clips() -> None:
    _, target = _structured_pair()
    restored = target.astype(np.float32) / 255
    restored[target == 255] = 1.2  # over-range values where the target is white
    assert score_pair(restored, target, CONVENTIONS["promptir"])["psnr"] == math.inf
    assert score_pair(restored, target, CONVENTIONS["instructir"])["psnr"] < 60


# --- errors ------------------------------------------------------------------------------------


def test_bad_inputs_are_clear_errors() -> None:
    restored, target = _structured_pair()
    conv = CONVENTIONS["promptir"]
    with pytest.raises(ValueError, match=r"same shape.*\(64, 80, 3\).*\(64, 79, 3\)"):
        score_pair(restored, target[:, :79], conv)
    with pytest.raises(TypeError, match="numpy array"):
        score_pair(torch.zeros(64, 80, 3), torch.zeros(64, 80, 3), conv)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        score_pair(restored[..., 0], target[..., 0], conv)
    bad = restored.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        score_pair(bad, target, conv)
    with pytest.raises(ValueError, match="at least 11x11"):
        score_pair(restored[:10], target[:10], CONVENTIONS["instructir"])
    with pytest.raises(ValueError, match="leaves no pixel"):
        score_pair(restored, target, dataclasses.replace(conv, crop_border=40))


def test_conventions_are_validated_and_looked_up_by_name() -> None:
    assert get_convention("airnet") is CONVENTIONS["airnet"]
    with pytest.raises(ValueError, match=r"unknown metric convention 'nope'.*'airnet'"):
        get_convention("nope")
    with pytest.raises(ValueError, match="ssim one of"):
        Convention("x", "rgb", 0, False, "matlab", "ref")
    with pytest.raises(ValueError, match="crop_border"):
        Convention("x", "rgb", -1, False, "skimage-0.19", "ref")
    with pytest.raises(ValueError, match="8-bit"):
        Convention("x", "y", 0, False, "basicsr-float32", "ref", psnr="basicsr-float32")
    for name, conv in CONVENTIONS.items():
        assert conv.name == name and ".py" in conv.reference
