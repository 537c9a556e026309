# bayesvae: the two set-up commands are `make demo` and `make test`; each creates .venv and installs
# the project (with its test extra) from pyproject.toml on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: demo test test-slow bench bench-quick browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: train the default VAE on the embedded digits data, diagnose it, write its report (runs/demo/report.html)
demo: $(STAMP)
	$(BIN)/bayesvae train --out runs/demo --force
	$(BIN)/bayesvae diagnose runs/demo
	$(BIN)/bayesvae report runs/demo --out runs/demo/report.html
	@echo "report: $(CURDIR)/runs/demo/report.html"

## browser: headless Chromium for the report's browser test (Debian package; installed only where missing
## and run as root with apt-get; otherwise that test is skipped and says why)
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "note: could not install chromium: the report's browser test will be skipped"; \
	else echo "note: chromium is missing (install the 'chromium' package as root): the report's browser test will be skipped"; fi

## test: the default test suite, one pytest-xdist worker per core (3–6 minutes on 2 cores)
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n auto

## test-slow: the longer checks marked `slow`
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m slow

## bench: the benchmarks, writing benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## bench-quick: every benchmark once on tiny sizes (keeps the code working; asserts no speed)
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) runs build *.egg-info
