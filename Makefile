# streamd build, lint and test entry points.
#
#   make test         lint, Go tests with -race, conformance in durable and memory mode
#   make build        build bin/streamd
#   make test-go      Go tests with -race
#   make conformance  conformance suite in both storage modes
#   make lint         gofmt, go vet, staticcheck
#   make stress       repeat the Go tests under -race (STRESS_COUNT, STRESS_RUN)
#   make crash-test   SIGKILL streamd under load and check durability (CRASH_CYCLES)
#   make bench        benchmark streamd against the Node reference server and
#                     the load tool's ceiling (scripts/bench.sh; BENCH_* knobs)
#   make bench-smoke  ~10 s run of every benchmark scenario against streamd;
#                     fails on errors or missing messages

GO               ?= go
BIN              := bin/streamd
STATICCHECK_VERSION := v0.8.2
STATICCHECK      := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# Optional prebuilt binary for the conformance runs; empty means build ./cmd/streamd.
STREAMD_BIN      ?=
STRESS_COUNT     ?= 20
STRESS_RUN       ?= .
CRASH_CYCLES     ?= 50

.PHONY: all ci build test test-go race stress crash-test conformance conformance-durable conformance-memory lint fmt-check vet staticcheck clean bench bench-smoke

.NOTPARALLEL:

all: build

build:
	$(GO) build -o $(BIN) ./cmd/streamd

# The full check: lint, Go tests under the race detector, then the
# conformance suite against streamd in both storage modes.
test: lint test-go conformance

ci: test

test-go:
	$(GO) test -race -count=1 ./...

race: test-go

crash-test:
	STREAMD_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -timeout 20m -run Crash -v ./crashtest/

stress:
	$(GO) test -race -count=$(STRESS_COUNT) -run '$(STRESS_RUN)' ./...

# Runs both modes even when the first fails, then fails if either did.
conformance:
	@status=0; \
	scripts/conformance.sh durable $(STREAMD_BIN) || status=1; \
	scripts/conformance.sh memory $(STREAMD_BIN) || status=1; \
	exit $$status

conformance-durable:
	scripts/conformance.sh durable $(STREAMD_BIN)

conformance-memory:
	scripts/conformance.sh memory $(STREAMD_BIN)

# Benchmarks (not part of make test); STREAMD_BIN, if set, is used instead of
# building bin/streamd.
bench:
	STREAMD_BIN=$(STREAMD_BIN) scripts/bench.sh

bench-smoke:
	STREAMD_BIN=$(STREAMD_BIN) scripts/bench.sh --smoke

lint: fmt-check vet staticcheck

fmt-check:
	@files="$$(find . -name '*.go' -not -path './.git/*' -not -path './conformance/node_modules/*' -not -path '*/testdata/*')"; \
	unformatted="$$(if [ -n "$$files" ]; then gofmt -l $$files; fi)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

clean:
	rm -rf bin
