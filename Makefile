# Every target builds or refreshes its own virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SAM_VENV  := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
# npm tools live in the project, never globally: asl-validator checks the state machines.
NODE_TOOLS    := .tools/node
ASL_VALIDATOR := $(NODE_TOOLS)/node_modules/.bin/asl-validator
PIP_QUIET := --quiet --disable-pip-version-check
export SAM_CLI_TELEMETRY := 0

.PHONY: upgrade-test bench bench-quick docs docs-check lock lock-upgrade lock-check demo test lint sam ci serve clean asl asl-check deploy-check checkov

$(STAMP): pyproject.toml functions/shared/requirements.txt functions/single_user/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev]'
	touch $@

## The local demo: a real rotation through router, state machine and workers on embedded databases.
demo: $(STAMP)
	$(BIN)/rotator demo

## The whole test suite (unit, functional, integration).
test: $(STAMP)
	$(BIN)/pytest

## The upgrade test (issue 9 §4): the stack goes from version N to N+1 with rotations in flight.
upgrade-test: $(STAMP)
	$(BIN)/pytest tests/upgrade -q -n0

## The stack on a loopback AWS endpoint (prints one JSON line when ready).
serve: $(STAMP)
	$(BIN)/rotator local serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict -p rotation_core
	cd clients/python && ../../$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

## Lock each functions/*/requirements.in into requirements.txt with hashes (what sam build installs).
lock: $(STAMP)
	$(BIN)/python -m tools.lock

## Re-resolve every lock to the newest versions the .in files allow.
lock-upgrade: $(STAMP)
	$(BIN)/python -m tools.lock --upgrade

## Fail when a lock no longer matches its .in (or a hash was changed by hand).
lock-check: $(STAMP)
	$(BIN)/python -m tools.lock --check

## Redraw the state machine pictures in docs/architecture.md and README.md from the ASL.
docs: $(STAMP)
	$(BIN)/python -m tools.docs

docs-check: $(STAMP)
	$(BIN)/python -m tools.docs --check

## Regenerate statemachine/*.asl.json from the error taxonomy (tools/asl.py).
asl: $(STAMP)
	$(BIN)/python -m tools.asl

## Fail when the committed state machines differ from what the generator makes.
asl-check: $(STAMP)
	$(BIN)/python -m tools.asl --check

$(ASL_VALIDATOR):
	npm install --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error asl-validator@4.0.0

## Translate the template as sam deploy does, cfn-lint the result, create it on moto's
## CloudFormation, validate the state machines after substitution.
deploy-check: $(STAMP) $(ASL_VALIDATOR) asl-check
	$(BIN)/python -m tools.deploy_check --asl-validator $(ASL_VALIDATOR)

# checkov pins its own dependencies: keep it out of the project's environment.
$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(CHECKOV_VENV)/bin/pip install $(PIP_QUIET) checkov
	touch $@

## IaC scan of the template; each remaining finding is suppressed in template.yaml with its reason.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--skip-download --quiet --compact

# SAM CLI pins its own boto3/botocore: keep it out of the project's environment.
$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) aws-sam-cli
	touch $@

## sam itself, in .venv-sam (use .venv-sam/bin/sam build / deploy).
sam: $(SAM_STAMP)
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1
	$(SAM_VENV)/bin/sam build --region us-east-1

ci: test lint deploy-check checkov sam

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .tools .ci-out .aws-sam .pytest_cache .mypy_cache .ruff_cache

BENCH_STAMP := $(VENV)/.bench-stamp

# the bench extra (matplotlib, for the PNG plots) on top of the dev environment
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev,bench]'
	touch $@

## Benchmarks (latency, client impact, cold start, fleet): tables on stdout, JSON and PNG plots
## in bench/results/.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

## The same in about 8 minutes (3 rotations each, a fleet of 10).
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick
