"""Loading a model by what a user names (girml/artifacts/loading.py): no code runs from a model
file, on any path that loads a model; the weights file that is read; ``train.init_from``.

A payload that creates a file when unpickled (``__reduce__``) is planted in every form a model
arrives in: an MLflow ``pytorch`` flavour model saved as a pickle (a folder, and registry
versions reached by ``models:/`` and ``runs:/`` URIs), a girml model folder and a registered
girml version whose ``weights.pt`` holds it, and a bare ``.pth`` file. Each loading path
(``load_model``, ``girml restore --model``, ``girml pull model``, ``train.init_from``,
``evaluate.methods: mlflow:``, MLflow's pyfunc loader that ``mlflow models serve`` uses) must
refuse it in one line that says how to convert it, and the file must never appear. A control
test proves the payload is live. Real parts: a SQLite MLflow store, the CLI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from girml.artifacts.loading import load_model, source_weights, weights_file
from girml.artifacts.registered import log_and_register_model
from girml.artifacts.release import WEIGHTS_FILE as RELEASE_WEIGHTS
from girml.artifacts.store import WEIGHTS_FILE, save_model_dir
from girml.config import DegradationsConfig, MethodSpec
from girml.core.errors import EX_BAD_INPUT, UnsafeModelError
from girml.tracking.runs import start_run
from girml.tracking.versions import REGISTERED_MODEL, set_alias
from pipelines.cli import app
from tests.artifacts.common import export
from tests.artifacts.common import tiny_model as release_model
from tests.factories import TINY_MODEL as TINY
from tests.factories import textured_image, tiny_model

EXAMPLE = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)


class Payload:
    """Creates ``path`` when unpickled: what a hostile model file would do instead."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.path,)


def hostile_module(marker: Path) -> torch.nn.Module:
    """A working tiny network that also carries the payload."""
    model = tiny_model(5)
    model.trap = Payload(marker)
    return model


@dataclass(frozen=True)
class Hostile:
    """Every form of the payload, and the file it would create."""

    root: Path
    tracking_uri: str
    marker: Path
    mlflow_dir: Path  # mlflow.pytorch.save_model(serialization_format="pickle")
    girml_dir: Path  # a model folder whose weights.pt is the payload
    torch_file: Path  # torch.save of the module
    pickled_uris: tuple[str, ...]  # the pickled registry version, three ways
    tampered_uri: str  # a girml weights-plus-config version whose weights.pt was replaced


def _plant_in_weights(weights: Path, marker: Path) -> None:
    torch.save({"intro.weight": Payload(marker)}, weights)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path) -> Iterator[Hostile]:
    base = tmp_path_factory.mktemp("hostile")
    shutil.copyfile(mlflow_schema, base / "mlflow.db")
    marker = base / "PWNED"
    root = base / "project"
    root.mkdir()
    uri = f"sqlite:///{base / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("GIT_CEILING_DIRECTORIES", str(base))
        before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow_dir = base / "mlflow-model"
        mlflow.pytorch.save_model(
            hostile_module(marker),
            str(mlflow_dir),
            serialization_format="pickle",
            pip_requirements=["torch"],
        )
        girml_dir = save_model_dir(tiny_model(1), TINY, base / "girml-model")
        _plant_in_weights(girml_dir / WEIGHTS_FILE, marker)
        torch_file = base / "model.pth"
        torch.save(hostile_module(marker), torch_file)
        with start_run("girml-test", root, log_system_metrics=False) as run:
            mlflow.pytorch.log_model(
                hostile_module(marker),
                name="model",
                registered_model_name=REGISTERED_MODEL,
                serialization_format="pickle",
                pip_requirements=["torch"],
            )
            version = log_and_register_model(tiny_model(6), EXAMPLE, model_cfg=TINY)
        set_alias(REGISTERED_MODEL, "champion", 1)
        # the store's own copy of version 2's weights (the only weights.pt it holds)
        stored = sorted((base / "mlartifacts").rglob(WEIGHTS_FILE))
        assert len(stored) == 1, stored
        _plant_in_weights(stored[0], marker)
        assert not marker.exists()
        yield Hostile(
            root=root,
            tracking_uri=uri,
            marker=marker,
            mlflow_dir=mlflow_dir,
            girml_dir=girml_dir,
            torch_file=torch_file,
            pickled_uris=(
                f"models:/{REGISTERED_MODEL}/1",
                f"models:/{REGISTERED_MODEL}@champion",
                f"runs:/{run.info.run_id}/model",
            ),
            tampered_uri=f"models:/{REGISTERED_MODEL}/{version}",
        )
        mlflow.set_tracking_uri(before)


