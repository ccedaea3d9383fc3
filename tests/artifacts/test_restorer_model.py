"""The models-from-code file of every registered version (girml/artifacts/restorer_model.py):
what a user of the registry gets from MLflow's own loader, ``mlflow.pyfunc.load_model``, and from
MLflow's scoring server, without girml's loader: arrays in, arrays out; PNG/JPEG in, PNG out;
a refused input is HTTP 400 with one short message. A real SQLite MLflow store; the slow test
runs a real ``mlflow models serve`` where girml is importable only from the model's own code."""

from __future__ import annotations

import ast
import base64
import importlib.metadata
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import requests
import torch
import yaml
from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel, scoring_server
from PIL import Image
from starlette.testclient import TestClient
from torch import nn

from girml.artifacts.registered import RESTORER_CODE, log_and_register_model
from girml.core.imageio import to_tensor, to_uint8
from girml.stages.code_deps import ROOT, module_file
from girml.tracking.logged_models import download_artifacts, pip_requirements
from girml.tracking.runs import start_run
from girml.tracking.versions import REGISTERED_MODEL
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model

EXAMPLE = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
PIXELS = np.random.default_rng(1).integers(0, 256, (18, 26, 3), dtype=np.uint8)  # H=18, W=26
# the 0-255 array and the (H, W, 3) array that the server must refuse without quoting them
BYTE_SCALE = np.round(np.random.default_rng(2).random((1, 3, 8, 8)) * 255)
BYTE_SCALE[0, 0, 0, :2] = 0, 255
CHANNELS_LAST = np.random.default_rng(3).random((8, 8, 3))
SERVE_START_S = 90


