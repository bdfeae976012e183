# Portcullis developer commands. `make test` is the one CI runs (after `make lint`).
CARGO ?= cargo

.PHONY: all build run test test-db test-js test-py lint fmt purity bench bench-micro bench-flood clean

all: build

build:
	$(CARGO) build --workspace

## Serves all dialects on 127.0.0.1:8080 with the embedded SQLite default (portcullis.db).
run:
	$(CARGO) run --release -p portcullis -- serve

## Every test: domain unit tests, contract tests on SQLite and PostgreSQL, HTTP tests,
## end-to-end tests against the real binary (which Cargo builds for them), doctests.
## Needs PostgreSQL (scripts/test-db.sh).
test: test-db test-js test-py
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
	$(CARGO) test --workspace --all-features --doc

test-db:
	./scripts/test-db.sh

## The PocketBase JS SDK the pocketbase client test drives (pinned by package-lock.json).
test-js:
	npm ci --prefix tests/js --no-audit --no-fund

## The SMTP sink the mail tests deliver to (pinned by tests/py/requirements.txt).
test-py:
	python3 -m venv tests/py/.venv
	tests/py/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt

lint: purity
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

purity:
	./scripts/check-domain-purity.sh

fmt:
	$(CARGO) fmt --all

## Portcullis over HTTP (release build, wrk) against baselines measured in the same run:
## one table, also written to target/bench/ as JSON (docs/performance.md). Needs wrk.
## Options go in BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick` (scripts/bench.py --help).
BENCH_ARGS ?=
bench: test-db
	@command -v wrk >/dev/null || { echo "make bench: needs wrk (apt-get install wrk)"; exit 1; }
	$(CARGO) build --release -p portcullis -p portcullis-bench
	python3 scripts/bench.py $(BENCH_ARGS)

## The in-process benchmarks: the domain's hot paths on the production adapters, and criterion's crypto.
bench-micro: test-db
	$(CARGO) bench -p portcullis --bench auth_paths
	$(CARGO) bench -p portcullis-crypto

## Issue 8's login flood (scripts/login-flood.sh) against a release build; needs wrk and curl.
bench-flood:
	@command -v wrk >/dev/null || { echo "make bench-flood: needs wrk (apt-get install wrk)"; exit 1; }
	$(CARGO) build --release -p portcullis
	scripts/login-flood.sh $${CARGO_TARGET_DIR:-target}/release/portcullis 200 8s

clean:
	$(CARGO) clean
