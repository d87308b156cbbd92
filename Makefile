# Everyday entry points. `make run` and `make test` build the virtual environment themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: setup run test lint format bench package clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "UA Console needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
		{ echo "Cannot create a virtual environment: on Debian run: sudo apt-get install -y python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/uaconsole $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(VENV)/bin/pytest $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) bench/parse.py
	$(PY) bench/store.py
	$(PY) bench/mi_latency.py
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(PY) bench/gui_lag.py
	$(PY) bench/core_calls.py
	$(PY) bench/udp_floor.py
	$(PY) bench/cps.py
	$(PY) bench/memory.py

# dist/uaconsole_VERSION_ARCH.deb: the PyInstaller bundle in /opt/uaconsole, a launcher, a .desktop
# entry and icons (Debian/Ubuntu; needs dpkg-deb and binutils, see packaging/linux/build_deb.py).
package: $(STAMP)
	@$(PY) -c 'import PyInstaller' 2>/dev/null || $(PY) -m pip install --quiet -e '.[package]'
	QT_QPA_PLATFORM=offscreen $(PY) packaging/linux/build_deb.py $(PACKAGE_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
