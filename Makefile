# nnopt: `make demo` sets everything up and runs an example; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCES := $(shell find compiler dialects passes backends testing -name '*.py' -o -name '*.lark' -o -name '*.toml' -o -name '*.c' 2>/dev/null)
STAMP := $(VENV)/.nnopt-installed

.PHONY: all demo test lint typecheck unit lit bench clean arm-tools

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# (Re)install when pyproject.toml or any source file changes; strict editable mode
# links every module, so mypy and the tools see exactly the `nnopt.*` package.
$(STAMP): pyproject.toml $(SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,peers]' --config-settings editable_mode=strict
	@touch $@

demo: $(STAMP)
	$(BIN)/nnopt-opt examples/demo.mlir --pass-pipeline='builtin.module(canonicalize,cse)'
	@mkdir -p out
	$(BIN)/nnopt-opt examples/models/kws_dscnn.nn --pass-pipeline='builtin.module(canonicalize,cse)' -o out/kws_dscnn.mlir
	$(BIN)/nnopt run out/kws_dscnn.mlir --seed 0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy -p nnopt.compiler -p nnopt.dialects -p nnopt.passes -p nnopt.backends -p nnopt.testing

unit: $(STAMP)
	$(BIN)/python -m pytest -n auto 2>/dev/null || $(BIN)/python -m pytest

lit: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/lit -q tests/filecheck

# The Cortex-M4 tests of the C backend need Debian's bare-metal toolchain and QEMU: installed
# here when missing (as root with apt-get); otherwise those tests skip with a message.
ARM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

arm-tools:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
	    && [ -d /usr/lib/arm-none-eabi/newlib ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(ARM_PACKAGES) (Cortex-M4 tests)"; \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq $(ARM_PACKAGES) \
	    || { apt-get update -qq && apt-get install -y -qq $(ARM_PACKAGES); }; } \
	    >/dev/null 2>&1 || echo "warning: could not install $(ARM_PACKAGES); the Cortex-M4 tests will skip"; \
	else echo "note: $(ARM_PACKAGES) missing (not root or no apt-get); the Cortex-M4 tests will skip"; fi

test: lint typecheck arm-tools
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest

# Every section, several minutes; rewrites BENCHMARKS.md. One section: make bench BENCH_ARGS='--only planning'
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
