"""The metric conventions of the all-in-one restoration papers, reproduced to 1e-6 dB.

Every all-in-one paper scores PSNR/SSIM with its own few lines of code, and the differences are
larger than the gaps between methods: RGB or Y, which Y weights, 8-bit rounding or truncation,
which SSIM (scikit-image's 7x7 box window, a Gaussian window, float32 or float64 arithmetic).
A :class:`Convention` names one paper's choices and cites the file and line they come from;
:func:`score_pair` scores one restored image against its target exactly as that code does,
including its float32 arithmetic where the reference computes in float32 (a float32 PSNR is only
good to ~2e-6 dB, so matching it to 1e-6 dB means doing the same float32 operations, on the CPU:
a GPU sums in another order and can land one float32 step away).

Two facts about scikit-image decide the SSIM of the skimage-based papers (PromptIR issue #35):

* ``structural_similarity(..., multichannel=True)``: 0.18 loops over the channels; 0.19 maps it
  to ``channel_axis=-1`` with a deprecation warning; from 0.20 on ``multichannel`` is swallowed
  by ``**kwargs`` and ignored, so an (H, W, 3) image is taken for a 3-D volume and the call fails
  with "win_size exceeds image extent". The conventions below always loop over the channels.
* 0.18 computes SSIM in float64 (``im1.astype(np.float64)``); 0.19 and later keep float32 input
  in float32 (``_supported_float_type``), mean in float64, and store the per-channel values in a
  float32 array. The two differ in about the 6th decimal, so each convention records which one
  its paper's environment ran (``airnet.yaml`` pins 0.18.2, PromptIR's ``env.yml`` 0.19.3).

Images enter as the references see them: the target is read as 8-bit and divided by 255 in
float32 (torchvision ``ToTensor``), the restored image is a float32 network output. A float64
input is cast to float32 first; uint8 input is divided by 255 in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, uniform_filter

from girml.metrics.fidelity import _ssim_channel, gaussian_window_1d
from girml.metrics.fidelity import psnr as basicsr_psnr
from girml.metrics.fidelity import ssim as basicsr_ssim

Space = Literal["rgb", "y"]


@dataclass(frozen=True)
class Convention:
    """One paper's PSNR/SSIM convention.

    Attributes:
        name: key in :data:`CONVENTIONS`.
        space: ``"rgb"`` (all three channels) or ``"y"`` (luma only).
        crop_border: pixels removed on each side before scoring.
        round_8bit: whether both images are quantized to 8 bits before scoring (how: ``to_8bit``).
        ssim: the SSIM implementation, a key of :data:`SSIM_IMPLS`.
        reference: repository, file and lines of the paper's evaluation code.
        psnr: the PSNR implementation, a key of :data:`PSNR_IMPLS`.
        y_formula: for ``space="y"``: ``"bt601"`` (MATLAB ``rgb2ycbcr``, 16-235) or
            ``"bt601-bgr-on-rgb"`` (BasicSR's ``bgr2ycbcr`` applied to RGB data, which swaps the
            R and B weights).
        to_8bit: ``"round"`` (to nearest) or ``"truncate"`` (``astype(np.uint8)``).
        clip: whether the restored image is clipped to [0, 1] before scoring.
        input_multiple: the reference crops both images, centred, to a multiple of this many
            pixels before restoring (``crop_img(base=16)``). Data preparation, not scoring:
            :func:`score_pair` expects images already cropped.
    """

    name: str
    space: Space
    crop_border: int
    round_8bit: bool
    ssim: str
    reference: str
    psnr: str = "skimage"
    y_formula: str = "bt601"
    to_8bit: Literal["round", "truncate"] = "round"
    clip: bool = True
    input_multiple: int = 1

    def __post_init__(self) -> None:
        if self.space not in ("rgb", "y"):
            raise ValueError(
                f"convention {self.name!r}: space must be rgb or y, got {self.space!r}"
            )
        if self.crop_border < 0 or self.input_multiple < 1:
            raise ValueError(
                f"convention {self.name!r}: crop_border must be >= 0 and input_multiple >= 1, "
                f"got {self.crop_border} and {self.input_multiple}"
            )
        if self.psnr not in PSNR_IMPLS or self.ssim not in SSIM_IMPLS:
            raise ValueError(
                f"convention {self.name!r}: psnr must be one of {sorted(PSNR_IMPLS)} and ssim one "
                f"of {sorted(SSIM_IMPLS)}, got {self.psnr!r} and {self.ssim!r}"
            )
        if self.space == "y" and not self.round_8bit:
            raise ValueError(f"convention {self.name!r}: a Y convention scores 8-bit images")


# --- PSNR implementations: (restored, target, convention) -> dB ------------------------------


def _psnr_skimage(out: np.ndarray, ref: np.ndarray, _: Convention) -> float:
    """``skimage.metrics.peak_signal_noise_ratio(ref, out, data_range=1)`` on float32 input.

    Both versions that matter (0.18.2, 0.19.3) keep float32 (``_as_floats``), square the
    difference in float32 and average in float64 (``mean_squared_error``).
    """
    diff = ref - out
    err = np.mean(diff**2, dtype=np.float64)
    return float("inf") if err == 0 else float(10 * np.log10(1.0 / err))


def _psnr_torch_float32(out: np.ndarray, ref: np.ndarray, _: Convention) -> float:
    """InstructIR ``metrics.pt_psnr``: everything in float32 torch on an (N, C, H, W) batch."""
    x, x_hat = _nchw(ref), _nchw(out)
    mse = torch.mean((x - x_hat) ** 2, dim=(1, 2, 3))
    if not mse.all():
        return float("inf")
    return float(torch.mean(20 * torch.log10(1.0 / torch.sqrt(mse))).item())


def _psnr_basicsr_float32(out: np.ndarray, ref: np.ndarray, _: Convention) -> float:
    """SwinIR/BasicSR ``calculate_psnr`` on the float32 Y of ``to_y_channel`` (0-255 scale).

    ``np.mean`` of a float32 array is float32 and so is its ``np.sqrt``; NumPy 1.x (the paper's
    environment) then promotes ``255. / sqrt`` to float64.
    """
    mse = np.mean((ref - out) ** 2)
    if mse == 0:
        return float("inf")
    return float(20.0 * np.log10(255.0 / np.float64(np.sqrt(mse))))


def _psnr_gir(out: np.ndarray, ref: np.ndarray, conv: Convention) -> float:
    """girml's own PSNR (:func:`girml.metrics.psnr`, BasicSR in float64) on uint8 images."""
    return basicsr_psnr(out, ref, conv.crop_border, test_y=conv.space == "y")


