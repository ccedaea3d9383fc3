#!/usr/bin/env bash
# End-to-end check of the local full stack on the quick profile (params.yaml as committed):
#   1. a fresh clone runs the whole pipeline as the Prefect flow `gir-pipeline` against
#      `girml stack` (moto S3, MLflow server with S3 artifacts, Prefect server), pushing to S3;
#   2. the flow run, its artifacts, and the registered model version and aliases are read back
#      from the Prefect and MLflow servers;
#   3. a second fresh clone `dvc pull`s the data from S3 and checks it against the first clone;
#   4. a clean folder `girml pull`s the champion and `girml restore`s a photo with it.
# Usage: scripts/stack_e2e.sh [WORKDIR]   (default: a new temporary folder; ~25 min on 2 cores)
set -euo pipefail
export DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false
export OMP_WAIT_POLICY=PASSIVE
src=$(git rev-parse --show-toplevel)
work=$(realpath "${1:-$(mktemp -d)}")
mkdir -p "$work"
stack="$work/stack"
trap 'girml stack down --dir "$stack" >/dev/null 2>&1 || true' EXIT

echo "== stack up ($stack)"
girml stack up --dir "$stack" --no-dvc-remote \
    --s3-port 19000 --mlflow-port 15000 --prefect-port 14200 --bucket girml-e2e
set -a; . "$stack/env"; set +a

echo "== 1. the pipeline as a Prefect flow, pushed to S3"
git clone -q "$src" "$work/run"
cd "$work/run"
girml remote s3 girml-e2e/dvc --endpoint-url "$AWS_ENDPOINT_URL" --default
start=$(date +%s)
girml flow --push
echo "flow wall time: $(( $(date +%s) - start )) s"

echo "== 2. what the servers show"
python - <<'EOF'
import asyncio

import mlflow
from mlflow import MlflowClient
from prefect.client.orchestration import get_client


async def prefect_view() -> None:
    async with get_client() as client:
        runs = await client.read_flow_runs(limit=5)
        run = max(runs, key=lambda r: r.created)
        print(f"prefect flow run {run.name}: {run.state.type.value}")
        artifacts = await client.read_artifacts()
        for art in artifacts:
            if art.flow_run_id == run.id:
                print(f"  artifact {art.key} ({art.type})")


asyncio.run(prefect_view())
client = MlflowClient()
model = client.get_registered_model("gir-restorer")
print(f"mlflow {mlflow.get_tracking_uri()}: gir-restorer aliases {model.aliases}")
for version in client.search_model_versions("name='gir-restorer'"):
    print(f"  version {version.version}: run {version.run_id}, source {version.source}")
EOF

echo "== 3. dvc pull into a fresh clone"
git -C "$work/run" add -A >/dev/null && git -C "$work/run" -c user.name=e2e -c user.email=e2e@localhost \
    commit -qm "e2e run"
git clone -q "$work/run" "$work/pulled"
cd "$work/pulled"
dvc pull -q
for out in data/clean data/pairs data/bench models/latest metrics/eval.json tune/best.yaml; do
    diff -rq "$work/run/$out" "$work/pulled/$out" >/dev/null && echo "  $out: identical" \
        || { echo "  $out: DIFFERS" >&2; exit 1; }
done
status=$(dvc status)
echo "  dvc status: $status"
grep -q "up to date" <<<"$status" || { echo "the pulled clone is not up to date" >&2; exit 1; }
dvc metrics show --json | python -c "import json, sys
for rev in json.load(sys.stdin).values():
  for path, m in rev['data'].items():
    if 'gir_score' in m.get('data', {}):
      print(f'  dvc metrics show: {path} gir_score {m[\"data\"][\"gir_score\"]}')"

echo "== 4. girml pull the champion into a clean folder, then restore with it"
mkdir -p "$work/clean" && cd "$work/clean"
girml pull model models:/gir-restorer@champion -o champion
python -c "import skimage.io, skimage.data; skimage.io.imsave('photo.png', skimage.data.astronaut())"
girml restore photo.png -o restored --model champion
ls -l restored
echo "== stack end-to-end: OK ($work)"
