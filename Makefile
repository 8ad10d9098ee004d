# The two commands of the README: `make up` (set up, run on the embedded local cloud) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: mqtt fuse console browser install up test lint typecheck bench fuzz localstack-up localstack-deploy localstack-test ministack-test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# The fleet's local MQTT broker and its command-line clients (Debian packages; tests use both).
MOSQUITTO := /usr/sbin/mosquitto
$(MOSQUITTO):
	command -v apt-get >/dev/null || { echo "install mosquitto and mosquitto-clients (2.0) with your package manager"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto=2.0.11-1.2+deb12u2 mosquitto-clients=2.0.11-1.2+deb12u2

mqtt: $(MOSQUITTO)

# libfuse3 and fusermount3 for `lighthouse mount` (mfusepy loads libfuse3 at run time; tests mount).
FUSERMOUNT := /usr/bin/fusermount3
$(FUSERMOUNT):
	command -v apt-get >/dev/null || { echo "install fuse3 (libfuse3) with your package manager"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3=3.14.0-4 libfuse3-3=3.14.0-4

fuse: $(FUSERMOUNT)

# The web console: npm installs the locked dependencies, esbuild bundles them (console/build.mjs).
NPM := /usr/bin/npm
$(NPM):
	command -v apt-get >/dev/null || { echo "install Node.js 18+ and npm with your package manager"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm

CONSOLE_DIST := console/dist/index.html
$(CONSOLE_DIST): $(NPM) console/package.json console/package-lock.json console/build.mjs console/index.html $(wildcard console/src/*.js console/src/*.jsx console/src/*.css console/src/pages/*.jsx)
	cd console && npm ci --no-audit --no-fund --loglevel=error && npm run build

console: $(CONSOLE_DIST)

# Headless Chromium for the console's browser tests (Playwright drives the system browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	command -v apt-get >/dev/null || { echo "install chromium with your package manager"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium=156.0.8078.114-1~deb12u1

browser: $(CHROMIUM)

install: $(STAMP) $(MOSQUITTO) $(FUSERMOUNT) $(CONSOLE_DIST) $(CHROMIUM)

up: $(STAMP) $(MOSQUITTO) $(FUSERMOUNT) $(CONSOLE_DIST)
	$(BIN)/lighthouse up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(MOSQUITTO) $(FUSERMOUNT) $(CONSOLE_DIST) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) $(MOSQUITTO) $(FUSERMOUNT) $(CONSOLE_DIST) $(CHROMIUM)
	$(BIN)/python -m tests.perf.bench_foundation
	$(BIN)/python -m tests.perf.bench_elicitation
	$(BIN)/python -m tests.perf.bench_validation
	$(BIN)/python -m tests.perf.bench_pipelines
	$(BIN)/python -m tests.perf.bench_hardening
	$(BIN)/python -m tests.perf.bench_durability
	$(BIN)/python -m tests.perf.bench_targets
	$(BIN)/python -m tests.perf.bench_gate_corpus
	$(BIN)/python -m tests.perf.bench_fleet
	$(BIN)/python -m tests.perf.bench_runs
	$(BIN)/python -m tests.perf.bench_history
	$(BIN)/python -m tests.perf.bench_push
	$(BIN)/python -m tests.perf.bench_console

# A long schemathesis run against the served OpenAPI document (the test suite runs a short one).
fuzz: $(STAMP)
	$(BIN)/python -m tests.security.schemathesis_run --max-examples 200

localstack-up:
	docker compose -f localstack/docker-compose.yml up -d

localstack-deploy: $(STAMP)
	bash localstack/deploy.sh

# The end-to-end suite against the stack `localstack-deploy` made (deploy a fresh one first).
localstack-test: localstack-deploy
	LIGHTHOUSE_TARGET=endpoint LIGHTHOUSE_STATE_FILE=.lighthouse/local.json $(BIN)/pytest tests/e2e -p no:randomly

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info .aws-sam

# Deploy template.yaml to a fresh MiniStack (no Docker) with the SAM CLI, as to AWS, and run the
# end-to-end suite against the deployed stack (both tools install into .lighthouse/tools, pinned).
ministack-test: $(STAMP) $(MOSQUITTO) $(FUSERMOUNT) $(CONSOLE_DIST) $(CHROMIUM)
	$(BIN)/python -m tests.e2e.on_ministack
