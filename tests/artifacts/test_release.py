"""The release folder (girml/artifacts/release.py): safetensors export, pickle-free loading, a
config that must rebuild the model, and the size limit."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import yaml

from girml.artifacts.loading import load_model
from girml.artifacts.release import (
    CARD_FILE,
    FORMAT,
    WEIGHTS_FILE,
    export_release,
    is_release_dir,
    load_release,
)
from girml.config import DegradationsConfig
from tests.artifacts.common import (
    TINY,
    coverage,
    export,
    metrics_for,
    per_family_rows,
    provenance,
    tiny_model,
)


def test_export_then_load_is_bitwise_identical(tmp_path: Path, spec: DegradationsConfig) -> None:
    model = tiny_model(0)
    out = tmp_path / "models" / "release"
    result = export(tmp_path, spec, model, out)

    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, "config.yaml", CARD_FILE])
    assert result.dtype == "float32" and result.max_output_diff == 0.0
    assert result.bytes == sum(p.stat().st_size for p in out.iterdir())
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["format"] == FORMAT
    assert config["model"] == TINY.model_dump(mode="json")
    assert config["provenance"]["registered_version"] == 3
    assert config["weights"]["dtype"] == "float32"
    assert config["metrics"]["suites"]["single-id"]["psnr_y"] == pytest.approx(22.75)

    x = torch.rand(2, 3, 29, 41, generator=torch.Generator().manual_seed(1))  # odd size
    for loaded in (load_release(out), load_model(str(out))):
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    assert not list(tmp_path.glob("models/.*")), "temporary folders left behind"


def test_loading_a_release_never_unpickles(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(1), out)

    def refuse(*args, **kwargs):
        raise AssertionError("a release must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert is_release_dir(out)
    model = load_model(str(out))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_corrupt_or_mismatched_release_names_the_file(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(2), out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["model"]["width"] = 8  # the tensors no longer fit
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=rf"{WEIGHTS_FILE}: corrupt or does not match"):
        load_release(out)
    config["model"]["width"] = 4
    config["format"] = "girml-release/99"
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="format must be 'girml-release/1'"):
        load_release(out)
    with pytest.raises(FileNotFoundError, match="run `girml release`"):
        load_release(tmp_path / "nothing")


def test_a_config_that_does_not_rebuild_the_model_is_refused(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    model = tiny_model(3)
    wrong = TINY.model_copy(update={"sca_max": False})  # same channels, no max-pool branch
    with pytest.raises(ValueError):
        export_release(
            model,
            wrong,
            tmp_path / "release",
            provenance=provenance(tmp_path, spec),
            metrics=metrics_for(per_family_rows()),
            coverage=coverage(spec),
        )
    assert not (tmp_path / "release").exists()


def test_size_limit_is_enforced_and_leaves_the_old_release(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(4), out)
    before = (out / WEIGHTS_FILE).read_bytes()
    with pytest.raises(ValueError, match=r"MiB, over the 0\.00 MiB limit.*--fp16"):
        export(tmp_path, spec, tiny_model(5), out, max_bytes=1000)
    assert (out / WEIGHTS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["release"]
