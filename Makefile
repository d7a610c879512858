# storefleet — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Pinned tools, run through `go run` so nothing needs installing by hand.
CONTROLLER_GEN := $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.20.1
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin/storefleet
# Generated files that `make verify` checks against their sources.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go api/v1alpha1/crd reconciler/rbac

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build the pinned local control plane (etcd, kube-*, kwok, Flux) into ~/.cache/storefleet
	$(GO) run ./test/localcluster/cmd/localcluster build

.PHONY: generate
generate: ## Regenerate deepcopy code, the Store CRD and the operator's RBAC from their markers
	$(CONTROLLER_GEN) object paths=./api/... crd paths=./api/... output:crd:artifacts:config=api/v1alpha1/crd
	$(CONTROLLER_GEN) rbac:roleName=storefleet-operator paths=./reconciler/... output:rbac:artifacts:config=reconciler/rbac

.PHONY: verify
verify: generate ## Regenerate and fail if any generated file differs from what is committed
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "Generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi
	@echo "Generated files are up to date."

.PHONY: build
build: ## Build the statically linked storefleet binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/storefleet

.PHONY: test
test: tools ## Run every test: unit and integration on real local clusters
	$(GO) test -count=1 -timeout 30m ./...

.PHONY: bench
bench: tools ## Benchmarks: N stores through the operator vs raw server-side apply of the same objects
	$(GO) test ./reconciler/ -run '^$$' -bench . -benchtime 1x -timeout 40m

.PHONY: run
run: tools build ## Run the platform on the embedded local cluster (storefleet dev)
	./$(BIN) dev

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@if [ -n "$$(gofmt -l .)" ]; then echo "gofmt needed:"; gofmt -l .; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
