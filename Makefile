# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstall when the dependencies change (the stamp is newer than pyproject.toml otherwise).
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint stack-up stack-down stack-status bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# The sink's Rust line formatter, built by cargo (crates cached in ~/.cargo, builds outside the
# clone, one build at a time: clones share the folder and maturin copies the library after cargo).
NATIVE := sinks/native_lines
NATIVE_STAMP := $(VENV)/.installed-native
NATIVE_SOURCES := $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(NATIVE)/pyproject.toml $(wildcard $(NATIVE)/src/*.rs $(NATIVE)/*.pyi)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/zerocarbon/cargo-target

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	mkdir -p $(CARGO_TARGET_DIR)
	flock $(CARGO_TARGET_DIR)/.zerocarbon-build.lock $(BIN)/pip install -q ./$(NATIVE)
	touch $@

install: $(NATIVE_STAMP) ## create .venv and install the service (with its Rust line formatter) and its dev tools

demo: $(NATIVE_STAMP) ## bring the local stack up and run readings end to end (MQTT -> InfluxDB)
	$(BIN)/zerocarbon demo

lint: $(NATIVE_STAMP) ## ruff (lint + format), mypy, compose file schema check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml

test: lint ## lint, bring the local stack up if needed, run pytest against it
	$(BIN)/zerocarbon stack up
	$(BIN)/pytest

stack-up: $(STAMP) ## start Kafka, Mosquitto and InfluxDB (installs on first use)
	$(BIN)/zerocarbon stack up

stack-down: $(STAMP) ## stop the local stack
	$(BIN)/zerocarbon stack down

stack-status: $(STAMP) ## health and version of each local service, as JSON
	$(BIN)/zerocarbon stack status

bench: $(NATIVE_STAMP) ## the benchmark suite on the local stack: tables printed, JSON in bench/results/ (~10 min)
	$(BIN)/python bench/suite.py

clean: ## remove the virtual environment (the stack's cache and data stay)
	rm -rf $(VENV)
