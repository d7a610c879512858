# storefleet — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Pinned tools, run through `go run` so nothing needs installing by hand.
CONTROLLER_GEN := $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.20.1
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0
REDOCLY := npx --yes @redocly/cli@2.77.0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin/storefleet
# Generated files that `make verify` checks against their sources.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go api/v1alpha1/crd reconciler/rbac openapi/rbac openapi/openapi.yaml charts/storefleet/crds charts/storefleet/rbac web/src/api

# The dashboard: npm ci when the lock changes, the Vite build when a source
# does; the Go binary embeds web/dist/app.
WEB_MODULES := web/node_modules/.package-lock.json
WEB_DIST := web/dist/app/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/package.json

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build the pinned local control plane (etcd, kube-*, kwok, Flux) and the real node (kubelet, kube-proxy, containerd, CoreDNS, kube-router, crictl) into ~/.cache/storefleet
	$(GO) run ./cmd/localcluster build

.PHONY: images
images: tools store-images ## Build the images the real node runs (pause, CoreDNS, the local ingress controller, and the store images) locally, no registry, into ~/.cache/storefleet/images-v1
	$(GO) run ./cmd/localcluster images

.PHONY: store-images
store-images: ## Build the Debian base and the store images (Medusa, storefront, PostgreSQL, Redis); needs no control plane
	$(GO) run ./cmd/localcluster store-images

.PHONY: forge
forge: ## Build the local forge (Gitea, for pull-request tests and dev --forge) into ~/.cache/storefleet
	$(GO) run ./cmd/localcluster forge

.PHONY: gitops
gitops: ## Build Flux's kustomize-controller (applies clusters/<env> in the tests) into ~/.cache/storefleet
	$(GO) run ./cmd/localcluster gitops

.PHONY: generate
generate: ## Regenerate deepcopy code, the Store CRD, the RBAC of operator and API, openapi/openapi.yaml and the dashboard's API types
	$(CONTROLLER_GEN) object paths=./api/... crd paths=./api/... output:crd:artifacts:config=api/v1alpha1/crd
	$(CONTROLLER_GEN) rbac:roleName=storefleet-operator paths={./reconciler/...,./gitsync/...} output:rbac:artifacts:config=reconciler/rbac
	$(CONTROLLER_GEN) rbac:roleName=storefleet-api paths={./openapi/...,./internal/storeadmin/...,./internal/gitintent/...} output:rbac:artifacts:config=openapi/rbac
	$(GO) run ./cmd/storefleet openapi > openapi/openapi.yaml.tmp && mv openapi/openapi.yaml.tmp openapi/openapi.yaml
	$(MAKE) --no-print-directory $(WEB_MODULES)
	cd web && node scripts/generate.mjs
	cp api/v1alpha1/crd/storefleet.dev_stores.yaml charts/storefleet/crds/
	cp reconciler/rbac/role.yaml charts/storefleet/rbac/operator-role.yaml
	cp openapi/rbac/role.yaml charts/storefleet/rbac/api-role.yaml

.PHONY: verify
verify: generate ## Regenerate and fail if any generated file differs from what is committed
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "Generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi
	@echo "Generated files are up to date."

$(WEB_MODULES): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(WEB_DIST): $(WEB_MODULES) $(WEB_SOURCES)
	cd web && npm run --silent build

.PHONY: web
web: $(WEB_DIST) ## Build the dashboard (npm ci, type check, Vite) into web/dist/app for the binary to embed

.PHONY: build
build: web binary ## Build the statically linked storefleet binary (with the dashboard) into bin/

# binary is the Go half of build, for a dashboard built elsewhere (the Dockerfile's web stage).
.PHONY: binary
binary:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/storefleet

