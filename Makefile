# Two commands do all the set-up on a fresh machine: `make run` serves the app, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, unless the venv already has one (a GPU build the writer installed; see README).
TORCH_SPEC ?= torch==2.13.0
ARGS ?=

.PHONY: run test lint typecheck bench browser fonts postgres clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e .
	touch $@

# What the tests need on top (Playwright, PostgreSQL's driver, Ray, torchao, pypdf, linters): not for `make run`.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed fonts
	$(BIN)/illustrator serve $(ARGS)

# Fonts that carry most scripts, for PDF manuscripts (found on disk; Debian's packages when there are none):
# DejaVu for Latin, Greek, Cyrillic, Hebrew, Arabic...; WenQuanYi Zen Hei for Chinese, Japanese and Korean.
fonts:
	@ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq fonts-dejavu-core >/dev/null; fi; }
	@ls /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fonts-wqy-zenhei >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq fonts-wqy-zenhei >/dev/null; fi; }

# Debian's Chromium for the browser tests (never a browser downloaded by a test tool).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# Debian's PostgreSQL server for the `postgres` tests (they start their own throwaway server with initdb and pg_ctl).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

test: $(VENV)/.installed-test browser fonts postgres
	$(BIN)/pytest -q $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict illustrator storage ui

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
