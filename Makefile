# Two entry points a newcomer needs: `make demo` and `make test`. Each creates .venv on first use,
# installs the CPU torch 2.13.0 wheel first (so no dependency can pull a CUDA build), then the project.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
EXTRAS ?= train,sim,robots,viz,onnx,dev

.PHONY: demo test test-slow lint bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	-./scripts/install_sim_system_deps.sh
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

# The SO-101 multi-task policy on pick-place, stacking and sorting (~6 min); BENCHMARK=metaworld: the Meta-World one.
BENCHMARK ?= so101
demo: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/smolvla demo --benchmark $(BENCHMARK)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
