# switchyard developer targets. `make run` starts a node; `make test` is what CI runs.
GO ?= go
PKGS := ./...
# Packages with concurrency: the race detector runs on them in `make test`.
RACE_PKGS := ./engine/... ./netpoll/... ./client/... ./proxy/... ./node/... ./loadgen/...

.PHONY: run build test test-short race interop bench lint

run:
	$(GO) run ./cmd/switchyard start

build:
	$(GO) build -o bin/switchyard ./cmd/switchyard

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 8m $(PKGS)
	$(GO) test -count=1 -timeout 8m -race $(RACE_PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./codec/... ./engine/... ./netpoll/... | tee bench.out

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
