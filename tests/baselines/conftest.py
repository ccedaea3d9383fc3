"""Fixtures of the baseline tests: a real photo crop to degrade and restore."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="package")
def gt() -> np.ndarray:
    """A real photo crop: the astronaut's 128x128 top-left corner."""
    return data.astronaut()[:128, :128].copy()
