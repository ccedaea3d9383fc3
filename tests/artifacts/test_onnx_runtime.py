"""``load_onnx_model`` and ``OnnxRestorer`` (girml/artifacts/onnx_runtime.py): an ONNX file
loads as a restorer that the tiled restore drives, and a bad file is refused naming it.

Real parts: onnxruntime sessions of small graphs built here with ``onnx.helper`` (exported
models: tests/artifacts/test_onnx_export.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from girml.artifacts.loading import load_model
from girml.artifacts.onnx_runtime import (
    FORMAT,
    IMAGE,
    META_FORMAT,
    META_POOLING,
    META_SIZE_MULTIPLE,
    REGIONS,
    RESTORED,
    USE_PHOTO,
    OnnxRestorer,
    is_onnx_file,
    load_onnx_model,
    read_metadata,
)
from girml.core.inference import restore_image


def write_graph(path: Path, props: dict[str, str] | None, pooling: list | None = None) -> Path:
    """An ONNX file whose ``restored`` is its ``image`` (an identity restorer), with girml's
    tiling inputs, and ``props`` (plus ``pooling``) as its metadata."""
    shape = ["batch", 3, "height", "width"]
    graph = helper.make_graph(
        [helper.make_node("Identity", [IMAGE], [RESTORED])],
        "identity",
        [
            helper.make_tensor_value_info(IMAGE, TensorProto.FLOAT, shape),
            helper.make_tensor_value_info(REGIONS, TensorProto.INT64, ["batch", 4]),
            helper.make_tensor_value_info(USE_PHOTO, TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info(RESTORED, TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    if props is not None:
        props = {**props, META_POOLING: json.dumps(pooling or [])}
        helper.set_model_props(model, props)
    onnx.save_model(model, str(path))
    return path


GIRML = {META_FORMAT: FORMAT, META_SIZE_MULTIPLE: "4"}


def test_a_girml_graph_restores_through_the_tiled_path(tmp_path: Path) -> None:
    restorer = load_model(str(write_graph(tmp_path / "id.onnx", GIRML)))
    assert isinstance(restorer, OnnxRestorer) and restorer.size_multiple == 4
    image = torch.rand(2, 3, 30, 21)
    assert torch.equal(restorer(image), image)  # padded to 32x24 inside, cropped back
    photo = torch.rand(1, 3, 45, 70)  # several 16-px tiles, blended back to the photo
    assert torch.allclose(restore_image(restorer, photo, 16, 4), photo, atol=1e-6)


def test_a_corrupt_or_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07 not a model")
    with pytest.raises(ValueError, match=rf"^{bad}: not a loadable ONNX model \("):
        load_onnx_model(bad)
    with pytest.raises(FileNotFoundError, match=f"ONNX model {tmp_path / 'gone.onnx'} not found"):
        load_model(str(tmp_path / "gone.onnx"))


def test_an_onnx_file_girml_did_not_write_is_refused(tmp_path: Path) -> None:
    other = write_graph(tmp_path / "other.onnx", None)
    with pytest.raises(ValueError, match="not an ONNX model written by `girml export"):
        load_onnx_model(other)
    lacking = write_graph(tmp_path / "lacking.onnx", GIRML, [{"name": "sca", "channels": 2}])
    with pytest.raises(ValueError, match=r"lacks owned_count_0, .*photo_mean_0 that its meta"):
        load_onnx_model(lacking)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({META_FORMAT: FORMAT, META_POOLING: "[]"}, "unreadable girml metadata (KeyError"),
        ({**GIRML, META_POOLING: "[{}]"}, "unreadable girml metadata (KeyError"),
        ({**GIRML, META_POOLING: "{"}, "unreadable girml metadata (JSONDecodeError"),
        ({**GIRML, META_SIZE_MULTIPLE: "0", META_POOLING: "[]"}, "size_multiple must be >= 1"),
    ],
)
def test_bad_metadata_is_refused_naming_the_file(props: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=r"^m\.onnx: ") as info:
        read_metadata(Path("m.onnx"), props)
    assert message in str(info.value)


def test_onnx_files_are_told_by_their_suffix() -> None:
    assert is_onnx_file("a/model.onnx") and is_onnx_file("M.ONNX")
    assert not is_onnx_file("models/release") and not is_onnx_file("model.onnx.tmp")


class Failing:
    """A session whose ``run`` raises as onnxruntime does (its own exception type)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def run(self, wanted: list[str], feeds: dict) -> list:
        raise type("RuntimeException", (Exception,), {})(self.message)


def test_a_failing_run_names_the_file_and_out_of_memory_is_a_memory_error(
    tmp_path: Path,
) -> None:
    restorer = load_onnx_model(write_graph(tmp_path / "id.onnx", GIRML))
    restorer.session = Failing("[ONNXRuntimeError] : 6 : Failed to allocate memory for 1 GB")
    with pytest.raises(MemoryError, match=rf"^{tmp_path / 'id.onnx'}: onnxruntime ran out of"):
        restorer(torch.rand(1, 3, 8, 8))
    restorer.session = Failing("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad\nmore")
    with pytest.raises(RuntimeError, match=r"onnxruntime failed \(.*INVALID_ARGUMENT : bad\)$"):
        restorer(torch.rand(1, 3, 8, 8))