@pytest.fixture
def store(hostile: Hostile, monkeypatch: pytest.MonkeyPatch) -> Hostile:
    """Run in the hostile project, against its store; the payload must not have run before."""
    monkeypatch.chdir(hostile.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", hostile.tracking_uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    mlflow.set_tracking_uri(hostile.tracking_uri)
    assert not hostile.marker.exists()
    return hostile


def all_sources(hostile: Hostile) -> list[str]:
    return [
        str(hostile.mlflow_dir),
        str(hostile.girml_dir),
        str(hostile.torch_file),
        *hostile.pickled_uris,
        hostile.tampered_uri,
    ]


def assert_refused(exc: BaseException, source: str, hostile: Hostile) -> None:
    """One line naming the source and the conversion command; no payload ran; the switch that
    would allow MLflow to unpickle was never set."""
    text = str(exc)
    assert isinstance(exc, UnsafeModelError), repr(exc)
    assert "\n" not in text and text.startswith(f"{source} is "), text
    assert "could run any code" in text
    assert f"girml convert-model {source} -o NEW_FOLDER --i-trust-this-file" in text
    assert not hostile.marker.exists(), f"the payload ran while loading {source}"
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" not in os.environ


def one_error_line(output: str) -> str:
    """The one line of a refusal; a leading ``model: ...`` line (girml restore names the model it
    is about to load, girml/restore_model.py) does not count."""
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) == 2 and lines[0].startswith("model: "):
        lines = lines[1:]
    assert "Traceback" not in output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_the_planted_payload_runs_when_unpickled(tmp_path: Path) -> None:
    """Control: the payload is live, so its absence below means nothing unpickled it."""
    marker = tmp_path / "ran"
    torch.save(hostile_module(marker), tmp_path / "m.pth")
    torch.load(tmp_path / "m.pth", weights_only=False)
    assert marker.exists()


def test_load_model_refuses_every_form(store: Hostile) -> None:
    for source in all_sources(store):
        with pytest.raises(UnsafeModelError) as caught:
            load_model(source)
        assert_refused(caught.value, source, store)
    with pytest.raises(UnsafeModelError, match="MLflow's pytorch flavour, pickle format"):
        load_model(str(store.mlflow_dir))
    with pytest.raises(UnsafeModelError, match=r"weights\.pt holds pickled Python objects"):
        load_model(store.tampered_uri)


def test_girml_restore_refuses_with_one_line(store: Hostile, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(textured_image(0, 32, 32)).save(photo)
    for source in (str(store.mlflow_dir), str(store.girml_dir), store.pickled_uris[0]):
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["restore", str(photo), "-o", str(out), "--model", source])
        # restore names the model it is about to load (girml/restore_model.py), then refuses it
        assert result.output.startswith(f"model: {source} "), result.output
        line = one_error_line(result.output)
        assert result.exit_code == EX_BAD_INPUT, result.output
        assert f"{source} is " in line and "girml convert-model" in line
        assert not out.exists() and not store.marker.exists()


