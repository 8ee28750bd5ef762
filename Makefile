# Vigil's tasks. `make dev` runs everything; `make test` checks everything.
GO            ?= go
WORKFLOWCHECK ?= go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRORLINT     ?= codeberg.org/polyfloyd/go-errorlint@v1.9.1
BIN           ?= bin/vigil

.PHONY: dev temporal build test fmt-check vet lint workflowcheck test-unit test-integration security chaos record-histories clean

## dev: run the whole stack (embedded Temporal + Web UI, worker, API) on the local Postgres.
dev:
	VIGIL_LOG_FORMAT=$${VIGIL_LOG_FORMAT:-text} $(GO) run ./cmd/vigil dev

## temporal: run the embedded Temporal server and Web UI alone; run `vigil worker` and `vigil api` beside it.
temporal:
	VIGIL_LOG_FORMAT=$${VIGIL_LOG_FORMAT:-text} $(GO) run ./cmd/vigil temporal

## build: build the vigil binary into bin/.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/vigil

## test: formatting, vet, linters, workflowcheck, unit tests, then integration tests on real servers.
test: fmt-check vet lint workflowcheck test-unit test-integration

fmt-check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.vigil/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@echo "gofmt: ok"

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

## lint: staticcheck (configured in staticcheck.conf) and errorlint, pinned, over the code and its tests.
lint:
	$(GO) run $(STATICCHECK) -tags integration ./...
	$(GO) run $(ERRORLINT) -tags integration ./...

## workflowcheck: statically check workflow code for non-determinism.
workflowcheck:
	$(GO) run $(WORKFLOWCHECK) -show-pos ./workflows/...

## test-unit: fast tests, no servers (workflows run in the SDK's time-skipping environment).
# Only packages that have unit tests are built with -race: building the whole
# tree that way would also compile the Temporal server under the race detector.
test-unit:
	$(GO) test -race -count=1 $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)

## test-integration: tests against the real Postgres (a fresh database per package) and an in-process Temporal server.
test-integration:
	$(GO) test -tags integration -count=1 ./...

## security: only the security suite (also part of test-integration): forged tokens, sessions, guessing,
## integrations, input at the edge, CSV exports, activations, the message authorization matrix, PIN lockout.
security:
	$(GO) test -tags integration -count=1 -run 'TestSecurity_|TestMessageAuthz|TestActivation_LockedAfterTheTenthWrongPIN|TestIncident_SourceActions|TestIncident_RunsWithoutAnOwner' ./api/ ./workflows/

## chaos: the fault-injection suite, full profile (about 10 minutes on 2 cores): `vigil temporal`, `vigil worker`
## and `vigil api` run apart and are killed, stopped and starved under load; prints the reliability table
## (also written to bin/chaos-report.md). A short profile of the same suite runs in test-integration.
chaos: build
	VIGIL_CHAOS=full VIGIL_CHAOS_BIN=$(BIN) VIGIL_CHAOS_REPORT=$(CURDIR)/bin/chaos-report.md \
		$(GO) test -tags integration -count=1 -v -run '^TestChaos$$' -timeout 20m ./internal/chaos/

## record-histories: re-record the workflow histories replayed by the unit tests (workflows/testdata).
record-histories:
	VIGIL_RECORD_HISTORIES=1 $(GO) test -tags integration -count=1 ./...

clean:
	rm -rf bin .vigil
