# Two entry points on a fresh machine:  `make repro` (the default pipeline) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# torch/OpenMP threads spin while waiting; on 2 shared cores that costs 10-30x (see BENCHMARKS)
export OMP_WAIT_POLICY := PASSIVE
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test test-fast lint lock clean

install: $(VENV)/.installed

# Which torch build: TORCH=cpu (PyTorch's CPU index), TORCH=cu126 (or another CUDA tag), or
# empty (default): whatever pip's configured indexes offer for torch==2.13.0 (PyPI's CUDA build
# on Linux, or a CPU wheel that a machine provides through pip's own find-links).
TORCH ?=
TORCH_INDEX := $(if $(TORCH),--extra-index-url https://download.pytorch.org/whl/$(TORCH))

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "girml needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	@echo "installing requirements.lock into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install --disable-pip-version-check $(TORCH_INDEX) -r requirements.lock \
		> $(VENV)/install.log 2>&1 \
		|| { grep -v '^WARNING: Location' $(VENV)/install.log | tail -40; exit 1; }
	@$(BIN)/pip install --disable-pip-version-check --no-deps -e . >> $(VENV)/install.log 2>&1 \
		|| { tail -40 $(VENV)/install.log; exit 1; }
	touch $@

repro: install
	dvc repro

test: install
	bash scripts/test.sh

# the fast subset (tests not marked slow): a few minutes, for the edit-test loop
test-fast: install
	bash scripts/test.sh -m "not slow"

lint: install
	ruff check girml pipelines tests benchmarks
	ruff format --check girml pipelines tests benchmarks

# Re-resolve the lock after editing pyproject.toml (needs uv: pip install uv). torch is pinned
# without a local label (+cpu, +cu126): the build comes from TORCH at install time.
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 $(TORCH_INDEX) \
		--index-strategy unsafe-best-match -o requirements.lock
	sed -i -E 's/^(torch==[^+ ]+)\+[a-z0-9]+$$/\1/' requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Local service stack on 127.0.0.1 (S3 endpoint, MLflow server, Prefect server; pipelines/stack.py),
# then the Prefect flow against it: every DVC stage a task, the summary in the Prefect UI.
# `stack` also points DVC's default remote at the stack's bucket (.dvc/config.local).
.PHONY: stack stack-down pipeline-stack
stack: install
	girml stack up

stack-down:
	girml stack down

pipeline-stack: install
	@test -f .stack/env || { echo "error: no .stack/env; run 'make stack' first" >&2; exit 1; }
	set -a && . ./.stack/env && set +a && girml flow
