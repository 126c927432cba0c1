# The two commands a newcomer needs: `make demo` runs gridshift locally, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo down test lint binaries bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# Builds the control-plane binaries once (cached in ~/.cache/gridshift), starts a local cluster
# with fake GPU nodes, installs the CRDs and applies the sample 2 MW policy.
demo: install
	$(BIN)/gridshift dev cluster up
	KUBECONFIG=$$($(BIN)/gridshift dev cluster status | sed -n 's/^kubeconfig: *//p') \
	  $$($(BIN)/gridshift dev cluster build)/kubectl apply -f examples/policies/site-2mw.yaml
	KUBECONFIG=$$($(BIN)/gridshift dev cluster status | sed -n 's/^kubeconfig: *//p') \
	  $$($(BIN)/gridshift dev cluster build)/kubectl get nodes,powerpolicies -o wide

down: install
	$(BIN)/gridshift dev cluster down

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

binaries: install
	$(BIN)/gridshift dev cluster build

test: lint binaries
	$(BIN)/python -m pytest

bench: binaries
	$(BIN)/python bench/cluster_start.py --json out/cluster_start.json
