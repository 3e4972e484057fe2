# Two commands on a fresh machine with Python 3.11+ and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install demo test test-live lint bench clean chromium screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs exactly the locked versions, then the project itself without touching them.
$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/roi demo

# Two workers (CI has two cores); a test file runs whole on one worker, so its fixtures are built once.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The report's browser test opens it in Debian's Chromium (driven by Playwright, no browser download). Best
# effort: installed with apt when missing and running as root; otherwise that one test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report's browser test..."; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } \
	      >/dev/null 2>&1 || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no chromium (and not root): the browser test will be skipped"; fi; }

# docs/img/report.png, the README's picture of the HTML report: the demo's warehouse (made by `make demo` when
# missing) rendered and photographed in Chromium.
screenshot: $(STAMP) chromium
	@test -f out/demo/roi.duckdb || $(BIN)/roi demo
	$(BIN)/python docs/make_screenshot.py out/demo/roi.duckdb docs/img/report.png

test-live: $(STAMP)
	$(BIN)/python -m pytest -q -m live -p no:randomly tests/live

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
