"""Fixtures of the architecture tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Run a module's tests on one intra-op thread (``pytestmark = usefixtures(...)``).

    Tiny convs gain nothing from more, and on a busy 2-core machine two spinning threads made
    the training tests up to 10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
