"""What the degradation tests share: one valid argument set per op, tiny images, a full spec."""

from __future__ import annotations

from typing import Any

import torch

from girml.config import DegradationsConfig
from girml.degradations import OPS

# One valid argument set per op (seed added for random ops).
VALID: dict[str, dict[str, Any]] = {
    "gaussian_noise": {"sigma": 25.0, "gray": False},
    "poisson_noise": {"scale": 30.0, "gray": True},
    "speckle_noise": {"sigma": 20.0},
    "gaussian_blur": {"sigma": 2.0},
    "aniso_gaussian_blur": {"sigma_x": 3.0, "sigma_y": 1.0, "theta": 0.5},
    "generalized_gaussian_blur": {"sigma": 2.0, "beta": 4.0},
    "motion_blur": {"length": 12.0},
    "defocus_blur": {"radius": 3.0},
    "resize": {"scale": 3.0, "down_mode": "area", "up_mode": "bicubic"},
    "downsample": {"scale": 4.0, "mode": "bicubic"},
    "jpeg": {"quality": 20},
    "rain": {"count": 80.0, "length": 15.0, "width": 1.5, "angle": 10.0, "intensity": 0.8},
    "haze": {"A": 0.9, "beta": 1.5},
    "low_light": {"gamma": 2.0, "exposure": 0.5, "noise_sigma": 5.0},
}


def kwargs_for(op: str, seed: int = 7) -> dict[str, Any]:
    params = dict(VALID[op])
    if OPS.meta(op)["random"]:
        params["seed"] = seed
    return params


def run(op: str, image: torch.Tensor, **override: Any) -> torch.Tensor:
    return OPS.get(op)(image, **{**kwargs_for(op), **override})


def flat(value: float, size: int = 64, channels: int = 3) -> torch.Tensor:
    return torch.full((1, channels, size, size), value)


def textured(seed: int = 0, shape: tuple[int, ...] = (2, 3, 37, 53)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def high_band_energy(image: torch.Tensor) -> float:
    """Spectral energy above half the Nyquist frequency (either axis)."""
    spectrum = torch.fft.fft2(image - image.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
    fy = torch.fft.fftfreq(image.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(image.shape[-1]).abs().view(1, -1)
    return float(spectrum[..., (fy > 0.25) | (fx > 0.25)].sum())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2)))


def make_spec(**changes: Any) -> DegradationsConfig:
    raw: dict[str, Any] = {
        "families": {
            "noise": {
                "ops": {
                    "gaussian_noise": {
                        "weight": 2,
                        "params": {
                            "sigma": {"id": [15, 50], "ood": [50, 70]},
                            "gray": {"choices": [0, 1]},
                        },
                    },
                    "poisson_noise": {
                        "params": {"scale": {"id": [20, 100], "ood": [5, 20], "log": True}}
                    },
                    "speckle_noise": {"params": {"sigma": {"id": [10, 30], "ood": [30, 50]}}},
                }
            },
            "blur": {
                "ops": {
                    "gaussian_blur": {"params": {"sigma": {"id": [1, 3], "ood": [3, 5]}}},
                    "aniso_gaussian_blur": {
                        "params": {
                            "sigma_x": {"id": [1, 3], "ood": [3, 5]},
                            "sigma_y": {"id": [1, 3], "ood": [3, 5]},
                            "theta": {"id": [0, 3.1416]},
                        }
                    },
                    "generalized_gaussian_blur": {
                        "params": {"sigma": {"id": [1, 3]}, "beta": {"id": [0.5, 4]}}
                    },
                    "motion_blur": {"params": {"length": {"id": [5, 15], "ood": [15, 25]}}},
                    "defocus_blur": {"params": {"radius": {"id": [1, 3], "ood": [3, 5]}}},
                }
            },
            "resize": {
                "ops": {
                    "resize": {
                        "params": {
                            "scale": {"id": [2, 4], "ood": [4, 6]},
                            "down_mode": {"choices": ["area", "bilinear", "bicubic"]},
                            "up_mode": {"choices": ["bilinear", "bicubic"]},
                        }
                    }
                }
            },
            "jpeg": {
                "ops": {
                    "jpeg": {
                        "params": {"quality": {"id": [30, 70], "ood": [10, 30], "integer": True}}
                    }
                }
            },
            "rain": {
                "ops": {
                    "rain": {
                        "params": {
                            "count": {"id": [20, 60], "ood": [60, 120], "integer": True},
                            "length": {"id": [10, 30]},
                            "width": {"id": [1, 2]},
                            "angle": {"id": [-20, 20], "ood": [-45, 45]},
                            "intensity": {"id": [0.5, 0.9]},
                        }
                    }
                }
            },
            "haze": {
                "ops": {
                    "haze": {
                        "params": {
                            "A": {"id": [0.7, 1.0]},
                            "beta": {"id": [0.5, 1.5], "ood": [1.5, 2.5]},
                        }
                    }
                }
            },
            "lowlight": {
                "ops": {
                    "low_light": {
                        "params": {
                            "gamma": {"id": [1, 3], "ood": [3, 4]},
                            "exposure": {"id": [0.3, 0.8], "ood": [0.1, 0.3]},
                            "noise_sigma": {"id": [0, 5], "ood": [5, 10]},
                        }
                    }
                }
            },
        },
        "held_out": {"families": ["haze"], "combinations": [["noise", "blur"], ["rain", "jpeg"]]},
        "train_composers": {"single": 1.0, "mixed": 1.0, "second_order": 1.0},
        "mixed": {"k": [2, 3]},
        "second_order": {"second_round_prob": 0.8, "skip_prob": 0.2},
    }
    raw.update(changes)
    return DegradationsConfig.model_validate(raw)


def with_op(family: str, op: str, op_spec: dict[str, Any]) -> DegradationsConfig:
    """The default spec with one op of ``family`` replaced (or added)."""
    families = make_spec().model_dump()["families"]
    families[family]["ops"][op] = op_spec
    return make_spec(families=families)
