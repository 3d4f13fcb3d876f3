# switchyard developer targets. `make run` starts a node; `make test` is what CI runs.
GO ?= go
PKGS := ./...
# Packages with concurrency: the race detector runs on them in `make test`.
RACE_PKGS := ./engine/... ./netpoll/... ./client/... ./proxy/... ./node/... ./loadgen/... ./bench/... ./link/... ./router/... ./cluster/... ./span/...

.PHONY: run build test bench lint profile pgo release bench-e2e cluster cluster-stop

run:
	$(GO) run ./cmd/switchyard start

build:
	$(GO) build -o bin/switchyard ./cmd/switchyard

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 8m $(PKGS)
	$(GO) test -count=1 -timeout 8m -race $(RACE_PKGS)
	@# go test hides a passing package's output: say which WAMP vector suites ran or skipped.
	@$(GO) test -count=1 -v -run '^TestConformance' ./codec/ | grep '^codec conformance:'

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
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o bin/switchyard ./cmd/switchyard

# End-to-end scenarios against a fresh router per scenario; results, table and chart
# land in bench/out/ (see bench/RESULTS.md for the recorded runs).
bench-e2e:
	$(GO) build -o bin/switchyard ./cmd/switchyard && bin/switchyard bench run all

# The local example cluster (2 proxies, 3 routers) on loopback, in the background; the
# config files, logs and pids live in .cluster/ (see cluster/local.sh).
cluster:
	cluster/local.sh start

cluster-stop:
	cluster/local.sh stop