def test_girml_pull_model_refuses_and_leaves_nothing(
    store: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, "")  # restored after the test (pull sets them when empty)
    # the alias is resolved to its version first; the line names the version, not the
    # temporary folder it was downloaded into
    for uri, version in ((store.pickled_uris[1], 1), (store.tampered_uri, 2)):
        out = tmp_path / "pulled"
        result = CliRunner().invoke(app, ["pull", "model", uri, "-o", str(out)])
        line = one_error_line(result.output)
        assert result.exit_code == EX_BAD_INPUT, result.output
        named = f"models:/{REGISTERED_MODEL}/{version}"
        assert line.startswith(f"error: {named} is ") and "could run any code" in line
        assert f"girml convert-model {named} -o NEW_FOLDER --i-trust-this-file" in line
        assert not out.exists() and not store.marker.exists()
        assert not list(tmp_path.glob(".pulled*"))  # no staging folder left behind


def test_train_init_from_refuses(store: Hostile) -> None:
    from girml.artifacts.loading import source_weights

    for source in (str(store.girml_dir), store.pickled_uris[0], store.tampered_uri):
        with pytest.raises(UnsafeModelError) as caught:
            source_weights(source)
        assert_refused(caught.value, source, store)


def test_evaluate_methods_mlflow_refuses(store: Hostile) -> None:
    from girml.evaluation.methods import load_methods

    for uri in (store.pickled_uris[0], store.tampered_uri):
        spec = MethodSpec(name="old", mlflow=uri)
        with pytest.raises(UnsafeModelError) as caught:
            load_methods([spec], None, store.root, load_model)
        assert_refused(caught.value, uri, store)


def test_serving_a_girml_version_never_unpickles_its_weights(store: Hostile) -> None:
    """``mlflow models serve`` loads a version with ``mlflow.pyfunc.load_model``: for a girml
    version that runs :mod:`girml.artifacts.restorer_model`, which reads ``weights.pt`` with
    torch's weights-only unpickler."""
    with pytest.raises(Exception, match="pickled Python objects"):
        mlflow.pyfunc.load_model(store.tampered_uri)
    assert not store.marker.exists()


def test_serving_an_old_pickled_version_is_refused_with_mlflows_switch_off(
    store: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old pickled version is MLflow's own loader when served; docs/troubleshooting.md says
    to serve with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`` (MLflow's default is true)."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(Exception, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.pyfunc.load_model(store.pickled_uris[0])
    assert not store.marker.exists()


def test_no_girml_module_sets_the_pickle_switch() -> None:
    """The switch that lets MLflow unpickle is named nowhere in girml's code."""
    root = Path(__file__).resolve().parents[2]
    named = [
        str(path.relative_to(root))
        for folder in ("girml", "pipelines")
        for path in (root / folder).rglob("*.py")
        if "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" in path.read_text(encoding="utf-8")
    ]
    assert named == []


def test_a_bare_pickle_file_is_refused_without_being_opened(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"")  # not even read: the refusal is by kind
    with pytest.raises(UnsafeModelError, match=r"ckpt\.pt is a PyTorch file"):
        load_model(str(checkpoint))


def test_a_model_folder_still_loads_safely(tmp_path: Path) -> None:
    """The refusals leave weights-plus-config folders alone."""
    model = tiny_model(2)
    folder = save_model_dir(model, TINY, tmp_path / "m")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model"] == TINY.model_dump(mode="json")
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(load_model(str(folder))(x), model(x))


def test_weights_file_is_what_load_model_reads(tmp_path: Path, spec: DegradationsConfig) -> None:
    folder = save_model_dir(tiny_model(1), TINY, tmp_path / "latest")
    assert weights_file(str(folder)) == folder / WEIGHTS_FILE
    release = tmp_path / "release"
    export(tmp_path, spec, release_model(2), release)
    assert weights_file(str(release)) == release / RELEASE_WEIGHTS
    assert weights_file("models:/gir-restorer@champion") is None  # downloaded when loaded
    assert weights_file(str(tmp_path / "nowhere")) is None


def test_init_from_weights_name_the_source_and_read_the_release(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"train\.init_from='.*nowhere': cannot load it: model"):
        source_weights(str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"init_from='release': .*models/release not found"):
        source_weights("release")
    model = release_model(3)
    export(tmp_path, spec, model, Path("models/release"))  # the shipped release's folder
    weights = source_weights("release")
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
