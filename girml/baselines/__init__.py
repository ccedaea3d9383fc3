"""Classical restoration baselines behind one interface: ``fn(lq uint8 HWC) -> uint8 HWC``.

Importing this package registers every baseline in :data:`BASELINES` (explicit imports, one
module per family); ``BASELINES.meta(name)`` gives its ``family`` and ``description``. ``bm3d``
is registered only when the optional ``bm3d`` package is installed.
"""

from girml.baselines import deblur, denoise, haze, jpeg, lowlight, rain, resolution
from girml.baselines.core import BASELINES, Baseline, guided_filter, register_baseline

__all__ = [
    "BASELINES",
    "Baseline",
    "deblur",
    "denoise",
    "guided_filter",
    "haze",
    "jpeg",
    "lowlight",
    "rain",
    "register_baseline",
    "resolution",
]
