# DockerCoins Control: the README's commands.
#   make up        bootstrap this machine, build the images, deploy the stack
#   make down      remove the stack (the database volume stays)
#   make test      the whole suite, as CI runs it (.ci/run calls exactly this)
#   make rollout ARGS='status'   `manage.py rollout ...` in the running controller
#   make bench     figures: pipeline, scaling table, health-check cost, rolling update
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK_NAME ?= dockercoins
ARGS ?= status
VENV := .venv/bin

.PHONY: help up down test lint images rollout bench bench-pipeline bench-scaling \
	bench-healthchecks bench-rollout

help:
	@sed -n '2,6p' Makefile | sed 's/^# //'

up:
	deploy/up.sh

down:
	deploy/down.sh

images:
	deploy/build-images.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/python manage.py makemigrations --check --dry-run

# Stacks left by killed earlier runs go first; every test stack removes itself.
test:
	deploy/bootstrap.sh --test
	deploy/build-images.sh
	deploy/stack.sh prune-tests
	$(MAKE) --no-print-directory lint
	CI=$${CI:-true} $(VENV)/pytest

# As the image's user with the socket's group, like the controller itself: a
# root process would leave root-owned SQLite files the webui cannot write.
rollout:
	@container="$$(docker ps -q --filter label=com.docker.swarm.service.name=$(STACK_NAME)_controller \
	    --filter status=running | head -n1)"; \
	if [ -z "$$container" ]; then echo "no running controller in stack $(STACK_NAME) (make up)" >&2; exit 1; fi; \
	tty="$$([ -t 0 ] && echo -t || true)"; \
	group="$$(stat -c %g /var/run/docker.sock)"; \
	docker exec -i $$tty -u "10001:$$group" "$$container" python manage.py rollout $(ARGS)

# The benchmarks print figures and never fail on them: the pipeline at zero
# delay and the stats endpoints on loopback, the workshop's scaling table on a
# stack of its own, what one container health check costs, and a 10-task
# rolling update (ours and `docker service update`) on a stack of its own.
bench: bench-pipeline bench-scaling bench-healthchecks bench-rollout

bench-pipeline:
	deploy/bootstrap.sh --bench
	$(VENV)/python bench/pipeline.py

bench-scaling:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/scaling.py

bench-healthchecks:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/healthcheck_cost.py

bench-rollout:
	deploy/bootstrap.sh
	deploy/build-images.sh
	$(VENV)/python bench/rollout.py
