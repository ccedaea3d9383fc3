"""``train.cpu_isa``: the same weights whatever kernels the machine would choose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from girml.core.cpu_isa import LEVELS, pin_cpu_isa
from tests.factories import REPO, synthesize_tiny

# A tiny training in a fresh process; prints the weights' digest and the pin's record.
TRAIN = """
import json, sys
from pathlib import Path
from girml.core.cpu_isa import pin_cpu_isa
level = sys.argv[2] if sys.argv[2] != "none" else None
record = pin_cpu_isa(level)
from girml.config import ModelConfig, TrainConfig
from girml.training.loop import train, weights_digest
cfg = TrainConfig(seed=1, steps=12, batch_size=4, patch_size=16, warmup_steps=2, val_every=12,
                  ckpt_every=12, log_every=6, num_workers=0, online_degradation_prob=0.0,
                  num_threads=1, channels_last=False)
model = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
result = train(model, cfg, Path(sys.argv[1]), Path(sys.argv[3]))
print(json.dumps({"digest": weights_digest(result.model), "isa": record}))
"""


def _run(pairs: Path, level: str | None, ckpt: Path, aten: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LEVELS["avx2"]}
    if aten is not None:  # what another machine's torch would pick on its own
        env["ATEN_CPU_CAPABILITY"] = aten
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN, str(pairs), level or "none", str(ckpt)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pinning_sets_every_library_and_says_what_runs() -> None:
    code = (
        "import os, json; from girml.core.cpu_isa import pin_cpu_isa; r = pin_cpu_isa('avx2'); "
        "print(json.dumps([r, {k: os.environ.get(k) for k in "
        "('ATEN_CPU_CAPABILITY', 'DNNL_MAX_CPU_ISA', 'MKL_CBWR')}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    record, env = json.loads(out.stdout)
    assert record["mode"] == "avx2" and record["aten"] == "AVX2" and record["pinned"]
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def test_a_process_that_already_chose_its_kernels_says_so() -> None:
    code = (
        "import json, torch; torch.ones(4).add_(1)\n"  # the machine's kernels are chosen here
        "from girml.core.cpu_isa import pin_cpu_isa\n"
        "print(json.dumps(pin_cpu_isa('default')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    record = json.loads(out.stdout)
    assert record["mode"] == "default" and record["pinned"] is False
    assert record["aten"] != "DEFAULT"
    assert "start it afresh with ATEN_CPU_CAPABILITY=default" in out.stderr
    with pytest.raises(ValueError, match="unknown level"):
        pin_cpu_isa("avx9000")


@pytest.mark.slow
def test_pinned_training_gives_the_same_weights_whatever_the_machine_would_pick(
    tmp_path: Path,
) -> None:
    pairs = synthesize_tiny(tmp_path / "data") / "pairs"
    # two "machines": one whose torch would pick the generic kernels, one the AVX2 ones
    generic = _run(pairs, None, tmp_path / "a", aten="default")
    avx2 = _run(pairs, None, tmp_path / "b", aten="avx2")
    assert generic["isa"]["aten"] == "DEFAULT" and avx2["isa"]["aten"] == "AVX2"
    assert generic["digest"] != avx2["digest"]  # the problem: kernels change the weights
    pinned_generic = _run(pairs, "avx2", tmp_path / "c", aten="default")
    pinned_avx2 = _run(pairs, "avx2", tmp_path / "d", aten="avx2")
    assert pinned_generic["isa"]["aten"] == pinned_avx2["isa"]["aten"] == "AVX2"
    assert pinned_generic["digest"] == pinned_avx2["digest"]


def test_an_unpinnable_process_leaves_its_children_the_same_kernels() -> None:
    code = (
        "import json, os, torch; torch.ones(4).add_(1)\n"
        "from girml.core.cpu_isa import pin_cpu_isa\n"
        "pin_cpu_isa('default')\n"
        "print(json.dumps(os.environ.get('ATEN_CPU_CAPABILITY')))"
    )
    env = {k: v for k, v in os.environ.items() if k not in LEVELS["avx2"]}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) is None  # not left set for the workers it starts
