# bayesvae: the two set-up commands are `make demo` and `make test`; each creates .venv and installs
# the project (with its test extra) from pyproject.toml on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: demo test test-slow bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: train the default VAE on the embedded digits data and diagnose it (runs/demo)
demo: $(STAMP)
	$(BIN)/bayesvae train --out runs/demo --force
	@if $(BIN)/bayesvae diagnose --help >/dev/null 2>&1; then $(BIN)/bayesvae diagnose runs/demo; fi

## test: the default test suite (a few minutes on 2 cores)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## test-slow: the longer checks marked `slow`
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

## bench: the benchmarks, writing benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## bench-quick: every benchmark once on tiny sizes (keeps the code working; asserts no speed)
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) runs build *.egg-info
