"""Bounds before allocation: a model folder cannot make girml allocate gigabytes.

A ``config.yaml`` is bounded by validation (``width: 12000`` reached 4.7 GB before it failed)
and by the parameter count of the network built on the ``meta`` device; a weights file's
shapes are read (a safetensors header, a mapped ``weights.pt``) and compared with that network
before the real one is built.
"""

from __future__ import annotations

import json
import math
import resource
import struct
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import girml.artifacts.store as store
from girml.artifacts.loading import load_model
from girml.artifacts.release import FORMAT, WEIGHTS_FILE, load_release
from girml.artifacts.store import save_model_dir
from girml.config import ConfigError, ModelConfig, parse_section
from girml.config.model import MAX_BLOCKS, MAX_LEVELS, MAX_PROMPT_LEN, MAX_WIDTH
from girml.core.errors import EX_BAD_INPUT
from girml.models import build_model
from girml.models.shapes import MAX_PARAMETERS, planned_shapes, safetensors_shapes
from girml.params_check import cross_section_errors
from pipelines.cli import app
from tests.artifacts.test_loading import one_error_line
from tests.factories import TINY_MODEL as TINY
from tests.factories import textured_image, tiny_model

MB = 1024  # ru_maxrss is in KiB on Linux


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def model_folder(tmp_path: Path, **model: object) -> Path:
    """A saved tiny model whose ``config.yaml`` model section then gets ``model``'s keys."""
    folder = save_model_dir(tiny_model(0), TINY, tmp_path / "m")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["model"].update(model)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def release_folder(tmp_path: Path, model_cfg: ModelConfig, tensors: dict) -> Path:
    folder = tmp_path / "release"
    folder.mkdir()
    save_file(tensors, folder / WEIGHTS_FILE)
    config = {"format": FORMAT, "model": model_cfg.model_dump(mode="json")}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_a_width_bomb_fails_fast_in_one_line_naming_the_key(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, width=12000)
    before, start = peak_rss_kib(), time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_model(str(folder))
    assert time.perf_counter() - start < 5
    assert peak_rss_kib() - before < 100 * MB  # the network would take 4.7 GB
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"{folder / 'config.yaml'}: invalid config: model.width: Input should be less than or "
        f"equal to {MAX_WIDTH} (got 12000)"
    )
    photo = tmp_path / "photo.png"
    Image.fromarray(textured_image(0, 24, 24)).save(photo)
    args = ["restore", str(photo), "-o", str(tmp_path / "out"), "--model", str(folder)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EX_BAD_INPUT
    assert one_error_line(result.output) == f"error: {message}"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"width": MAX_WIDTH + 1}, "model.width"),
        ({"enc_blocks": [1] * (MAX_LEVELS + 1)}, "model.enc_blocks"),
        ({"enc_blocks": [1, MAX_BLOCKS + 1]}, "model.enc_blocks[1]"),
        ({"enc_blocks": [1, -1]}, "model.enc_blocks[1]"),
        ({"dec_blocks": [1, MAX_BLOCKS + 1]}, "model.dec_blocks[1]"),
        ({"middle_blocks": MAX_BLOCKS + 1}, "model.middle_blocks"),
        ({"prompt_len": MAX_PROMPT_LEN + 1}, "model.prompt_len"),
        ({"plain_blocks": 100_000}, "model.plain_blocks"),
    ],
)
def test_every_size_has_an_upper_bound(section: dict, key: str) -> None:
    raw = {"enc_blocks": [1, 1], **section}
    with pytest.raises(ConfigError) as caught:
        parse_section(raw, "model", ModelConfig)
    assert f"\n  {key}: " in str(caught.value), str(caught.value)


def test_the_published_configurations_are_within_the_bounds() -> None:
    """NAFNet-width64 (the paper's largest) and the study's models validate and fit."""
    for raw in (
        {"width": 64, "enc_blocks": [2, 2, 4, 8], "middle_blocks": 12},
        {"width": 64, "enc_blocks": [1, 1, 1, 28], "middle_blocks": 1},
        {"type": "prompt_nafnet", "width": 32, "enc_blocks": [2, 2, 4, 8], "middle_blocks": 12},
        {"type": "plain_cnn", "width": 64, "plain_blocks": 32},
    ):
        cfg = parse_section(raw, "model", ModelConfig)
        assert planned_shapes(cfg, "test")


