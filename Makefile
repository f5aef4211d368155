# capstan.release: `make demo` shows it, `make test` checks everything CI checks.
# GNU make. Tools run from .venv/bin (made by `make venv`); nothing needs activating.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# `make test` runs its steps in the order listed, even under -j.
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.requirements-stamp
COLLECTION_LINK := .collections/ansible_collections/capstan/release
# ansible-lint puts $ANSIBLE_HOME/collections before every other collections path, and offline (see
# .ansible-lint) it never refreshes what is there. Point ANSIBLE_HOME at the repo's .ansible and put
# a link to the checkout in it: lint always sees the live tree, never a copy installed in ~/.ansible.
LINT_COLLECTION_LINK := .ansible/collections/ansible_collections/capstan/release
BUILD_DIR := build

# Tools started by the tools (molecule -> ansible-playbook, ansible-lint -> ansible) come from the venv too.
export PATH := $(BIN):$(PATH)
export MOLECULE_GLOB := molecule/*/molecule.yml

.PHONY: help venv collections demo test test-fast units sanity lint build integration test-faults molecule changelog-lint bench clean distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv with the pinned tools (again when a requirements file changes)

$(STAMP): requirements.txt requirements-test.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-test.txt
	@touch $@

collections: ## Link .collections/ansible_collections/capstan/release to this checkout
	@mkdir -p $(dir $(COLLECTION_LINK))
	@test -L $(COLLECTION_LINK) || ln -sfn ../../.. $(COLLECTION_LINK)

demo: venv collections ## Run the demo playbook
	$(VENV)/bin/ansible-playbook playbooks/demo.yml

# `make test`: every step CI runs, in order, each one's time printed as it passes (so a slow step shows in
# the last lines of any log).
TEST_STEPS := units sanity lint build integration test-faults molecule
test: ## Everything CI runs, in order, with each step's time
	@all=$$(date +%s); for step in $(TEST_STEPS); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory $$step; \
		echo "make test: $$step passed in $$(( $$(date +%s) - start ))s ($$(( $$(date +%s) - all ))s since the start)"; \
	done

test-fast: units lint ## Unit tests, ansible-lint and the local Molecule scenario (default)
	$(MAKE) --no-print-directory molecule SCENARIO=default

units: venv collections ## pytest tests/unit
	$(VENV)/bin/pytest tests/unit

sanity: venv ## ansible-test sanity on a copy at <tmp>/ansible_collections/capstan/release
	tests/scripts/sanity.sh

lint: venv collections ## ansible-lint, profile production
	@mkdir -p $(dir $(LINT_COLLECTION_LINK))
	@test -L $(LINT_COLLECTION_LINK) || { rm -rf $(LINT_COLLECTION_LINK); ln -s ../../../.. $(LINT_COLLECTION_LINK); }
	ANSIBLE_HOME=$(CURDIR)/.ansible $(VENV)/bin/ansible-lint

build: venv changelog-lint ## Build the collection tarball into build/ and install it into an empty path
	tests/scripts/build.sh $(BUILD_DIR)

changelog-lint: venv
	$(VENV)/bin/antsibull-changelog lint
	$(VENV)/bin/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# The integration files spread over INTEGRATION_WORKERS pytest-xdist workers, each on a bed of its own
# (worker N on bed CAPSTAN_BED_ID+N: the default bed, then bed 1, ...).
INTEGRATION_WORKERS ?= 2
integration: venv collections ## pytest tests/integration (real SSH hosts, two beds in parallel)
	$(VENV)/bin/pytest -n $(INTEGRATION_WORKERS) --dist loadfile tests/integration

# The fault-injection suite, its files spread over FAULTS_WORKERS pytest-xdist workers, each on a bed
# of its own (workers 0, 1, 2 -> CAPSTAN_BED_ID 4, 5, 6; so at most 3). FAULTS= narrows it, e.g.
#   make test-faults FAULTS='tests/faults/test_crash.py -k deploy-before_publishing' FAULTS_WORKERS=1
# CAPSTAN_FAULTS_SWITCHES=10 shortens the atomic-switch case (default 100 deploys and rollbacks).
# worksteal: a worker that is done takes cases queued behind a long one (the atomic switch takes about
# half the suite's time); -v and --durations say which case ran when and how long it took, and
# tests/scripts/heartbeat.sh what the machine was doing meanwhile (load, CPU stolen, memory), every 2 min.
FAULTS_WORKERS ?= 3
FAULTS ?= tests/faults
FAULTS_PYTEST = $(VENV)/bin/pytest -n $(FAULTS_WORKERS) --dist worksteal -v --durations=15 $(FAULTS)
test-faults: venv collections ## Fault-injection suite (tests/faults, real SSH hosts, beds 4-6 in parallel)
	@echo "$(FAULTS_PYTEST)"; tests/scripts/heartbeat.sh 120 & heartbeat=$$!; \
	trap 'kill $$heartbeat 2>/dev/null' EXIT; $(FAULTS_PYTEST)

# Every scenario of molecule/ (or SCENARIO=name), one after the other: each starts and stops its
# own test-bed hosts (CAPSTAN_BED_ID picks the bed). .config/molecule/config.yml is the base config the
# scenarios' molecule.yml files override.
MOLECULE_SCENARIOS := $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml))
molecule: venv collections ## Molecule scenarios on the test bed (all, or SCENARIO=name), full `molecule test`
	@for scenario in $(or $(SCENARIO),$(MOLECULE_SCENARIOS)); do \
		start=$$(date +%s); \
		$(BIN)/molecule test -s "$$scenario"; \
		echo "molecule: scenario $$scenario passed in $$(( $$(date +%s) - start ))s"; \
	done

# `make bench` measures capstan against Capistrano and `ansible -m ping` on the test bed (root), then
# rewrites docs/benchmarks.md's dated section and chart; results in benchmarks/results/latest.json.
# Quick runs: make bench BENCH_ARGS="--hosts 5 --rounds 1 --sections scale"; BENCH_ARGS="--help" lists all.
# matplotlib (the chart) goes into .venv from requirements-bench.txt; mitogen (one section compares
# it) is installed outside .venv, under benchmarks/output/, so it never becomes a requirement.
BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-stamp
MITOGEN_VERSION := $(shell sed -n 's/^mitogen==//p' benchmarks/requirements-mitogen.txt)
MITOGEN_DIR := benchmarks/output/mitogen-$(MITOGEN_VERSION)

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	@touch $@

$(MITOGEN_DIR)/.stamp: benchmarks/requirements-mitogen.txt
	rm -rf $(MITOGEN_DIR)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps --target $(MITOGEN_DIR) -r benchmarks/requirements-mitogen.txt
	@touch $@

bench: venv collections $(BENCH_STAMP) $(MITOGEN_DIR)/.stamp ## Benchmarks on the test bed; rewrites docs/benchmarks.md (BENCH_ARGS=...)
	$(VENV)/bin/python benchmarks/run.py --mitogen-path $(MITOGEN_DIR) $(BENCH_ARGS)

clean: ## Remove build and test outputs (keeps .venv)
	rm -rf $(BUILD_DIR) tests/output .collections .ansible .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