# --- SSIM implementations ------------------------------------------------------------------


def _skimage_channel(x: np.ndarray, y: np.ndarray, gaussian: bool) -> float:
    """scikit-image ``structural_similarity`` of one channel with ``data_range=1``.

    Box window 7x7 (``gaussian=False``) or Gaussian sigma 1.5 truncated at 3.5 (an 11-tap
    window), sample covariance, statistics cropped by the window radius, in ``x.dtype``.
    """
    if gaussian:
        win = 11

        def filt(a: np.ndarray) -> np.ndarray:
            return gaussian_filter(a, 1.5, mode="reflect", truncate=3.5)
    else:
        win = 7

        def filt(a: np.ndarray) -> np.ndarray:
            return uniform_filter(a, size=win)

    cov_norm = win**2 / (win**2 - 1)
    ux, uy = filt(x), filt(y)
    uxx, uyy, uxy = filt(x * x), filt(y * y), filt(x * y)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    a1, a2, b1, b2 = 2 * ux * uy + c1, 2 * vxy + c2, ux**2 + uy**2 + c1, vx + vy + c2
    s = (a1 * a2) / (b1 * b2)
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean(dtype=np.float64))


def _skimage_ssim(out: np.ndarray, ref: np.ndarray, float32: bool, gaussian: bool) -> float:
    """Per-channel loop of ``structural_similarity(ref, out, data_range=1, channel_axis=-1)``."""
    dtype = np.float32 if float32 else np.float64
    x, y = ref.astype(dtype), out.astype(dtype)
    per_channel = np.array(
        [_skimage_channel(x[..., c], y[..., c], gaussian) for c in range(x.shape[2])], dtype=dtype
    )
    return float(per_channel.mean())


