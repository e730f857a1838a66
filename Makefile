# Every target builds or refreshes its own virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SAM_VENV  := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
PIP_QUIET := --quiet --disable-pip-version-check
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test lint sam ci serve clean

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

## The stack on a loopback AWS endpoint (prints one JSON line when ready).
serve: $(STAMP)
	$(BIN)/rotator local serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

# SAM CLI pins its own boto3/botocore: keep it out of the project's environment.
$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) aws-sam-cli
	touch $@

sam: $(SAM_STAMP)
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1
	$(SAM_VENV)/bin/sam build --region us-east-1

ci: test lint sam

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
