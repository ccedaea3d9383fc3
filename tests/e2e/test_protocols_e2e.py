"""End to end: every built-in protocol through one real `dvc repro`, its test sets downloaded from
a local HTTP server in their real layouts, in a fresh copy of the project.

The model is a tiny NAFNet written to models/latest (training is the pipeline test's job), so
the stages run each alone (``--single-item``): collect (the NIQE reference), then the sets, then
the protocols. Each set is its own cached stage
(``testset@<set>``) and each protocol one more (``protocols@<name>``); a second run does
nothing.
"""

from __future__ import annotations

import json

import pytest
import yaml

from girml.artifacts.store import save_model_dir
from girml.config import BUILTIN_PROTOCOLS
from girml.evaluation.published import read_measured
from tests.e2e.test_pipeline_e2e import PROJECT_FILES, _run, copy_project
from tests.factories import TINY_MODEL, tiny_model, tiny_params
from tests.protocol_sets import FILES, set_server

# a program that "restores" a folder by copying it: the degraded input, through `command:`
COPY = "cp -r {in}/. {out}"
# the stages in this order, each alone: collect (the NIQE reference), every test set, every
# protocol; models/latest is given, not trained
REPRO = ["dvc", "repro", "--single-item", "--glob", "collect", "testset@*", "protocols@*"]


@pytest.mark.slow
def test_every_protocol_runs_through_dvc_repro(tmp_path_factory: pytest.TempPathFactory) -> None:
    project = copy_project(
        tmp_path_factory.mktemp("girml-protocols"), PROJECT_FILES, ["profiles/smoke.yaml"]
    )
    save_model_dir(tiny_model(0), TINY_MODEL, project / "models/latest")
    params = yaml.safe_load((project / "params.yaml").read_text())
    # two families (one held out): gir-clean's rows are each family at each level, and clean
    spec = tiny_params()["degradations"]
    spec["families"] = {family: spec["families"][family] for family in ("noise", "blur")}
    spec.update(held_out={"families": ["blur"], "combinations": []}, bench_combinations=[])
    params["degradations"] = spec
    params["evaluate"]["methods"] = [
        {"name": "copy", "command": COPY},
        {"name": "filtered", "python": "girml.baselines.rain:median"},
    ]
    with set_server(list(FILES)) as (_, sets):
        params["protocols"] = {"run": list(BUILTIN_PROTOCOLS), "sets": sets, "custom": {}}
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        first = _run(REPRO, project)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        again = _run(REPRO, project)
    ran = [line for line in first.stdout.splitlines() if line.startswith("Running stage")]
    assert {f"Running stage 'testset@{name}':" for name in FILES} <= set(ran)
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout

    # what the study reads beside the published numbers
    assert set(read_measured(project / "metrics/protocols")) == set(BUILTIN_PROTOCOLS)
    pins = (project / "downloads.sha256").read_text().splitlines()
    assert len(pins) == 1 + len(FILES)  # one archive per set, Kodak24's two loose files
    for name, spec in BUILTIN_PROTOCOLS.items():
        result = json.loads((project / f"metrics/protocols/{name}.json").read_text())
        assert result["protocol"] == name and result["convention"] == spec.convention
        rows = {**result["sets"], **result["no_reference"]}
        for row, entry in rows.items():
            assert set(entry["methods"]) == {"model", "identity", "copy", "filtered"}, row
            assert entry["n"] == 2 and entry["methods"]["model"]["n"] == 2, row
        for entry in result["sets"].values():
            # the copying program returns the input: it scores what the input itself scores
            assert entry["methods"]["copy"]["psnr"] == entry["methods"]["identity"]["psnr"]
            assert 0 < entry["methods"]["model"]["psnr"] <= 100
    three = json.loads((project / "metrics/protocols/allinone-3.json").read_text())
    assert list(three["sets"]) == [
        "cbsd68-s15",
        "cbsd68-s25",
        "cbsd68-s50",
        "rain100l",
        "sots-outdoor",
    ]
    noise = [three["sets"][f"cbsd68-s{s}"]["methods"]["identity"]["psnr"] for s in (15, 25, 50)]
    assert noise == sorted(noise, reverse=True)  # more noise, lower input PSNR
    real = json.loads((project / "metrics/protocols/real.json").read_text())
    assert list(real["no_reference"]) == ["real-photos"] and real["skipped"] == []
    clean = json.loads((project / "metrics/protocols/gir-clean.json").read_text())
    assert list(clean["sets"])[:5] == [
        "kodak24-noise-id",
        "kodak24-noise-ood",
        "kodak24-blur-id",
        "kodak24-blur-ood",
        "kodak24-clean",
    ]
    assert len(clean["sets"]) == 15  # the same rows for McMaster and Urban100
