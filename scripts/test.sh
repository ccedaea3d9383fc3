#!/usr/bin/env bash
# The project's test command (README, `make test`, .ci/run): lint, then the whole suite.
# pytest exits 5 when it collects no test; that is reported as a failure, never as success.
set -uo pipefail
export DVC_NO_ANALYTICS=1 GX_ANALYTICS_ENABLED=false PREFECT_SERVER_ANALYTICS_ENABLED=false
export DO_NOT_TRACK=1 MPLBACKEND=Agg OMP_WAIT_POLICY=PASSIVE
ruff check girml pipelines tests benchmarks || exit 1
pytest -m "" "$@"   # every test, slow ones included (pyproject's default skips them)
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
