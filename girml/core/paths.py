"""Where the pipeline's files live, relative to the project root: the one place for each path.

The stage outputs are exactly those ``dvc.yaml`` declares; the stages
(:mod:`girml.stages`), the CLI, the model store and the flows take them from here.
"""

from __future__ import annotations

from pathlib import Path

# Stage outputs, exactly as declared in dvc.yaml.
CLEAN_DIR = Path("data/clean")
PAIRS_DIR = Path("data/pairs")
BENCH_DIR = Path("data/bench")
VALIDATION_DIR = Path("reports/validation")
MODEL_DIR = Path("models/latest")
CHECKPOINT_DIR = Path("checkpoints/train")
METRICS_DIR = Path("metrics")
TRAIN_METRICS = METRICS_DIR / "train.json"
PLOTS_DIR = Path("plots")
SPECIALISTS_DIR = Path("models/specialists")  # <family>/ model folders and specialists.json
SPECIALIST_DIR = Path("checkpoints/specialists")  # the specialists' resume state
TUNE_DIR = Path("checkpoints/tune")
INTERPRET_DIR = Path("reports/interpretation")
TUNED_PARAMS = Path("tune/best.yaml")
RELEASE_DIR = Path("models/release")
TRIALS_CSV = Path("reports/tune/trials.csv")
STUDY_JSON = METRICS_DIR / "study.json"
STUDY_PLOT = PLOTS_DIR / "study.csv"
STUDY_DIR = Path("reports/study")
APPROACHES_DIR = Path("models/approaches")  # the study's trained approaches, one folder each
APPROACH_METRICS_DIR = METRICS_DIR / "approaches"  # <name>/per_image.csv and <name>/cost.json
APPROACH_ROWS = "per_image.csv"
APPROACH_COST = "cost.json"
APPROACH_CHECKPOINTS = Path("checkpoints/approaches")
PROTOCOL_DATA_DIR = Path("data/protocols")  # <set>/: each test set as testset@<set> fetched it
PROTOCOL_METRICS_DIR = METRICS_DIR / "protocols"  # <protocol>.json: protocols@<protocol>