def _ssim_msssim(out: np.ndarray, ref: np.ndarray, _: Convention) -> float:
    """``pytorch_msssim.ssim(x, x_hat, data_range=1., size_average=True)`` in float32 torch.

    An 11-tap Gaussian (sigma 1.5) applied along H then W as 'valid' grouped convolutions, the
    map averaged per channel and then over the channels.
    """
    x, x_hat = _nchw(ref), _nchw(out)
    channels = x.shape[1]
    coords = torch.arange(11, dtype=torch.float) - 11 // 2
    taps = torch.exp(-(coords**2) / (2 * 1.5**2))
    taps = (taps / taps.sum()).reshape(1, 1, 1, 11).repeat(channels, 1, 1, 1)

    def filt(a: torch.Tensor) -> torch.Tensor:
        a = torch.nn.functional.conv2d(a, taps.transpose(2, -1), groups=channels)
        return torch.nn.functional.conv2d(a, taps.transpose(3, -1), groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu1, mu2 = filt(x), filt(x_hat)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = filt(x * x) - mu1_sq
    sigma2_sq = filt(x_hat * x_hat) - mu2_sq
    sigma12 = filt(x * x_hat) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return float(torch.flatten(ssim_map, 2).mean(-1).mean().item())


def _ssim_basicsr_y(out: np.ndarray, ref: np.ndarray, _: Convention) -> float:
    """SwinIR/BasicSR ``calculate_ssim`` on a (H, W) Y image given in float32 on 0-255."""
    taps = gaussian_window_1d(11, 1.5)
    return _ssim_channel(ref.astype(np.float64), out.astype(np.float64), taps)


def _ssim_gir(out: np.ndarray, ref: np.ndarray, conv: Convention) -> float:
    """girml's own SSIM (:func:`girml.metrics.ssim`, BasicSR in float64) on uint8 images."""
    return basicsr_ssim(out, ref, conv.crop_border, test_y=conv.space == "y")


PSNR_IMPLS: dict[str, Callable[[np.ndarray, np.ndarray, Convention], float]] = {
    "skimage": _psnr_skimage,
    "torch-float32": _psnr_torch_float32,
    "basicsr-float32": _psnr_basicsr_float32,
    "gir": _psnr_gir,
}
SSIM_IMPLS: dict[str, Callable[[np.ndarray, np.ndarray, Convention], float]] = {
    "skimage-0.18": lambda o, r, _: _skimage_ssim(o, r, float32=False, gaussian=False),
    "skimage-0.19": lambda o, r, _: _skimage_ssim(o, r, float32=True, gaussian=False),
    "skimage-gaussian": lambda o, r, _: _skimage_ssim(o, r, float32=True, gaussian=True),
    "pytorch-msssim": _ssim_msssim,
    "basicsr-float32": _ssim_basicsr_y,
    "gir": _ssim_gir,
}
# the smallest side each SSIM needs after cropping (its window)
_SSIM_MIN_SIDE = {"skimage-gaussian": 11, "pytorch-msssim": 11, "basicsr-float32": 11, "gir": 11}

# Commits read: XLearning-SCU/2022-CVPR-AirNet@bedea82, va1shn9v/PromptIR@106159a,
# c-yn/AdaIR@ccb8b98, TxpHome/DFPIR@b9ba223, eduardzamfir/MoCE-IR@a1a6e74,
# mv-lab/InstructIR@3c0299f, VainF/pytorch-msssim@b057b07, scikit-image v0.18.2 and v0.19.3.
_SKIMAGE_RGB = "RGB, clip to [0,1], no 8-bit rounding, skimage PSNR/SSIM with data_range=1"
CONVENTIONS: dict[str, Convention] = {
    # XLearning-SCU/2022-CVPR-AirNet utils/val_utils.py:L50-66 compute_psnr_ssim: L52-53
    # np.clip(..., 0, 1) of float32 tensors; L63 peak_signal_noise_ratio(clean, restored,
    # data_range=1); L64 structural_similarity(clean, restored, data_range=1, multichannel=True).
    # airnet.yaml:L78 scikit-image==0.18.2 (float64 SSIM). test.py:L21,L31-33 batch_size=1,
    # per-image mean. utils/dataset_utils.py:L194,L247-248 crop_img(base=16). IDR (CVPR 2023,
    # allinone-5's first paper) calls the same function: IDR metrics/psnr_ssim.py:L10-29.
    "airnet": Convention(
        name="airnet",
        space="rgb",
        crop_border=0,
        round_8bit=False,
        ssim="skimage-0.18",
        reference="XLearning-SCU/2022-CVPR-AirNet utils/val_utils.py:L50-66 (compute_psnr_ssim), "
        f"airnet.yaml:L78 scikit-image==0.18.2; {_SKIMAGE_RGB}, 7x7 box SSIM in float64",
        input_multiple=16,
    ),
    # va1shn9v/PromptIR utils/val_utils.py:L50-66, the same function as AirNet's (L63 PSNR, L64
    # SSIM with multichannel=True); env.yml:L217 scikit-image==0.19.3 (float32 SSIM).
    # test.py:L57,L67-70 batch_size=1, per-image mean; utils/dataset_utils.py:L204,L289-292
    # crop_img(base=16). AdaIR (c-yn/AdaIR utils/val_utils.py:L52-62, env.yaml:L221 0.19.3) and
    # DFPIR (TxpHome/DFPIR utils/val_utils.py:L50-65, Python 3.11 so scikit-image >= 0.22) score
    # the same way.
    "promptir": Convention(
        name="promptir",
        space="rgb",
        crop_border=0,
        round_8bit=False,
        ssim="skimage-0.19",
        reference="va1shn9v/PromptIR utils/val_utils.py:L50-66 (compute_psnr_ssim), "
        f"env.yml:L217 scikit-image==0.19.3; {_SKIMAGE_RGB}, 7x7 box SSIM in float32",
        input_multiple=16,
    ),
    # eduardzamfir/MoCE-IR src/test.py:L101 torch.clamp(restored, 0, 1); L108
    # peak_signal_noise_ratio(clean, restored, data_range=1); L48-49 structural_similarity(...,
    # channel_axis=2, gaussian_weights=True, data_range=1.0) (requirements.txt:L3 unpinned
    # scikit-image, float32 path); src/data/dataset_utils.py:L367-372 crop_img(base=16).
    "moceir": Convention(
        name="moceir",
        space="rgb",
        crop_border=0,
        round_8bit=False,
        ssim="skimage-gaussian",
        reference="eduardzamfir/MoCE-IR src/test.py:L48-49,L101,L107-108; "
        f"{_SKIMAGE_RGB}, gaussian_weights=True (11-tap, sigma 1.5) SSIM in float32",
        input_multiple=16,
    ),
    # mv-lab/InstructIR test.py:L63 torch.mean(pt_psnr(x, x_hat)) with metrics.py:L15-18
    # (float32, maxval 1, x_hat NOT clipped); L65 pytorch_msssim.ssim(x, x_hat, data_range=1.,
    # size_average=True) (VainF/pytorch-msssim pytorch_msssim/ssim.py:L11-25,L28-54,L57-102,
    # L105-161). datasets.py:L73-81,L119-122 crop_img(base=16); utils.py:L35-40 uint8/255.
    "instructir": Convention(
        name="instructir",
        space="rgb",
        crop_border=0,
        round_8bit=False,
        ssim="pytorch-msssim",
        reference="mv-lab/InstructIR test.py:L63,L65 (pt_psnr metrics.py:L15-18; pytorch_msssim."
        "ssim data_range=1); RGB, no clipping, no rounding, float32 torch, 11-tap Gaussian "
        "'valid' SSIM",
        psnr="torch-float32",
        clip=False,
        input_multiple=16,
    ),
    # mv-lab/InstructIR test.py:L20,L40-41: for Rain100L (and other derain sets) it also reports
    # PSNR-Y/SSIM-Y: L71-74 np.clip(..., 0, 1).astype(np.float32), (x*255).astype(np.uint8)
    # (truncation); L76-77 calculate_psnr/ssim(crop_border=0, test_y_channel=True), metrics.py
    # :L25-62,L65-143 (SwinIR). metrics.py:L172-187 to_y_channel -> L247-277 bgr2ycbcr, whose
    # L272 weights [24.966, 128.553, 65.481] are for BGR but get RGB data (PIL, utils.py:L36).
    "instructir-y": Convention(
        name="instructir-y",
        space="y",
        crop_border=0,
        round_8bit=True,
        ssim="basicsr-float32",
        reference="mv-lab/InstructIR test.py:L40-41,L71-79 (metrics.py:L25-143,L172-277); Y of "
        "bgr2ycbcr applied to RGB (R and B weights swapped), uint8 by truncation, float32 Y, "
        "BasicSR 11-tap Gaussian SSIM",
        psnr="basicsr-float32",
        y_formula="bt601-bgr-on-rgb",
        to_8bit="truncate",
        input_multiple=16,
    ),
    # girml's own: girml/metrics/fidelity.py (BasicSR basicsr/metrics/psnr_ssim.py), PSNR-Y and
    # SSIM-Y of ITU-R BT.601 on 8-bit images rounded as girml.core.imageio.to_uint8 does.
    "gir": Convention(
        name="gir",
        space="y",
        crop_border=0,
        round_8bit=True,
        ssim="gir",
        reference="girml/metrics/fidelity.py (BasicSR basicsr/metrics/psnr_ssim.py); BT.601 Y "
        "(16-235) in float64, 8-bit by rounding, 11-tap Gaussian SSIM",
        psnr="gir",
    ),
}


def get_convention(name: str) -> Convention:
    """The convention called ``name``; an unknown name raises a ValueError listing the known."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown metric convention {name!r}; known: {sorted(CONVENTIONS)}"
        ) from None


def _nchw(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) float32 -> contiguous (1, C, H, W) tensor, as a DataLoader batch of one."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))


def _as_float32(name: str, image: object) -> np.ndarray:
    """An (H, W, 3) uint8 or float image as float32 on [0, 1] (uint8 / 255 as ``ToTensor``)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float, got {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return image.astype(np.float32)


def _to_8bit(image: np.ndarray, how: str) -> np.ndarray:
    """Float32 [0, 1] -> uint8: rounded (girml ``to_uint8``) or truncated (``astype``)."""
    scaled = np.clip(image, 0, 1) * np.float32(255)
    return (np.rint(scaled) if how == "round" else scaled).astype(np.uint8)


def _y_float32(image: np.ndarray, formula: str) -> np.ndarray:
    """InstructIR ``to_y_channel`` of a uint8 RGB image: (H, W) float32 on 0-255 (16-235).

    The reference divides by 255 only when the image's maximum exceeds 1 (and then fails in
    ``bgr2ycbcr`` on the float64 it is left with); this always divides.
    """
    weights = [65.481, 128.553, 24.966]
    if formula == "bt601-bgr-on-rgb":
        weights = weights[::-1]
    unit = image.astype(np.float64).astype(np.float32) / 255.0
    y = (np.dot(unit, weights) + 16.0) / 255.0
    return y.astype(np.float32) * np.float32(255)


def _check_side(conv: Convention, shape: tuple[int, ...]) -> None:
    need = _SSIM_MIN_SIDE.get(conv.ssim, 7)
    if min(shape[:2]) < need:
        raise ValueError(
            f"convention {conv.name!r}: its SSIM needs at least {need}x{need} pixels after "
            f"crop_border {conv.crop_border}, got {shape[0]}x{shape[1]}"
        )


def score_pair(
    restored: np.ndarray, target: np.ndarray, convention: Convention
) -> dict[str, float]:
    """PSNR and SSIM of ``restored`` against ``target``, exactly as ``convention``'s code does.

    Args:
        restored: (H, W, 3) uint8, or float on [0, 1] (values outside are clipped unless the
            convention does not clip, as InstructIR's RGB scores).
        target: the ground truth, same shape.
        convention: one of :data:`CONVENTIONS`.

    Returns:
        ``{"psnr": dB, "ssim": value}``; PSNR is ``inf`` for identical images.

    Raises:
        ValueError: different shapes, a non-RGB image, a non-finite value, or too few pixels
            left after ``crop_border`` for the convention's SSIM window.
        TypeError: an input that is not a numpy array.
    """
    if getattr(restored, "shape", None) != getattr(target, "shape", None):
        raise ValueError(
            f"restored and target must have the same shape, got "
            f"{getattr(restored, 'shape', None)} and {getattr(target, 'shape', None)}"
        )
    out, ref = _as_float32("restored", restored), _as_float32("target", target)
    if convention.clip:
        out, ref = np.clip(out, 0, 1), np.clip(ref, 0, 1)
    if convention.round_8bit:
        out, ref = _to_8bit(out, convention.to_8bit), _to_8bit(ref, convention.to_8bit)
    border = convention.crop_border
    own = convention.psnr == "gir"  # girml's own functions crop and convert to Y themselves
    if 2 * border >= min(out.shape[:2]):
        raise ValueError(f"crop_border {border} leaves no pixel of a {out.shape[:2]} image")
    _check_side(convention, (out.shape[0] - 2 * border, out.shape[1] - 2 * border))
    if border and not own:
        out, ref = out[border:-border, border:-border], ref[border:-border, border:-border]
    if convention.space == "y" and not own:
        out, ref = _y_float32(out, convention.y_formula), _y_float32(ref, convention.y_formula)
    return {
        "psnr": PSNR_IMPLS[convention.psnr](out, ref, convention),
        "ssim": SSIM_IMPLS[convention.ssim](out, ref, convention),
    }