# The unit tier: every package's tests but the end-to-end suites (test/...)
# and the packages whose tests are the binary and the cluster itself
# (cmd/..., internal/devcluster). STOREFLEET_UNIT=1 makes each cluster test
# skip, listed with "cluster test: not part of make unit", instead of
# starting a control plane; make test never sets it, so there a cluster that
# cannot start fails.
UNIT_PACKAGES = $(shell $(GO) list ./... | grep -v -e /test/ -e /cmd/ -e /internal/devcluster$$)

.PHONY: unit
unit: ## Unit tests in seconds: the pure tests of every package, no cluster, no network (skipped cluster tests are listed)
	STOREFLEET_UNIT=1 $(GO) test -count=1 -v $(UNIT_PACKAGES) | grep -vE '^ *(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$$)'

# prepare is everything the tests need. make test builds it with -j4: the
# machine has 2 cores and every build is CPU-bound, but their module
# downloads, debootstrap, npm ci and single-threaded links then overlap the
# other builds' compiles (a cold first run is minutes shorter).
.PHONY: prepare
prepare: tools images forge gitops web

.PHONY: test
test: ## Run every test: unit and integration on real local clusters, Git servers, Gitea and Chromium; the dashboard's Vitest tests
	$(MAKE) --no-print-directory -j4 prepare
	cd web && npx vitest run
	@# Three packages at once, not GOMAXPROCS (2): the cluster tests mostly
	@# wait on their control planes (≈ 0.7 of 2 cores busy at -p 2); the two
	@# real-node packages still take turns through the host lock.
	$(GO) test -count=1 -p 3 -timeout 30m ./...

.PHONY: bench
bench: ## Benchmarks: operator vs raw server-side apply; Flux and Helm SDK modes vs bare HelmReleases; Intent API vs bare net/http; a real store's API call to priced product (p50/p95 vs the 90 s goal)
	$(MAKE) --no-print-directory -j4 prepare
	$(GO) test ./reconciler/ ./openapi/ ./test/flux/ ./test/gitops/ ./test/store/ -run '^$$' -bench . -skip FleetScale -benchtime 1x -timeout 90m

# The fleet-scale curve (issue #19): STOREFLEET_SCALE_N picks the sizes
# (default 100,250,500,1000; a 2-core machine manages 100 in about 20 min).
.PHONY: bench-scale
bench-scale: ## Fleet scale: N stores at once vs bare HelmReleases and the raw-apply floor, memory per store, idle cost, drift healing, object sizes, Git intent with N stores in the repo (STOREFLEET_SCALE_N=100,250)
	$(MAKE) --no-print-directory -j4 tools web
	@# One package at a time: the two would compete for the machine's cores.
	$(GO) test ./test/scale/ ./test/gitops/ -p 1 -run '^$$' -bench FleetScale -benchtime 1x -timeout 240m -v

.PHONY: run
run: tools build ## Run the platform on the embedded local cluster (storefleet dev)
	./$(BIN) dev

.PHONY: lint
lint: ## gofmt, go vet, no test code in what ships, staticcheck and the OpenAPI document through Redocly
	@if [ -n "$$(gofmt -l .)" ]; then echo "gofmt needed:"; gofmt -l .; exit 1; fi
	$(GO) vet ./...
	@# Code that ships never depends on test code (nor links the testing package).
	@if $(GO) list -deps ./cmd/storefleet | grep -qx testing; then echo "cmd/storefleet links the testing package"; exit 1; fi
	@if $(GO) list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... | grep -v '^github.com/storefleet/storefleet/test/' | grep -q 'github.com/storefleet/storefleet/test/'; then \
		echo "non-test packages import test/..."; exit 1; fi
	$(STATICCHECK) ./...
	$(REDOCLY) lint --format=summary openapi/openapi.yaml

.PHONY: fuzz
fuzz: ## Fuzz the Intent API's create body and store name path for 1 minute each
	$(GO) test ./openapi -run '^$$' -fuzz '^FuzzCreateBody$$' -fuzztime 1m
	$(GO) test ./openapi -run '^$$' -fuzz '^FuzzStoreNamePath$$' -fuzztime 1m
