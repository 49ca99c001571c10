# opsdeck — `make run` starts the dashboard, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501
# Extra host names browsers use to reach the dashboard (space-separated), besides localhost.
ALLOWED_HOSTS ?=
ALLOWED_HOST_ARGS := $(if $(strip $(ALLOWED_HOSTS)),$(foreach h,localhost 127.0.0.1 ::1 $(ALLOWED_HOSTS),--server.allowedHosts $(h)))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint format install install-dev system-deps bench clean

run: $(VENV)/.runtime ## install (once) and start the dashboard on the local workspace
	@$(PY) -m lib.launch_check --host "$(HOST)" --allowed-hosts "$(ALLOWED_HOSTS)"
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) $(ALLOWED_HOST_ARGS)

test: $(VENV)/.dev system-deps ## install (once) and run the whole suite
	@$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

# The inner loop: no subprocess, FLAML or browser tests; the slowest ten are listed so creep shows.
test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not slow and not e2e" --durations=10

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

# Debian packages the tests use: Chromium for the browser test, ab for benchmark comparisons.
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v ab >/dev/null || missing="$$missing apache2-utils"; \
	[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$$missing fonts-noto-color-emoji"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

bench: $(VENV)/.dev
	@sed -n "1,20p" bench/README.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
