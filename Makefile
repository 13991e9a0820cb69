# patchtree: the two commands that set everything up are `make demo` and `make test`.
GO         ?= go
BIN        ?= bin/patchtree
# The release version stamped into the binary (`patchtree version`, `patchtree status`,
# GET /v1/status); the commit comes from the Go toolchain's VCS stamp, which BUILDVCS turns on
# even where GOFLAGS says -buildvcs=false (set BUILDVCS=-buildvcs=false where git cannot run).
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    ?= -X patchtree/version.Version=$(VERSION)
BUILDVCS   ?= -buildvcs=auto
DEMO_FLAGS ?=
# Packages whose tests start real processes or Raft groups get a generous timeout. Integration
# tests run in parallel, four at a time (each mostly waits on its servers).
TEST_FLAGS ?= -race -count=1 -timeout 12m -parallel 4
# `make soak` sets PATCHTREE_SOAK=1: the long forms of the randomised and fault-injection tests
# (every seed, round and kill; the 500,000-update generated feed).
SOAK_FLAGS ?= -race -count=1 -timeout 60m -parallel 4
# One package at a time (-p 1): the procbench benchmarks measure a server process's CPU and
# memory, which another package's benchmark running beside them would disturb.
BENCH_FLAGS ?= -run '^$$' -bench . -benchmem -count 1 -timeout 60m -p 1

.PHONY: build test soak demo bench lint fuzz clean screenshots

build:
	$(GO) build $(BUILDVCS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/patchtree

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test $(TEST_FLAGS) ./...

soak: lint
	PATCHTREE_SOAK=1 $(GO) test $(SOAK_FLAGS) ./...

demo: build
	./$(BIN) demo $(DEMO_FLAGS)

# The web console's screenshots in docs/console/ (shown by docs/console.md), taken at 1280x800 by
# the browser test against a parent and two children with the Mozilla catalog (needs chromium).
screenshots:
	PATCHTREE_SCREENSHOTS_DIR=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestConsole$$' ./integration/

bench:
	$(GO) test $(BENCH_FLAGS) ./...

# A short fuzzing pass over every parser with a checked-in corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseRange -fuzztime 30s ./langalert/
	$(GO) test -run '^$$' -fuzz FuzzParseNative -fuzztime 30s ./replication/importer/
	$(GO) test -run '^$$' -fuzz FuzzNativeLimits -fuzztime 30s ./replication/importer/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./replication/csaf/
	$(GO) test -run '^$$' -fuzz FuzzParseSettings -fuzztime 30s ./replication/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./replication/compliance/
	$(GO) test -run '^$$' -fuzz FuzzDecodeSummary -fuzztime 30s ./replication/compliance/
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 30s ./backup/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatchRows -fuzztime 30s ./store/
	$(GO) test -run '^$$' -fuzz FuzzRowHashJSON -fuzztime 30s ./replication/importer/

clean:
	rm -rf bin
