#!/usr/bin/env bash
# long-profile training through the pipeline (worktree of the commit under test)
set -euo pipefail
cd /work/long
source /work/main/.venv/bin/activate
export PYTHONPATH=/work/long DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false OMP_WAIT_POLICY=PASSIVE
dvc repro synthesize
date +%s > /work/long/train_start
dvc repro -s train
date +%s > /work/long/train_end
