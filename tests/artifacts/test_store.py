"""Model folders (girml/artifacts/store.py): written whole, read back, and errors that name the
path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from girml.artifacts.loading import load_model
from girml.artifacts.store import WEIGHTS_FILE, load_model_dir, read_model_config, save_model_dir
from girml.config import ConfigError, ModelConfig, TrainConfig
from girml.models import build_model
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model


def test_model_dir_round_trip_and_replacement(tmp_path: Path) -> None:
    model = tiny_model(3)
    out = tmp_path / "models" / "latest"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("old", encoding="utf-8")
    extra = {"train": TrainConfig(steps=5), "metrics": {"psnr": np.float32(30.5)}}
    assert save_model_dir(model, TINY, out, extra=extra) == out
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "weights.pt"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["latest"]  # no temp folders left
    config = read_model_config(out)
    assert config["model"] == TINY.model_dump(mode="json")
    assert config["train"]["betas"] == [0.9, 0.9]
    assert config["metrics"]["psnr"] == pytest.approx(30.5)

    loaded = load_model(str(out))
    assert not loaded.training
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="'model'"):
        save_model_dir(model, TINY, out, extra={"model": {}})


def test_model_dir_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(missing))}.*dvc repro train"):
        load_model(str(missing))

    folder = tmp_path / "m"
    save_model_dir(tiny_model(0), TINY, folder)
    (folder / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{folder} is missing weights.pt")):
        load_model_dir(folder)

    (folder / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=re.escape(f"{folder / 'weights.pt'}: corrupt")):
        load_model_dir(folder)

    save_model_dir(tiny_model(0), TINY, folder)
    wider = TINY.model_copy(update={"width": 8})
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": wider.model_dump()}), "utf-8")
    with pytest.raises(ValueError, match="does not match"):
        load_model_dir(folder)

    (folder / "config.yaml").write_text("model: {width: 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.width"):
        load_model_dir(folder)
    (folder / "config.yaml").write_text("model: {type: nope}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        load_model_dir(folder)
    (folder / "config.yaml").write_text("train: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'model' mapping"):
        load_model_dir(folder)


def test_saved_weights_are_byte_identical_for_identical_tensors(tmp_path: Path) -> None:
    """models/latest must hash the same wherever the same weights are saved (DVC, issue 13)."""
    cfg = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
    torch.manual_seed(0)
    first = build_model(cfg)
    second = build_model(cfg)  # another instance (other storages), then the same values
    second.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    save_model_dir(first, cfg, tmp_path / "a", extra={"train": {"seed": 0}})
    save_model_dir(second, cfg, tmp_path / "b", extra={"train": {"seed": 0}})
    for name in (WEIGHTS_FILE, "config.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
