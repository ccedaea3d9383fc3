"""Fixtures of the training tests: one intra-op thread, the tiny pairs and one baseline run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from girml.config import DegradationsConfig
from girml.training.loop import TrainResult, train
from tests.factories import synthesize_tiny
from tests.training.common import BASE, MODEL


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread: faster for tiny convs on a busy 2-core machine, and the same
    thread count as the killed subprocess, so resumed runs match bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory, spec: DegradationsConfig) -> Path:
    """24 train and 6 val 32x32 pairs synthesized from the tiny clean set."""
    return synthesize_tiny(tmp_path_factory.mktemp("data")) / "pairs"


@pytest.fixture(scope="module")
def baseline(pairs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    """One uninterrupted run of :data:`BASE`, and its checkpoint folder."""
    ckpt = tmp_path_factory.mktemp("baseline-ckpt")
    return train(MODEL, BASE, pairs_dir, ckpt), ckpt
