"""The specialists stage's folder (girml.artifacts.specialists): a model folder per family and
specialists.json, written as a whole and loaded back in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from girml.artifacts.specialists import (
    SPECIALISTS_FILE,
    load_specialists,
    save_no_specialists,
    save_specialists,
)
from girml.artifacts.store import read_model_config
from girml.config import ModelConfig, TrainConfig
from girml.models import build_model

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
RUN = TrainConfig(steps=3, batch_size=2, patch_size=16, num_workers=0)


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY).eval()


def test_specialists_round_trip_in_their_order(tmp_path: Path) -> None:
    nets = {"noise": _net(0), "blur": _net(1)}
    out = tmp_path / "models" / "specialists"
    save_specialists(nets, TINY, RUN, out)
    assert sorted(p.name for p in out.iterdir()) == ["blur", "noise", SPECIALISTS_FILE]
    assert json.loads((out / SPECIALISTS_FILE).read_text()) == {"families": ["noise", "blur"]}
    assert read_model_config(out / "blur")["train"]["steps"] == RUN.steps
    loaded = load_specialists(out)
    assert list(loaded) == ["noise", "blur"]  # the file's order, not the folders'
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        for family, net in nets.items():
            assert not loaded[family].training
            assert torch.equal(loaded[family](x), net(x))


def test_none_writes_an_empty_list_and_replaces_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "specialists"
    save_specialists({"noise": _net(0)}, TINY, RUN, out)
    save_no_specialists(out)
    assert [p.name for p in out.iterdir()] == [SPECIALISTS_FILE]
    assert (out / SPECIALISTS_FILE).read_text() == '{\n  "families": []\n}\n'
    assert load_specialists(out) == {}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_loading_names_what_is_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"specialists\.json not found: run `girml spec"):
        load_specialists(tmp_path)
    (tmp_path / SPECIALISTS_FILE).write_text('{"families": "noise"}')
    with pytest.raises(ValueError, match=r"expected \{\"families\": \[<family>, \.\.\.\]\}"):
        load_specialists(tmp_path)
    (tmp_path / SPECIALISTS_FILE).write_text('{"families": ["noise"]}')
    with pytest.raises(FileNotFoundError, match=r"model folder .*noise not found"):
        load_specialists(tmp_path)
