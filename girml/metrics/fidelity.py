"""Full-reference fidelity: BT.601 luma, PSNR, SSIM and the block brightness shift.

PSNR and SSIM follow the BasicSR convention (``basicsr/metrics/psnr_ssim.py``): 8-bit images,
optional ``crop_border`` pixels removed on each side, optional evaluation on the Y channel of
ITU-R BT.601 YCbCr (``test_y``). One deliberate difference from BasicSR: its ``to_y_channel``
converts in float32, :func:`rgb_to_y` in float64, so Y-channel scores can differ from BasicSR's in
the 7th significant digit.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (16-235 range) of an RGB image.

    Args:
        image: (H, W, 3) uint8 in [0, 255] or float in [0, 255].

    Returns:
        (H, W) float64 in [16, 235], as MATLAB's ``rgb2ycbcr`` (BasicSR's ``bgr2ycbcr``).
    """
    img = image.astype(np.float64)
    return img @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _prepare(img: np.ndarray, crop_border: int, test_y: bool) -> np.ndarray:
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(img) if test_y else img.astype(np.float64)


def _prepare_pair(
    a: np.ndarray, b: np.ndarray, crop_border: int, test_y: bool, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both images cropped and as float64 (Y or RGB), after checking shapes and ``crop_border``.

    Raises:
        ValueError: different shapes, or a ``crop_border`` that leaves no pixel (the message
            names ``metric``).
    """
    if a.shape != b.shape:
        raise ValueError(f"{metric} needs equal shapes, got {a.shape} and {b.shape}")
    if crop_border < 0 or 2 * crop_border >= min(a.shape[:2]):
        raise ValueError(f"crop_border must be in [0, {min(a.shape[:2]) // 2}), got {crop_border}")
    return _prepare(a, crop_border, test_y), _prepare(b, crop_border, test_y)


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, test_y: bool = False) -> float:
    """Peak signal-to-noise ratio in dB between two 8-bit images.

    Args:
        a: (H, W, 3) uint8 in [0, 255].
        b: same shape as ``a``.
        crop_border: pixels removed on each side before computing.
        test_y: compute on the Y channel of BT.601 YCbCr instead of RGB.

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    x, y = _prepare_pair(a, b, crop_border, test_y, "psnr")
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def check_rgb_uint8(name: str, image: object) -> np.ndarray:
    """Return ``image`` unchanged, raising unless it is an (H, W, 3) uint8 array.

    Args:
        name: what is checked, for the message (``"niqe image"``, ``"baseline nlm"``).
        image: the candidate.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def gaussian_window_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps, as OpenCV's ``getGaussianKernel(size, sigma)``.

    Args:
        size: odd number of taps, >= 1.
        sigma: standard deviation in pixels, > 0.

    Returns:
        (size,) float64 summing to 1.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 1, got {size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def _ssim_channel(x: np.ndarray, y: np.ndarray, taps: np.ndarray) -> float:
    """BasicSR ``_ssim``: mean SSIM map over the 'valid' region of one float64 8-bit channel."""
    pad = len(taps) // 2
    stack = np.stack([x, y, x * x, y * y, x * y])
    # The 2-D Gaussian window is separable; cropping ``pad`` pixels keeps only positions where
    # the window lies inside the image, so the border mode never matters (as BasicSR's crop of
    # cv2.filter2D's output).
    for axis in (1, 2):
        stack = correlate1d(stack, taps, axis=axis, mode="reflect")
    mu1, mu2, xx, yy, xy = stack[:, pad:-pad, pad:-pad]
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq, sigma2_sq, sigma12 = xx - mu1_sq, yy - mu2_sq, xy - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)) / (
        (mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2)
    )
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, test_y: bool = False) -> float:
    """Structural similarity between two 8-bit images, exactly as BasicSR's ``calculate_ssim``.

    An 11x11 Gaussian window (sigma 1.5) on float64 images in the 8-bit range, ``C1 = (0.01 *
    255)^2``, ``C2 = (0.03 * 255)^2``, statistics only where the window fits inside the image
    (BasicSR's ``[5:-5, 5:-5]`` crop), mean over the map and then over the channels. Arguments
    as for :func:`psnr`.

    Returns:
        SSIM in [-1, 1]; 1 for identical images.

    Raises:
        ValueError: different shapes, a bad ``crop_border``, or fewer than 11x11 pixels left.
    """
    x, y = _prepare_pair(a, b, crop_border, test_y, "ssim")
    if min(x.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after crop_border, "
            f"got {x.shape[0]}x{x.shape[1]}"
        )
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    taps = gaussian_window_1d(SSIM_WINDOW, SSIM_SIGMA)
    return float(np.mean([_ssim_channel(x[..., c], y[..., c], taps) for c in range(x.shape[2])]))


# The submodules import helpers defined above, so they are loaded last.
def block_shift(out: np.ndarray, ref: np.ndarray, block: int = 256) -> float:
    """The largest mean brightness shift of any ``block``-pixel block, in grey levels.

    Blocks of ``block`` x ``block`` pixels on a grid of stride ``block // 2`` (the last row and
    column of blocks shifted inward to end at the border; an image smaller than a block is one
    block); brightness is full-range luma ``0.299 R + 0.587 G + 0.114 B`` on 0-255. Tiled
    inference that lets each tile decide its own exposure shows up here as steps between
    blocks, which a whole-image PSNR averages away.

    Args:
        out: (H,W,3) uint8 output.
        ref: (H,W,3) uint8 reference of the same shape.
        block: block side in pixels, >= 1.

    Returns:
        ``max |mean(luma(out)) - mean(luma(ref))|`` over the blocks.
    """
    check_rgb_uint8("out", out)
    check_rgb_uint8("ref", ref)
    if out.shape != ref.shape:
        raise ValueError(f"out and ref must have the same shape, got {out.shape} and {ref.shape}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    weights = np.array([0.299, 0.587, 0.114])
    diff = (out.astype(np.float64) - ref.astype(np.float64)) @ weights
    height, width = diff.shape
    # summed-area table: every block mean in O(1)
    table = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    bh, bw = min(block, height), min(block, width)
    ys = sorted({*range(0, height - bh + 1, max(1, block // 2)), height - bh})
    xs = sorted({*range(0, width - bw + 1, max(1, block // 2)), width - bw})
    worst = 0.0
    for y in ys:
        for x in xs:
            total = table[y + bh, x + bw] - table[y, x + bw] - table[y + bh, x] + table[y, x]
            worst = max(worst, abs(total) / (bh * bw))
    return float(worst)