def test_a_network_too_large_in_total_is_refused_from_the_meta_build(tmp_path: Path) -> None:
    """Each size within its bound, the whole far above :data:`MAX_PARAMETERS`."""
    folder = model_folder(tmp_path, width=MAX_WIDTH, enc_blocks=[1] * MAX_LEVELS)
    before = peak_rss_kib()
    with pytest.raises(ConfigError, match=r"config\.yaml: model: [\d,]+ parameters \(") as caught:
        load_model(str(folder))
    assert "\n" not in str(caught.value)
    assert peak_rss_kib() - before < 100 * MB
    errors = cross_section_errors(
        {"model": ModelConfig(width=MAX_WIDTH, enc_blocks=[1] * MAX_LEVELS)}
    )
    assert len(errors) == 1 and errors[0].startswith("model: ") and "parameters" in errors[0]


def test_safetensors_shapes_that_do_not_fit_the_config_are_refused_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config asks for a 0.5 GB network; the file holds a tiny one: refused from the
    header, and the network is never built."""
    big = ModelConfig(width=256)
    count = sum(math.prod(shape) for shape in planned_shapes(big, "test").values())
    assert 100_000_000 < count <= MAX_PARAMETERS
    small = build_model(big.model_copy(update={"width": 4}))  # the same tensors, narrower
    folder = release_folder(tmp_path, big, small.state_dict())
    built: list[ModelConfig] = []
    monkeypatch.setattr(store, "build_model", lambda cfg: built.append(cfg))
    before = peak_rss_kib()
    with pytest.raises(ValueError) as caught:
        load_release(folder)
    assert peak_rss_kib() - before < 100 * MB
    assert built == []
    assert str(caught.value) == (
        f"{folder / WEIGHTS_FILE}: corrupt or does not match {folder / 'config.yaml'} (tensor "
        "'intro.weight' is [4, 3, 3, 3] in the file, [256, 3, 3, 3] in the model the config "
        "builds)"
    )


def test_a_weights_pt_that_does_not_fit_is_refused_naming_the_tensor(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    state = torch.load(folder / "weights.pt", weights_only=True)
    state["ending.bias"] = torch.zeros(5)
    torch.save(state, folder / "weights.pt")
    with pytest.raises(ValueError, match=r"weights\.pt: .*tensor 'ending\.bias' is \[5\]"):
        load_model(str(folder))
    del state["ending.bias"]
    torch.save(state, folder / "weights.pt")
    with pytest.raises(ValueError, match=r"\(no tensor 'ending\.bias'\)"):
        load_model(str(folder))


def write_raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def test_a_header_that_claims_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    """A 100-byte file whose header declares a 40 GB tensor: refused from the header."""
    bomb = {"intro.weight": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 100]}}
    path = write_raw_safetensors(tmp_path / "bomb.safetensors", bomb, bytes(100))
    with pytest.raises(ValueError, match=r"'intro\.weight' declares shape \[100000, 100000\]"):
        safetensors_shapes(path)
    huge_header = tmp_path / "header.safetensors"
    huge_header.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ValueError, match="header length 1099511627776 does not fit a 10-byte"):
        safetensors_shapes(huge_header)
    for entry in ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}, "not a mapping"):
        odd = write_raw_safetensors(tmp_path / "odd.safetensors", {"x": entry}, b"")
        with pytest.raises(ValueError, match="malformed header entry"):
            safetensors_shapes(odd)


def test_header_shapes_match_what_safetensors_itself_reads(tmp_path: Path) -> None:
    tensors = {"a": torch.zeros(2, 3), "b": torch.zeros(4, dtype=torch.float16)}
    save_file(tensors, tmp_path / "t.safetensors", metadata={"note": "x"})
    assert safetensors_shapes(tmp_path / "t.safetensors") == {"a": (2, 3), "b": (4,)}
