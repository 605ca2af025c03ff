# jobcompd: every rule installs what it needs and nothing that is already there.
#   make demo   run jobcompd end to end against a local Kafka broker started for it
#   make test   run the whole test suite (what CI runs, via .ci/run)
#   make build  compile (TypeScript -> dist/)
#   make bench  run every benchmark (about an hour; see bench/README.md)

SHELL := /bin/bash
.DEFAULT_GOAL := build

# node-gyp builds node-rdkafka (with its bundled librdkafka) and better-sqlite3 from source
# against the headers of the Node.js that runs them; it must never download headers.
NODE_DIR := $(shell node -p "require('path').resolve(process.execPath, '../..')")
export npm_config_nodedir := $(NODE_DIR)
export npm_config_build_from_source := true

TS_SOURCES := $(shell find src tools bench -name '*.ts' 2>/dev/null)

.PHONY: build demo test bench deps test-deps bench-deps kafka-jars slurm clean native

node_modules/.installed: package.json package-lock.json scripts/system-deps.sh
	scripts/system-deps.sh build
	@test -f "$(NODE_DIR)/include/node/node_api.h" || { echo "Node.js headers not found in $(NODE_DIR)/include/node" >&2; exit 1; }
	@# npm install (with the committed lockfile), not npm ci: npm 11 wrongly reports the lockfile
	@# out of sync because it omits other platforms' optional builds of unrs-resolver (a jest dependency).
	npm install --no-audit --no-fund --loglevel=error
	touch $@

dist/.built: node_modules/.installed $(TS_SOURCES) tsconfig.json tsconfig.build.json
	npm run --silent build
	touch $@

native/build/jobcompd-hook: native/jobcompd-hook.c native/Makefile
	$(MAKE) -s -C native

native: native/build/jobcompd-hook

build: dist/.built native

deps: node_modules/.installed

kafka-jars:
	@scripts/system-deps.sh kafka
	@tools/kafka/fetch.sh >/dev/null

slurm:
	@tools/slurm/install.sh

test-deps: deps kafka-jars slurm
	scripts/system-deps.sh test
	@test/oracle/build.sh >/dev/null

test: build test-deps
	npx jest

bench-deps: deps kafka-jars
	scripts/system-deps.sh bench

bench: build bench-deps
	node dist/bench/run-all.js

demo: build kafka-jars
	node dist/tools/demo.js

clean:
	rm -rf dist node_modules/.installed native/build