@dataclass(frozen=True)
class Logged:
    """A version logged from ``network`` and downloaded to ``path`` (an MLflow model folder)."""

    network: nn.Module
    path: Path


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path) -> Iterator[Logged]:
    """One version, logged once for the module to its own SQLite store."""
    root = tmp_path_factory.mktemp("restorer-model")
    shutil.copyfile(mlflow_schema, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved_env, saved_uri = dict(os.environ), mlflow.get_tracking_uri()
    os.environ.update(
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
        GIT_CEILING_DIRECTORIES=str(root),
    )
    mlflow.set_tracking_uri(uri)
    try:
        network = tiny_model(4)
        with start_run("girml-test", root, log_system_metrics=False):
            version = log_and_register_model(network, EXAMPLE, model_cfg=TINY)
        path = download_artifacts(f"models:/{REGISTERED_MODEL}/{version}", root / "download")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        mlflow.set_tracking_uri(saved_uri)
    yield Logged(network, path)


@pytest.fixture(scope="module")
def served(logged: Logged) -> PyFuncModel:
    return mlflow.pyfunc.load_model(str(logged.path))


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def b64_png(pixels: np.ndarray) -> str:
    return base64.b64encode(png_bytes(pixels)).decode("ascii")


def decode_png(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def restored_pixels(network: nn.Module, pixels: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(network(to_tensor(pixels)).clamp(0, 1))


def test_pyfunc_load_model_restores_a_batch(logged: Logged, served: PyFuncModel) -> None:
    batch = np.random.default_rng(1).random((2, 3, 24, 20), dtype=np.float32)  # any size
    out = served.predict(batch)
    with torch.no_grad():
        expected = logged.network(torch.from_numpy(batch)).clamp(0, 1).numpy()
    assert out.shape == (2, 3, 24, 20) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(served.predict(batch.astype(np.float64)), out)  # JSON numbers


def test_the_version_carries_girml_and_what_it_imports(logged: Logged) -> None:
    """A fresh environment needs only the requirements: girml travels as code."""
    assert (logged.path / "code" / "girml" / "artifacts" / "image_payload.py").is_file()
    assert not list((logged.path / "code").rglob("__pycache__"))
    requirements = (logged.path / "requirements.txt").read_text().split()
    names = {line.split("==")[0] for line in requirements}
    assert {"mlflow", "torch", "numpy", "pandas", "pillow", "pydantic", "pyyaml"} <= names
    assert all("==" in line for line in requirements)
    signature = yaml.safe_load((logged.path / "MLmodel").read_text())["signature"]
    assert signature["inputs"] is None  # no MLflow schema: the model checks its inputs itself
    assert json.loads(signature["outputs"])[0]["tensor-spec"]["shape"] == [-1, 3, -1, -1]


def module_level_imports(path: Path) -> set[str]:
    """The dotted modules that file ``path`` imports when it runs (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def third_party_imports(start: Path) -> set[str]:
    """The top-level non-girml, non-stdlib modules that ``start`` imports, through girml."""
    seen: set[Path] = set()
    todo, found = [start], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in module_level_imports(path):
            top = name.split(".")[0]
            if top != "girml":
                found.add(top)
                continue
            parts = name.split(".")
            todo.extend(
                f
                for depth in range(1, len(parts) + 1)
                if (f := module_file(".".join(parts[:depth]), ROOT)) is not None
            )
    return {name for name in found if name not in sys.stdlib_module_names}


def test_the_requirements_cover_what_the_shipped_code_imports() -> None:
    """A fresh environment gets every package that the restorer and the girml code it runs
    import when MLflow loads the model: each is a pinned requirement (or MLflow itself)."""
    distributions = importlib.metadata.packages_distributions()
    needed = {
        dist.lower()
        for name in third_party_imports(RESTORER_CODE) - {"mlflow", "__future__"}
        for dist in distributions[name]
    }
    required = {line.split("==")[0].lower() for line in pip_requirements()}
    assert {"torch", "numpy", "pillow"} <= needed
    assert needed <= required, needed - required


def test_png_in_gives_png_out(logged: Logged, served: PyFuncModel) -> None:
    out = served.predict(png_bytes(PIXELS))
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["image"] and len(out) == 1
    np.testing.assert_array_equal(
        decode_png(out["image"][0]), restored_pixels(logged.network, PIXELS)
    )


def test_base64_images_of_any_size_come_back_in_order(served: PyFuncModel) -> None:
    small = PIXELS[:5, :7]
    out = served.predict(pd.DataFrame({"image": [b64_png(PIXELS), b64_png(small)]}))
    assert [decode_png(text).shape for text in out["image"]] == [(18, 26, 3), (5, 7, 3)]


@pytest.mark.parametrize(
    ("model_input", "message"),
    [
        (BYTE_SCALE, "array values must be in [0, 1], got 0 to 255 (8-bit values? divide by 255)"),
        (
            CHANNELS_LAST,
            "an array input must be (N, 3, H, W) float32 in [0, 1], got shape (8, 8, 3)",
        ),
        (np.zeros((1, 3, 4, 4), dtype=bool), "an array input must hold numbers"),
        ({"image": ["bm90IGFuIGltYWdl"]}, "image 0: not an image (unrecognized format)"),
    ],
)
def test_a_refused_input_is_one_short_line(
    served: PyFuncModel, model_input: object, message: str
) -> None:
    with pytest.raises(MlflowException) as caught:
        served.predict(model_input)
    exc = caught.value
    assert exc.error_code == "INVALID_PARAMETER_VALUE" and exc.get_http_status_code() == 400
    assert exc.message.startswith(message) and len(exc.message) < 200
    # the scoring server rewrites the message to quote the input: the rewrite is ignored
    exc.message = f"Failed to predict data '{model_input}'. \nError: {exc.message}"
    assert json.loads(exc.serialize_as_json())["message"].startswith(message)


def scoring_client(model: PyFuncModel, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """MLflow's own scoring app (what ``mlflow models serve`` runs) for ``model``, in process."""
    monkeypatch.setenv(_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name, "false")  # init sets it; restored
    return TestClient(scoring_server.init(model))


def check_refusals(post) -> None:
    """``post(payload) -> (status, text)`` refuses 0-255 and (H, W, 3) arrays: one short line."""
    for array, start in [
        (BYTE_SCALE, "array values must be in [0, 1]"),
        (CHANNELS_LAST, "an array input must be (N, 3, H, W)"),
    ]:
        status, text = post({"inputs": array.tolist()})
        assert status == 400, text
        body = json.loads(text)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in body
        assert body["message"].startswith(start) and len(text) < 400, text
        quoted = json.dumps(array.ravel()[:3].tolist())[1:-1]  # "12.0, 200.0, 37.0"
        assert quoted not in text and "[[" not in text


def test_the_scoring_server_answers_png_and_refuses_with_400(
    logged: Logged, served: PyFuncModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = scoring_client(served, monkeypatch)
    payload = {"dataframe_records": [{"image": b64_png(PIXELS)}]}
    answer = client.post("/invocations", json=payload)
    assert answer.status_code == 200, answer.text
    image = answer.json()["predictions"][0]["image"]
    np.testing.assert_array_equal(decode_png(image), restored_pixels(logged.network, PIXELS))
    split = {"dataframe_split": {"columns": ["image"], "data": [[b64_png(PIXELS)]]}}
    assert client.post("/invocations", json=split).json()["predictions"][0]["image"] == image

    def post(body: dict) -> tuple[int, str]:
        response = client.post("/invocations", json=body)
        return response.status_code, response.text

    check_refusals(post)


# A sitecustomize for the served process: girml imports only from an MLflow model's code folder,
# as in an environment where girml is not installed (the editable install is hidden).
ONLY_MODEL_CODE = """
import os
import sys
from importlib.machinery import PathFinder


class OnlyModelCode:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "girml":
            return None
        code = [entry for entry in sys.path if os.path.basename(entry) == "code"]
        spec = PathFinder.find_spec(name, code)
        if spec is None:
            raise ModuleNotFoundError("No module named 'girml'", name=name)
        return spec


sys.meta_path.insert(0, OnlyModelCode)
"""


def _pinged(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_mlflow_models_serve_restores_a_png(mlflow_store: Path, free_tcp_port: int) -> None:
    """``mlflow models serve -m models:/...`` in a process without girml installed: a PNG
    (base64 in JSON) comes back as a PNG of the same size; bad arrays get a short 400."""
    with start_run("girml-test", mlflow_store, log_system_metrics=False):
        version = log_and_register_model(tiny_model(4), EXAMPLE, model_cfg=TINY)
    site = mlflow_store / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ONLY_MODEL_CODE)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    hidden = subprocess.run(
        [sys.executable, "-c", "import girml"], cwd=mlflow_store, env=env, capture_output=True
    )
    assert hidden.returncode != 0 and b"No module named 'girml'" in hidden.stderr

    url = f"http://127.0.0.1:{free_tcp_port}"
    args = [sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local"]
    args += ["-m", f"models:/{REGISTERED_MODEL}/{version}", "-h", "127.0.0.1"]
    args += ["-p", str(free_tcp_port)]
    log_path = mlflow_store / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, cwd=mlflow_store, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVE_START_S
        while not _pinged(url):
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)

        def post(body: dict) -> tuple[int, str]:
            response = requests.post(f"{url}/invocations", json=body, timeout=60)
            return response.status_code, response.text

        status, text = post(
            {"dataframe_split": {"columns": ["image"], "data": [[b64_png(PIXELS)]]}}
        )
        assert status == 200, text
        assert decode_png(json.loads(text)["predictions"][0]["image"]).shape == PIXELS.shape
        check_refusals(post)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
