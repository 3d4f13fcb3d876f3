# switchyard developer targets. `make run` starts a node; `make test` is what CI runs.
GO ?= go
PKGS := ./...
# The version `switchyard version` prints, stamped by `make build` and `make release`.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Packages with concurrency: the race detector runs on them in `make test`.
RACE_PKGS := ./engine/... ./netpoll/... ./internal/readbatch/... ./client/... ./proxy/... ./node/... ./loadgen/... ./bench/... ./link/... ./router/... ./cluster/... ./span/... ./metrics/... ./master/... ./web/... ./bridge/...

.PHONY: run build test interop-js bench lint profile pgo release bench-e2e cluster cluster-stop fuzz

# Builds bin/switchyard, then the recipe's shell execs it (no `go run` parent in between:
# a signal to make's recipe reaches the router itself). Flags: make run ARGS="--listen ...".
run: build
	exec bin/switchyard start $(ARGS)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/switchyard ./cmd/switchyard

test: interop-js
	$(GO) vet $(PKGS)
	@# The epoll path is the portable default: the binary must keep building on macOS
	@# (and on Windows, where it is built but not tested here).
	GOOS=darwin $(GO) build -o /dev/null ./...
	GOOS=windows $(GO) build -o /dev/null ./...
	$(GO) test -count=1 -timeout 8m $(PKGS)
	$(GO) test -count=1 -timeout 8m -race $(RACE_PKGS)
	@# go test hides a passing package's output: say which WAMP vector suites ran or skipped.
	@$(GO) test -count=1 -v -run '^TestConformance' ./codec/ | grep '^codec conformance:'

# The AutobahnJS and wampy.js clients of the interop tests (pinned in
# interop/js/package-lock.json), installed by `npm ci` when missing or older than the lock
# file. Without Node.js >= 20 and npm, `make test` stops with what to install; INTEROP_JS=skip
# runs the tests without them (the JS interop tests are then skipped).
JS_STAMP := interop/js/node_modules/.package-lock.json
interop-js:
	@if [ "$(INTEROP_JS)" = skip ]; then echo "make: INTEROP_JS=skip: the AutobahnJS and wampy.js interop tests will be skipped"; \
	else $(MAKE) -s --no-print-directory $(JS_STAMP); fi

$(JS_STAMP): interop/js/package.json interop/js/package-lock.json
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ "$$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then \
	  echo "make test: the interop tests need Node.js >= 20 and npm (have: node $$(node --version 2>/dev/null || echo none), npm $$(npm --version 2>/dev/null || echo none))." >&2; \
	  echo "  install them, then: (cd interop/js && npm ci)" >&2; \
	  echo "  or run without the JS interop tests: make test INTEROP_JS=skip" >&2; \
	  exit 1; \
	fi
	cd interop/js && npm ci --no-audit --no-fund --loglevel=error

# Runs every Fuzz target of the module for FUZZTIME each, one at a time (`go test` alone
# runs only their seed corpus). FUZZPAR bounds the fuzzing workers (default: every core).
# A crasher is written under the package's testdata/fuzz/ and fails the run.
FUZZTIME ?= 10s
FUZZPAR ?= 0
fuzz:
	@set -e; for f in $$(find . -name '*_test.go' -not -path './interop/js/*' | sort); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$(dirname $$f) $$t for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) \
	      $$(test "$(FUZZPAR)" = 0 || echo -parallel $(FUZZPAR)) $$(dirname $$f); \
	  done; \
	done

# Micro-benchmarks with -count, compared by benchstat against the previous commit.
bench:
	bench/micro.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

# Captures router CPU profiles under load into profiles/ (see profiles/NOTES.md).
profile:
	profiles/capture.sh

# Refreshes the PGO profile the release build uses from the last `make profile`.
pgo: profile
	cp profiles/merged.pprof cmd/switchyard/default.pgo
	@echo "cmd/switchyard/default.pgo refreshed; measure the gain with profiles/pgo-ab.sh"

# Release build: uses cmd/switchyard/default.pgo (go build's -pgo=auto).
release:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/switchyard ./cmd/switchyard

# End-to-end scenarios against a fresh router per scenario; results, table and chart
# land in bench/out/ (see bench/RESULTS.md for the recorded runs).
bench-e2e:
	$(GO) build -o bin/switchyard ./cmd/switchyard && bin/switchyard bench run all

# The local example cluster (a master, 2 proxies, 3 routers) on loopback, in the
# background; the config files, logs and pids live in .cluster/ (see cluster/local.sh).
# MASTERS=3 writes three master replicas (the first time .cluster/ is written).
MASTERS ?= 1
cluster:
	MASTERS=$(MASTERS) cluster/local.sh start

cluster-stop:
	cluster/local.sh stop
