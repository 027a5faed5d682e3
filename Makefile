# bgtask-operator — every target uses the project's own Node 24 (.tools/node) and cached toolchain.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CACHE_DIR ?= $(or $(BGTASK_CACHE),$(HOME)/.cache/bgtask-operator)
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
export KUBECONFIG ?= $(CACHE_DIR)/kubeconfig-bgtask
VITEST := node_modules/.bin/vitest

.PHONY: help up down test test-unit test-integration test-e2e bench deps host-deps node toolchain build generate \
        typecheck images platform-images node-image cluster-up cluster-down doctor clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

up: ## build what is needed, create the cluster, helm-install the operator with the default tasks, run a few, show kubectl get bgt
	@hack/up.sh

down: cluster-down ## delete the cluster

test: deps ## every tier: unit, integration (kind + host Postgres/Redis), e2e; deletes the cluster at the end unless KEEP=1
	@hack/test.sh unit integration e2e

test-unit: deps ## unit tier (no services)
	@hack/test.sh unit

test-integration: deps ## integration tier (kind cluster, host Postgres and Redis, real pods)
	@hack/test.sh integration

test-e2e: deps ## e2e tier (the product installed in kind); deletes the cluster at the end unless KEEP=1
	@hack/test.sh e2e

bench: deps ## benchmarks, printed as ratios measured side by side
	@hack/bench.sh

node:
	@hack/install-node.sh

deps: host-deps node node_modules/.installed ## host packages, Node 24 and npm dependencies

host-deps:
	@hack/host-deps.sh

# `npm install` with the committed lock, not `npm ci`: vite lists an optional dependency the
# registry does not serve (napi-windows-process-start-time), which `npm ci` counts as a lock mismatch.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

toolchain: ## build the Kubernetes toolchain from Go modules (cached)
	@hack/build-toolchain.sh

build: deps ## type-check and bundle the operator and the task-runner
	npx tsc -p tsconfig.json --noEmit
	npm run --silent build

generate: deps ## regenerate the CRD YAML from the zod schema (and its copy in the chart)
	npm run --silent generate

platform-images: ## Node runtime, Postgres and Redis images (cached)
	@hack/platform-images.sh

node-image: toolchain ## the offline kind node image (cached)
	@hack/node-image.sh

images: build ## build every image and load it into the cluster
	@hack/images.sh

cluster-up: ## create or reuse the kind cluster
	@hack/cluster-up.sh

cluster-down: ## delete the kind cluster
	@hack/cluster-down.sh

doctor: ## what is installed, cached and running, and what is missing
	@hack/doctor.sh

clean: ## remove build outputs (not the cache)
	rm -rf dist node_modules .run
