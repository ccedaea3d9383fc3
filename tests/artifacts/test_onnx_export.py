"""``export_onnx`` (girml/artifacts/onnx_export.py): a girml model as one ONNX graph that
onnxruntime runs through girml's own tiled restore, pooling over the whole photo as torch does.

Real parts: torch's exporter, ``onnx.checker``, onnxruntime, the tiled restore of
girml/core/inference.py. The fast tests run the traced function eagerly (no export) behind the
runtime adapter; exporting takes 5-15 s, so the tests that export are ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from girml.artifacts.onnx_export import (
    TOLERANCE,
    _ExportGraph,
    _owned_stats,
    _pooling_layers,
    architecture_of,
    export_onnx,
)
from girml.artifacts.onnx_runtime import (
    IMAGE,
    REGIONS,
    RESTORED,
    USE_PHOTO,
    WHOLE_REGION,
    OnnxMetadata,
    OnnxRestorer,
    load_onnx_model,
    owned_outputs,
    photo_inputs,
)
from girml.artifacts.store import WEIGHTS_FILE, save_model_dir
from girml.config import ModelConfig
from girml.core.ensemble import SelfEnsemble, with_self_ensemble
from girml.core.hashing import file_digest
from girml.core.inference import restore_image, restore_tiled
from girml.core.pooling import PhotoStats
from girml.models import build_model
from tests.factories import TINY_MODEL

# the smallest NAFNet whose channel attention also pools the maximum
SMALL = TINY_MODEL.model_copy(update={"sca_max": True})
TILE, OVERLAP = 16, 4


def small_net(cfg: ModelConfig = SMALL, seed: int = 0) -> nn.Module:
    """A network of ``cfg`` moved far from identity by seeded noise (0.3 std), in eval mode: its
    pooling then changes its output well beyond :data:`TOLERANCE` (with 0.1 std, pooling over
    each tile instead of the photo changed the tiled NAFNet's output by only 2e-4)."""
    torch.manual_seed(seed)
    net = build_model(cfg)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return net.eval()


def photo(height: int = 75, width: int = 101, seed: int = 1) -> torch.Tensor:
    """(1,3,height,width) noise over a ramp from dark (left) to bright (right), so that tiles
    differ in their statistics; odd sizes, several tiles of :data:`TILE`."""
    noise = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return 0.3 * noise + 0.7 * torch.linspace(0, 1, width)


class PerTilePooling(nn.Module):
    """``net`` hidden from :func:`~girml.core.pooling.pools_globally`: each tile pools over
    itself, the mismatch that photo-level pooling removes."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.size_multiple = net.size_multiple
        self._net = [net]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net[0](x)


class EagerSession:
    """The traced function run eagerly in torch behind onnxruntime's ``run`` (inputs as the
    exported graph names them, defaults included)."""

    def __init__(self, net: nn.Module) -> None:
        layers = _pooling_layers(net)
        self.graph = _ExportGraph(net, [layer for _, layer, _ in layers])
        self.channels = [c for *_, c in layers]
        self.metadata = OnnxMetadata(net.size_multiple, tuple((n, c) for n, _, c in layers), {})

    def run(self, wanted: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        photo_stats = [
            torch.from_numpy(feeds[name]) if name in feeds else torch.zeros(1, c, 1, 1)
            for k, c in enumerate(self.channels)
            for name in photo_inputs(k)
        ]
        regions = torch.from_numpy(feeds.get(REGIONS, np.array([WHOLE_REGION])))
        use = torch.tensor(bool(feeds.get(USE_PHOTO, False)))
        with torch.inference_mode():
            outputs = self.graph(torch.from_numpy(feeds[IMAGE]), regions, use, photo_stats)
        names = [RESTORED, *(n for k in range(len(self.channels)) for n in owned_outputs(k))]
        by_name = dict(zip(names, outputs, strict=True))
        return [by_name[name].numpy() for name in wanted]


def eager_restorer(net: nn.Module) -> OnnxRestorer:
    session = EagerSession(net)
    return OnnxRestorer(session, Path("eager.onnx"), session.metadata)


def test_owned_sums_are_what_photo_stats_adds_per_tile() -> None:
    feat = torch.randn(3, 5, 6, 7)  # a layer at scale 4 of 24-px tiles
    regions = torch.tensor([[0, 24, 0, 28], [4, 20, 8, 12], [8, 23, 3, 28]])
    total, peak, count = _owned_stats(feat, regions, 24)
    layer = nn.Identity()
    for k, region in enumerate(regions.tolist()):
        added, summed = PhotoStats(), PhotoStats()
        added.add(layer, feat[k : k + 1], [tuple(region)], tile=24)
        summed.add_sums(layer, total[k].double(), int(count[k]), peak[k])
        like = torch.empty(1, 5, 1, 1)
        (mean, top), (mean_sums, top_sums) = added.pooled(layer, like), summed.pooled(layer, like)
        assert torch.allclose(mean, mean_sums, atol=1e-6) and torch.equal(top, top_sums)
    assert count.tolist() == [6 * 7, 4 * 1, 4 * 7]  # rows 2-5 and columns 0-6 for the last


@pytest.mark.parametrize("cfg", [SMALL, SMALL.model_copy(update={"type": "prompt_nafnet"})])
def test_the_traced_function_tiles_through_the_adapter_as_torch_does(cfg: ModelConfig) -> None:
    net = small_net(cfg)
    image = photo()
    restorer = eager_restorer(net)
    expected = restore_tiled(net, image, TILE, OVERLAP)
    assert (restore_tiled(restorer, image, TILE, OVERLAP) - expected).abs().max() < 1e-5
    # photo-level pooling matters here: pooling per tile gives another image
    per_tile = restore_tiled(PerTilePooling(net), image, TILE, OVERLAP)
    assert (per_tile - expected).abs().max() > 1000 * TOLERANCE
    whole = restore_image(with_self_ensemble(restorer, 8), image, None, 0)
    assert (whole - restore_image(with_self_ensemble(net, 8), image, None, 0)).abs().max() < 1e-5


def test_architectures_it_cannot_export_are_refused_naming_the_model() -> None:
    assert architecture_of(small_net(), "m") == "nafnet"
    for model in (SelfEnsemble(small_net(), 2), nn.Conv2d(3, 3, 1)):
        with pytest.raises(ValueError) as info:
            architecture_of(model, "my-model")
        assert str(info.value).startswith("cannot export my-model to ONNX: ")
        assert type(model).__name__ in str(info.value)
        assert "(exported: nafnet, plain_cnn, prompt_nafnet)" in str(info.value)


def test_an_onnx_source_or_an_out_without_the_suffix_writes_nothing(tmp_path: Path) -> None:
    folder = save_model_dir(small_net(), SMALL, tmp_path / "m")
    with pytest.raises(ValueError, match=r"model\.onnx is an ONNX model already"):
        export_onnx(str(tmp_path / "model.onnx"), tmp_path / "out.onnx")
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(str(folder), tmp_path / "out.bin")
    with pytest.raises(FileNotFoundError, match="missing"):
        export_onnx(str(tmp_path / "missing"), tmp_path / "out.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path, Any]:
    """A small NAFNet's model folder exported: (torch network, folder, OnnxExport)."""
    root = tmp_path_factory.mktemp("onnx")
    net = small_net()
    folder = save_model_dir(net, SMALL, root / "model")
    return net, folder, export_onnx(str(folder), root / "model.onnx", name="my-model")


