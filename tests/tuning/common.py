"""The tiny search the tuning tests run: a 4-channel model, a 60-step base, a 2-D space and a
2-trial search of 6 steps (one searched configuration plus the default reference)."""

from __future__ import annotations

from pathlib import Path

from girml.config import ModelConfig, TrainConfig, TuneConfig

MODEL = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
BASE = TrainConfig(
    steps=60,
    batch_size=2,
    patch_size=16,
    warmup_steps=10,
    ema_decay=0.9,
    log_every=1000,
    num_workers=0,
    # the plain loop these tests were written for (params.yaml's defaults switch these on)
    lr=1e-3,
    loss="charbonnier",
    online_degradation_prob=0.0,
    clean_prob=0.0,
    channels_last=False,
    num_threads=0,
    val_every=500,
    ckpt_every=250,
)
SPACE = {
    "train.lr": {"type": "loguniform", "low": 3e-4, "high": 3e-3},
    "model.enc_blocks": {"type": "choice", "values": [[1], [1, 1]]},
}
# one searched configuration + the default reference = 2 trials of 6 steps, reporting twice
CFG = TuneConfig(
    space=SPACE, num_samples=1, steps_per_trial=6, report_every=3, scheduler="fifo", seed=0
)


def tune_cfg(**changes: object) -> TuneConfig:
    """:data:`CFG` with ``changes``."""
    return TuneConfig.model_validate({**CFG.model_dump(), **changes})


def tune_script(cfg: TuneConfig, pairs_dir: Path, work: Path) -> str:
    """Python code that runs :func:`girml.tuning.search.tune` on :data:`MODEL`/:data:`BASE` and
    prints ``[trials, best score]`` as JSON (for a test to run in a process of its own)."""
    return "\n".join(
        [
            "import json",
            "from pathlib import Path",
            "from girml.config import ModelConfig, TrainConfig, TuneConfig",
            "from girml.tuning.search import tune",
            f"cfg = TuneConfig.model_validate_json({cfg.model_dump_json()!r})",
            f"model = ModelConfig.model_validate_json({MODEL.model_dump_json()!r})",
            f"train = TrainConfig.model_validate_json({BASE.model_dump_json()!r})",
            f"result = tune(cfg, model, train, Path({str(pairs_dir)!r}), Path({str(work)!r}))",
            "print(json.dumps([len(result.trials), result.best_score]))",
        ]
    )
