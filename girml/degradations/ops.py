"""Core of the degradation library: the ``OPS`` registry, argument validation, shared helpers.

Every op is registered with :func:`register_op`, which records its family and the valid domain of
each parameter and wraps the function so that the image and every argument are validated before
the op runs and the result is clamped to [0, 1]. The domain is therefore the single source of
truth both for calls and for :func:`girml.degradations.sampler.check_spec`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any, get_type_hints

import torch
import torch.nn.functional as F
from torch import Tensor

from girml.core.imageio import BT601_LUMA
from girml.core.registry import Registry

OpFn = Callable[..., Tensor]
ParamValue = float | int | bool | str
NumericDomain = tuple[float, float]
ChoiceDomain = tuple[str, ...]
Domain = NumericDomain | ChoiceDomain

OPS: Registry[OpFn] = Registry("degradation op")

MAX_KERNEL = 41
SEED_LIMIT = 2**63
_KINDS = (float, int, bool, str)


def format_number(value: float) -> str:
    """Compact number for messages: ``255`` rather than ``255.0``."""
    return f"{value:g}"


def check_image(op: str, image: object) -> None:
    """Raise unless ``image`` is a (B,C,H,W) floating-point tensor with no empty dimension."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{op}: image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or min(image.shape) < 1:
        raise ValueError(f"{op}: image must have shape (B,C,H,W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{op}: image must be a float tensor in [0, 1], got {image.dtype}")


def check_seed(op: str, seed: object) -> int:
    """Return ``seed`` as an int, raising unless it is an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"{op}: seed must be an int, got {seed!r}")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{op}: seed must be in [0, 2**63), got {seed!r}")
    return int(seed)


def check_param(op: str, name: str, value: object) -> ParamValue:
    """Validate one argument of a registered op against its type and declared domain.

    Args:
        op: registered op name.
        name: parameter name (``seed`` included).
        value: the candidate value.

    Returns:
        The value converted to the parameter's type (``float``, ``int``, ``bool`` or ``str``).

    Raises:
        KeyError: ``op`` is not registered.
        TypeError: wrong type (e.g. a float for an int parameter).
        ValueError: unknown parameter, or a value outside the domain.
    """
    if name == "seed":
        return check_seed(op, value)
    meta = OPS.meta(op)
    if name not in meta["domain"]:
        raise ValueError(f"{op}: unknown param {name!r}; params: {', '.join(meta['domain'])}")
    kind, domain = meta["kinds"][name], meta["domain"][name]
    if kind is str:
        if not isinstance(value, str) or value not in domain:
            raise ValueError(f"{op}: {name} must be one of {list(domain)}, got {value!r}")
        return value
    if kind is bool:
        if isinstance(value, bool) or (isinstance(value, Integral) and value in (0, 1)):
            return bool(value)
        raise TypeError(f"{op}: {name} must be a bool or 0/1, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, Integral)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, Real)):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    number = int(value) if kind is int else float(value)  # type: ignore[arg-type]
    low, high = domain
    if not low <= number <= high:  # also rejects NaN
        raise ValueError(
            f"{op}: {name} must be in [{format_number(low)}, {format_number(high)}], got {value!r}"
        )
    return number


def _check_declaration(
    name: str, params: list[str], kinds: dict[str, Any], domain: Mapping[str, Domain]
) -> None:
    """Catch registration mistakes (a programming error) at import time."""
    if set(params) != set(domain):
        raise TypeError(f"op {name!r}: domain keys {sorted(domain)} != params {sorted(params)}")
    for param in params:
        kind, dom = kinds.get(param), domain[param]
        if kind not in _KINDS:
            raise TypeError(f"op {name!r}: param {param!r} must be annotated float/int/bool/str")
        textual = all(isinstance(v, str) for v in dom)
        if (kind is str) != textual or (not textual and (len(dom) != 2 or dom[0] > dom[1])):
            raise TypeError(f"op {name!r}: bad domain {dom!r} for {kind.__name__} {param!r}")


def register_op(name: str, *, family: str, domain: Mapping[str, Domain]) -> Callable[[OpFn], OpFn]:
    """Register a degradation op in :data:`OPS` and enforce its declared domain.

    The decorated function has the signature ``fn(image, <params>..., *, seed)`` (``seed`` only
    for random ops), with every parameter annotated ``float``, ``int``, ``bool`` or ``str``.
    The returned wrapper validates the image (:func:`check_image`) and each argument
    (:func:`check_param`), calls the function with converted values and clamps the result to
    [0, 1]. Registry metadata: ``family``, ``domain``, ``kinds`` (param -> type), ``required``
    (params without a default, ``seed`` excluded) and ``random`` (whether it takes ``seed``).

    Args:
        name: registry name, as written in ``params.yaml``.
        family: degradation family (``noise``, ``blur``, ...).
        domain: per parameter (``seed`` excluded), the valid closed interval ``(low, high)`` for
            numbers and 0/1 flags, or the tuple of allowed strings.
    """

    def deco(fn: OpFn) -> OpFn:
        sig = inspect.signature(fn)
        hints = get_type_hints(fn)
        params = [p for p in sig.parameters if p not in ("image", "seed")]
        kinds = {p: hints.get(p) for p in params}
        _check_declaration(name, params, kinds, domain)
        required = tuple(p for p in params if sig.parameters[p].default is inspect.Parameter.empty)

        @functools.wraps(fn)
        def wrapper(image: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            try:
                bound = sig.bind(image, *args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{name}: {exc}") from None
            bound.apply_defaults()
            check_image(name, image)
            values = {
                p: check_param(name, p, v) for p, v in bound.arguments.items() if p != "image"
            }
            return fn(image, **values).clamp(0.0, 1.0)

        OPS.register(
            name,
            family=family,
            domain=dict(domain),
            kinds=kinds,
            required=required,
            random="seed" in sig.parameters,
        )(wrapper)
        return wrapper

    return deco


def generator(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed``: the only source of randomness inside ops."""
    return torch.Generator().manual_seed(seed)


