#!/usr/bin/env bash
# After the long training: evaluate it with the current code of main, export the release.
set -euo pipefail
MAIN_COMMIT=${1:?main commit with the evaluation code}
cd /work/long
source /work/main/.venv/bin/activate
export PYTHONPATH=/work/long DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false OMP_WAIT_POLICY=PASSIVE
dvc commit -f train   # the train command ran to the end outside dvc (its dvc parent was killed)
# the evaluation/synthesis code of main (the clean family, harm metrics, release); the
# training code and params.yaml stay those of the run
git checkout "$MAIN_COMMIT" -- girml/data girml/evaluation girml/models girml/tracking girml/interpret girml/baselines girml/metrics girml/config.py girml/cli.py girml/imageio.py girml/inference.py girml/restore.py pipelines benchmarks
git checkout "$MAIN_COMMIT" -- $(cd /work/main && git ls-tree --name-only -r "$MAIN_COMMIT" girml | grep -v "^girml/training/") 2>/dev/null || true
dvc repro -s synthesize
dvc repro -s validate
dvc repro -s evaluate
girml release -o models/release
