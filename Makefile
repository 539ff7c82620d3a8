# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-all demo lint bench guard gpu-wheels gpu-check clean

install: $(STAMP)

# torch/torchvision first, at the versions whose wheels lie on this disk (see the developers' guide);
# then the project itself, editable, with test extras. Re-runs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m ''

demo: install
	$(BIN)/python -m dehrnet_cli.demo

lint: install
	$(BIN)/ruff check dehrnet_cli models tests

bench: install
	$(BIN)/dehrnet bench --quick --precision fp32 --precision bf16 --markdown docs/benchmarks.md --json bench.json

# the accuracy guard of the bf16/int8 (fp16 on CUDA) paths: trains its synthetic model once (~12 min on 2 cores)
guard: install
	$(BIN)/dehrnet guard

# what the GPU machine lacks (wheels for Python 3.12, the sample data, the guard's trained model) into the ignored
# .gpu/ (48 MiB), which a device call carries; docs/gpu.md
gpu-wheels:
	PYTHON=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) bash scripts/gpu_wheels.sh

# issue 19's proof on a CUDA machine, with its own python3 (no venv): under 8 minutes; without CUDA it says so
gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info