def luminance(image: Tensor) -> Tensor:
    """Luma of a batch.

    Args:
        image: (B,C,H,W) float in [0,1]; BT.601 weights when C == 3, channel mean otherwise.

    Returns:
        (B,1,H,W) tensor of the same dtype, in [0,1].
    """
    if image.shape[1] == 3:
        weights = torch.tensor(BT601_LUMA, dtype=image.dtype).view(1, 3, 1, 1)
        return (image * weights).sum(dim=1, keepdim=True)
    return image.mean(dim=1, keepdim=True)


def kernel_size(radius: float) -> int:
    """Odd kernel side covering ``radius`` pixels each side of the centre, capped at 41."""
    return min(2 * math.ceil(radius) + 1, MAX_KERNEL)


def kernel_grid(size: int) -> tuple[Tensor, Tensor]:
    """Pixel offsets from the centre of an odd ``size`` x ``size`` kernel.

    Returns:
        ``(xx, yy)``, each (size, size) float64; x grows to the right, y downwards.
    """
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(offsets, offsets, indexing="ij")
    return xx, yy


def apply_kernel(image: Tensor, kernel: Tensor, padding: str = "reflect") -> Tensor:
    """Convolve every channel of a batch with one 2-D kernel (depthwise ``conv2d``).

    Args:
        image: (B,C,H,W) float.
        kernel: (k,k) with k odd; used as given (builders normalise blur kernels to sum 1).
        padding: ``"reflect"`` (falls back to ``"replicate"`` when the image is smaller than
            the kernel's half-width) or ``"constant"`` (zeros).

    Returns:
        (B,C,H,W) tensor of the image's dtype.
    """
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be square with an odd side, got {tuple(kernel.shape)}")
    if padding not in ("reflect", "constant"):
        raise ValueError(f"padding must be 'reflect' or 'constant', got {padding!r}")
    channels = image.shape[1]
    pad = kernel.shape[0] // 2
    if padding == "reflect" and pad >= min(image.shape[-2:]):
        padding = "replicate"
    padded = F.pad(image, (pad, pad, pad, pad), mode=padding)
    weight = kernel.to(image.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(padded, weight, groups=channels)
