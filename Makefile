# DockerCoins Control: the README's commands.
#   make up        bootstrap this machine, build the images, deploy the stack
#   make up NODES=3  the same on a lab of 3 engines on this machine (2..5)
#   make down      remove the stack (the database volume stays), or the whole lab
#   make test      the whole suite, as CI runs it (.ci/run calls exactly this)
#   make rollout ARGS='status'   `manage.py rollout ...` in the running controller
#   make bench     figures: pipeline, scaling table, health-check cost, rolling update, lab table
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK_NAME ?= dockercoins
ARGS ?= status
NODES ?= 1
VENV := .venv/bin

.PHONY: help up down test lint images rollout bench bench-pipeline bench-scaling \
	bench-healthchecks bench-rollout bench-lab

help:
	@sed -n '2,7p' Makefile | sed 's/^# //'

up:
	NODES=$(NODES) deploy/up.sh

down:
	deploy/down.sh

images:
	deploy/build-images.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/python manage.py makemigrations --check --dry-run

# Stacks left by killed earlier runs go first; every test stack removes itself.
# The tiers run side by side on PYTEST_WORKERS pytest-xdist workers (0: one
# process): most swarm tests wait on the engine, not on the CPU. Each module,
# and each tier with one session-wide stack or lab, stays on one worker
# (tests/conftest.py); --durations names the slowest tests of the run. The
# engine-restart fault test runs alone, after everything else: restarting
# dockerd ends every stack's containers (docs/faults.md).
PYTEST_WORKERS ?= 2
test:
	deploy/bootstrap.sh --test
	deploy/build-images.sh
	$(VENV)/python -m deploy.swarmops prune-tests
	$(MAKE) --no-print-directory lint
	CI=$${CI:-true} $(VENV)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25
	CI=$${CI:-true} FAULTS_ENGINE_RESTART=1 $(VENV)/pytest -p no:xdist -m engine_restart tests/faults/test_engine_restart.py

# In the running controller, as its user (deploy/swarmops/controller.py);
# when a lab is up (make up NODES=N), its controller, on whichever node.
rollout:
	@test -x $(VENV)/python || { echo "no .venv here: make up first" >&2; exit 1; }
	@$(VENV)/python -m deploy.swarmops rollout $(STACK_NAME) $(ARGS)

# The benchmarks print figures and never fail on them: the pipeline at zero
# delay and the stats endpoints on loopback, the workshop's scaling table on a
# stack of its own, what one container health check costs, and a 10-task
# rolling update (ours and `docker service update`) on a stack of its own,
# and the workshop's table on a lab of 3 engines.
bench: bench-pipeline bench-scaling bench-healthchecks bench-rollout bench-lab

bench-pipeline:
	deploy/bootstrap.sh --bench
	$(VENV)/python bench/pipeline.py

bench-scaling:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/scaling.py

# The workshop's table on a lab of namespaced engines (root): 1, 2, 10 workers
# with one rng, then 10 with rng global on 3 nodes (LAB_BENCH_NODES='3 4 5').
bench-lab:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/lab.py --nodes $${LAB_BENCH_NODES:-3}

bench-healthchecks:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/healthcheck_cost.py

bench-rollout:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/rollout.py
