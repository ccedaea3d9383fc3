"""Reproducible CPU training: the same weights, byte for byte, on any x86-64 machine.

PyTorch picks its CPU kernels by the instruction set of the machine: ATen's vectorised kernels
(``ATEN_CPU_CAPABILITY``: default, avx2, avx512), oneDNN's convolutions (``DNNL_MAX_CPU_ISA``)
and MKL's BLAS (``MKL_CBWR``). Different kernels round differently, so one run trained on an
AVX-512 machine and one on an AVX2 machine end with different weights (issue #19: a 120-step run
with ``ATEN_CPU_CAPABILITY=default`` differs from the same run with AVX2 kernels).

``train.cpu_isa`` pins all three to one level before the first kernel runs. ``avx2`` is the
level every x86-64 machine of the last ten years has (Intel Haswell, 2013; AMD Excavator, 2015,
and every Zen); the CPU profiles use it. ``None`` leaves the machine's best kernels (the GPU
profile). Each library reads its variable once, on first use, so the train, tune and approach
stages pin it as their first step. A process that already ran other kernels (a stage called in
a process that trained before) keeps them: a warning says so and the record says
``"pinned": false``.
"""

from __future__ import annotations

import logging
import os
import platform
from typing import Any

import torch

# level -> environment; each library caps the instruction set it dispatches to
LEVELS: dict[str, dict[str, str]] = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "DNNL_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "COMPATIBLE",
    },
}
# what torch.backends.cpu.get_cpu_capability() reports for each level
_ATEN_NAMES = {"avx2": "AVX2", "default": "DEFAULT"}

log = logging.getLogger(__name__)


def pin_cpu_isa(level: str | None) -> dict[str, Any]:
    """Pin the CPU kernels to ``level`` (see :data:`LEVELS`) and say what runs.

    Sets the variables for this process and its children (loader workers, Ray trials). Call it
    before any tensor operation: each library reads its variable once.

    Args:
        level: ``"avx2"``, ``"default"`` or None (leave the machine's choice).

    Returns:
        ``metrics/train.json: cpu_isa``: the level asked for, whether it holds (``pinned``), the
        kernels ATen dispatches to, the oneDNN and MKL caps, and the machine's architecture.

    Raises:
        ValueError: an unknown level.
    """
    if level is not None and level not in LEVELS:
        raise ValueError(f"train.cpu_isa: unknown level {level!r}; use one of {list(LEVELS)}")
    before = {name: os.environ.get(name) for name in LEVELS["avx2"]}
    if level is not None:
        os.environ.update(LEVELS[level])
    actual = torch.backends.cpu.get_cpu_capability()
    pinned = level is not None and actual == _ATEN_NAMES[level]
    if level is not None and not pinned:
        # children (loader workers) must run what this process runs: undo the variables
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        log.warning(
            "train.cpu_isa is %r but this process already runs %s kernels, so its weights "
            "depend on the machine; start it afresh with ATEN_CPU_CAPABILITY=%s",
            level,
            actual,
            LEVELS[level]["ATEN_CPU_CAPABILITY"],
        )
    return {
        "mode": level or "machine",
        "pinned": pinned,
        "aten": actual,
        "onednn_max_isa": os.environ.get("DNNL_MAX_CPU_ISA"),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "machine": platform.machine(),
    }
