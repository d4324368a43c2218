# Jan Server, serverless edition. The two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON_BOOT ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
EXTRAS := llm,realtime,otel,migrations,local,test
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

REGISTRY ?=
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null)
TARGET ?= prod-gpu

.PHONY: help venv run test test-fast migrate admin model-server tools bench bench-conversations images deploy canary promote rollback

help:
	@echo "make run      the whole platform on http://localhost:8000 (embedded PostgreSQL, local model, gateway)"
	@echo "make test     every test, including the end-to-end test with the real local model"
	@echo "make migrate  apply migrations (DATABASE_URL, or the embedded database)"
	@echo "make admin EMAIL=you@example.com   create or promote an admin and print a one-time admin API key"
	@echo "make bench    benchmarks (results in docs/performance.md)"

$(STAMP): pyproject.toml
	@test -x $(PYTHON) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# The local model server (llama.cpp's OpenAI-compatible server with SmolLM2-135M). The first install compiles
# llama-cpp-python from source for a portable baseline (a few minutes) into ~/.cache/jan-serverless, keyed by its flags.
model-server: venv
	$(PYTHON) -c "from dev import model_server; model_server.ensure_installed()"

# Debian tools the offline checks use: decK validates gateway/kong.yml; the image test builds a fresh venv with
# the system Python as a non-root user (python3-venv).
tools:
	@command -v deck >/dev/null && dpkg -s python3-venv >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq deck python3-venv >/dev/null; }

run: venv model-server
	$(PYTHON) -m dev.run $(RUN_ARGS)

test: venv model-server tools
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

# Everything but the end-to-end test with the real model.
test-fast: venv tools
	$(PYTHON) -m pytest tests -m "not e2e" $(PYTEST_ARGS)

migrate: venv
	$(PYTHON) -m dev.local_db migrate

admin: venv
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=you@example.com"; exit 2; }
	$(PYTHON) -m dev.local_db admin "$(EMAIL)"

bench: venv
	$(PYTHON) -m bench

# The conversation store at scale (issue 3): seeds 110 000 conversations / 1.5 M items by SQL once, then measures.
bench-conversations: venv
	$(PYTHON) -m bench.conversations

# Cluster (docs/deploy.md). Nothing here has run against a live cluster from this repository's CI.
images: venv
	$(PYTHON) -m knative.images --registry "$(REGISTRY)" --tag "$(TAG)" $(if $(REGISTRY),--push)

deploy: venv
	$(PYTHON) -m knative.deploy apply --target "$(TARGET)" --registry "$(REGISTRY)" --tag "$(TAG)"

canary: venv
	@test -n "$(FN)" -a -n "$(PERCENT)" || { echo "usage: make canary FN=llm PERCENT=10 [CURRENT=<revision>]"; exit 2; }
	$(PYTHON) -m knative.rollout canary "$(FN)" "$(PERCENT)" --image "$(or $(IMAGE),$(if $(REGISTRY),$(REGISTRY)/)jan-$(FN):$(TAG))" $(if $(CURRENT),--current "$(CURRENT)") $(if $(ROLLOUT_DURATION),--rollout-duration "$(ROLLOUT_DURATION)")

promote: venv
	@test -n "$(FN)" || { echo "usage: make promote FN=llm"; exit 2; }
	$(PYTHON) -m knative.rollout promote "$(FN)"

rollback: venv
	@test -n "$(FN)" || { echo "usage: make rollback FN=llm"; exit 2; }
	$(PYTHON) -m knative.rollout rollback "$(FN)"