@pytest.mark.slow
def test_onnxruntime_restores_tiled_photos_as_torch_within_1e_4(exported: Any) -> None:
    net, _, done = exported
    onnx_net = load_onnx_model(done.out)
    assert 0 <= done.max_abs_diff <= TOLERANCE
    for image in (photo(), photo(64, 33, seed=2)):  # several tiles, odd and even sides
        for views in (1, 8):
            torch_out, onnx_out = (
                restore_image(with_self_ensemble(m, views), image, TILE, OVERLAP)
                for m in (net, onnx_net)
            )
            assert (torch_out - onnx_out).abs().max() <= TOLERANCE


@pytest.mark.slow
def test_one_file_restores_any_size_from_the_image_alone(exported: Any) -> None:
    import onnxruntime as ort

    net, _, done = exported
    session = ort.InferenceSession(str(done.out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [IMAGE]  # the others have defaults
    for batch, height, width in ((1, 37, 53), (2, 64, 40)):
        image = torch.cat([photo(height, width, seed) for seed in range(batch)])
        (restored,) = session.run([RESTORED], {IMAGE: image.numpy()})
        with torch.inference_mode():
            assert np.abs(restored - net(image).numpy()).max() <= TOLERANCE


@pytest.mark.slow
def test_the_file_records_its_source(exported: Any) -> None:
    _, folder, done = exported
    props = load_onnx_model(done.out).metadata.props
    # what was asked for, then what it resolved to (the pinned version of an alias)
    assert props["girml.source"] == f"my-model ({folder})"
    assert props["girml.architecture"] == "nafnet"
    assert props["girml.weights_sha256"] == file_digest(folder / WEIGHTS_FILE)
    assert done.weights_sha256 == props["girml.weights_sha256"]
    assert json.loads(props["girml.model_config"]) == SMALL.model_dump(mode="json")
    assert props["girml.size_multiple"] == str(build_model(SMALL).size_multiple)
    assert done.bytes == done.out.stat().st_size and done.pooling_layers == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg",
    [
        SMALL.model_copy(update={"type": "prompt_nafnet"}),
        ModelConfig(type="plain_cnn", width=4, plain_blocks=1),
    ],
    ids=["prompt_nafnet", "plain_cnn"],
)
def test_every_architecture_restore_loads_exports(cfg: ModelConfig, tmp_path: Path) -> None:
    """The export's own check (onnxruntime against torch, whole and tiled, else nothing is
    written) passes for the prompt variant and the plain CNN too."""
    folder = save_model_dir(small_net(cfg), cfg, tmp_path / "model")
    done = export_onnx(str(folder), tmp_path / "model.onnx")
    assert done.architecture == cfg.type and done.max_abs_diff <= TOLERANCE
    onnx_net = load_onnx_model(done.out)
    assert len(onnx_net.slots) == sum(
        getattr(m, "photo_pooling", False) for m in small_net(cfg).modules()
    )
