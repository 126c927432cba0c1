# The two commands a newcomer needs: `make demo` runs gridshift locally, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TRAIN  := $(VENV)/.installed-train
H100   ?= ../shared/data/gpu-power/h100-8gpu-llm-training

.PHONY: install install-train preflight demo down test test-fast lint binaries bench default-model crds manifests

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

# PyTorch and onnx, for training and for the tests of the training half.
$(TRAIN): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,train,plot]'
	touch $@

install-train: $(TRAIN)

# The whole loop in about four minutes: builds the control-plane binaries once (cached in
# ~/.cache/gridshift), starts the local cluster unless one runs, then runs Prometheus, the
# telemetry twin, workloads, a battery, a 10 kW policy and the operator, prints a live table and
# writes out/gridshift-demo.png.
demo: install
	$(BIN)/gridshift demo --out out/gridshift-demo.png

down: install
	$(BIN)/gridshift dev cluster down

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir out/site

# Within seconds: Go, disk and Prometheus (or what builds it), each missing one named with its fix,
# and how long the first build will take.
preflight: install
	$(BIN)/gridshift dev cluster build --prometheus --check

binaries: install
	$(BIN)/gridshift dev cluster build --prometheus

test: preflight lint binaries install-train
	$(BIN)/python -m pytest

# The fast lane: no Go build, no PyTorch, no control plane, no Prometheus server (what a change to
# pure logic needs).
test-fast: install
	$(BIN)/python -m pytest -m "not cluster and not go and not train and not prometheus" -q

bench: binaries install-train
	$(BIN)/python bench/cluster_start.py --json out/cluster_start.json
	$(BIN)/python bench/forecast_latency.py --json out/forecast_latency.json
	$(BIN)/python bench/forecast_adapt.py --json out/forecast_adapt.json
	$(BIN)/python bench/forecast_loro.py --teacher-epochs 30 --student-epochs 60 --json out/forecast_loro.json
	$(BIN)/python bench/operator_scale.py --json out/operator_scale.json
	$(BIN)/python bench/peak_sim.py --json out/peak_sim.json
	$(BIN)/python bench/crossval.py --json out/crossval.json
	$(BIN)/python bench/sim_speed.py --strategies none reactive student --json out/sim_speed.json

# Rebuilds the forecaster bundled in the package from the shared H100 traces (seed 0, CPU).
default-model: install-train
	rm -rf gridshift/forecaster/default_model
	$(BIN)/gridshift forecast train $(addprefix --data ,$(wildcard $(H100)/run-*-per-gpu.csv)) \
	  --out gridshift/forecaster/default_model \
	  --no-teacher --seed 0 --device cpu --teacher-epochs 40 --student-epochs 100 --quantize --prune 0.5

# Regenerates crds/ from the API types and manifests/install.yaml from the chart (tests fail on drift).
MANIFEST_VALUES := --namespace gridshift-system --kube-version 1.33.0 \
                   --set prometheusUrl=http://prometheus-operated.monitoring.svc:9090 \
                   --api-versions admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy
crds: install
	$(BIN)/gridshift crd --write crds

manifests: binaries crds
	$$($(BIN)/gridshift dev cluster build)/helm template gridshift helm/gridshift $(MANIFEST_VALUES) > manifests/install.yaml
