# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstall when the dependencies or the install recipes change (the stamp is newer otherwise).
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-tools lint stack-up stack-down stack-status bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# Every install step runs through stack/install_step.py: its environment is built from an
# allow-list (no CARGO_*, RUSTFLAGS, GO* or PIP_* of the caller's), and what it builds goes to
# a folder keyed by a hash of its inputs, so that a changed input builds from nothing. Nothing
# here is exported: a recipe's variables never reach another step (the influxd build).
STEP := $(PYTHON) stack/install_step.py

# The sink's Rust line formatter, built by cargo into a target folder keyed by the crate's
# manifest and lock file, this Makefile and the toolchains (crates stay cached in ~/.cargo).
NATIVE := sinks/native_lines
NATIVE_STAMP := $(VENV)/.installed-native
NATIVE_SOURCES := $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(NATIVE)/pyproject.toml $(wildcard $(NATIVE)/src/*.rs $(NATIVE)/*.pyi)
NATIVE_STEP := $(STEP) native-lines --build-dir-var CARGO_TARGET_DIR \
	--input $(NATIVE)/Cargo.toml --input $(NATIVE)/Cargo.lock --input $(NATIVE)/pyproject.toml \
	--input Makefile --toolchain 'rustc --version' --toolchain 'cargo --version' \
	--toolchain 'cc --version' --toolchain '$(PYTHON) --version'

$(STAMP): pyproject.toml Makefile
	$(STEP) venv -- $(PYTHON) -m venv $(VENV)
	$(STEP) venv -- $(BIN)/pip install -q --upgrade pip
	$(STEP) venv -- $(BIN)/pip install -q -e '.[dev,analysis]'
	touch $@

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	$(NATIVE_STEP) -- $(BIN)/pip install -q ./$(NATIVE)
	touch $@

install: $(NATIVE_STAMP) ## create .venv and install the service (with its Rust line formatter) and its dev tools

demo: $(NATIVE_STAMP) ## bring the local stack up and run readings end to end (MQTT -> InfluxDB)
	$(BIN)/zerocarbon demo

lint: $(NATIVE_STAMP) ## ruff (lint + format), mypy, import layers (lint-imports), declared dependencies (deptry), compose file schema check, alert rules (promtool)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/deptry . bench
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
	$(STEP) lint-packages -- $(BIN)/python -m stack.debian_packages lint
	promtool check rules docker/prometheus/alert-rules.json
	promtool check config --syntax-only docker/prometheus/prometheus.yml

test-tools: $(STAMP) ## what the suite needs beside the stack: Debian's chromium and chromedriver, the AsyncAPI parser
	$(STEP) test-packages -- $(BIN)/python -m stack.debian_packages
	$(STEP) asyncapi-parser -- bash tools/asyncapi-check/install.sh >/dev/null

test: lint test-tools ## lint, install the stack, run pytest against an isolated instance of it (started and stopped by the run)
	$(BIN)/python -m stack.isolated_stack $(BIN)/zerocarbon stack install
	$(BIN)/pytest

stack-up: $(STAMP) ## start Kafka, Mosquitto and InfluxDB (installs on first use)
	$(BIN)/zerocarbon stack up

stack-down: $(STAMP) ## stop the local stack
	$(BIN)/zerocarbon stack down

stack-status: $(STAMP) ## health and version of each local service, as JSON
	$(BIN)/zerocarbon stack status

bench: $(NATIVE_STAMP) ## the benchmark suite on the isolated stack instance: tables printed, JSON in bench/results/ (~10 min)
	$(BIN)/python bench/suite.py

clean: ## remove the virtual environment (the stack's cache and data stay)
	rm -rf $(VENV)
