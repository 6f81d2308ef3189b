# vtc: `make run` starts everything on embedded defaults; `make test` runs the suite.
# Both set up what they need first (venv, dependencies, generated stubs).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# docker-compose 1.29 (checks docker-compose.yml without a daemon) pins PyYAML < 6,
# so it lives in a venv of its own; PyYAML 5.4.1 builds on Python 3.11 only this way.
COMPOSE_VENV ?= .venv-compose
DOCKER_COMPOSE := $(COMPOSE_VENV)/bin/docker-compose
PROTOS := $(wildcard proto/vtc/v1/*.proto)
GENERATED := vtc/v1/__init__.py gateway/vtc.pb

.PHONY: run run-mesh test proto bench lint clean

run: $(INSTALLED) $(GENERATED)
	$(PY) -m services

# The scale-out topology without Docker, on the RabbitMQ and PostgreSQL of
# VTC_BUS_URL / VTC_MESH_DATABASE_URL (default: the ones on 127.0.0.1).
run-mesh: $(INSTALLED) $(GENERATED)
	$(PY) -m services.mesh

test: $(INSTALLED) $(GENERATED) $(DOCKER_COMPOSE)
	$(PY) -m pytest $(PYTEST_ARGS)

proto: $(INSTALLED)
	@echo "==> vtc: generating the gRPC stubs and the gateway descriptor from proto/"
	$(PY) proto/generate.py

BENCH ?= all

bench: $(INSTALLED) $(GENERATED)  # BENCH=ladder|dispatch|fairness (bench/run.py lists them); default: all
	$(PY) bench/run.py $(BENCH)

lint: $(INSTALLED) $(GENERATED)
	$(VENV)/bin/ruff check services vtc/cli gateway proto tests bench

$(GENERATED) &: $(PROTOS) proto/generate.py $(INSTALLED)
	@echo "==> vtc: generating the gRPC stubs and the gateway descriptor from proto/"
	$(PY) proto/generate.py

# The first run installs the dependencies (about 40 s): pip's output shows each one as it goes.
$(INSTALLED): pyproject.toml
	@echo "==> vtc: setting up $(VENV) (first run only): Python dependencies from pyproject.toml"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -e '.[test]'
	@echo "==> vtc: dependencies installed"
	touch $@

$(DOCKER_COMPOSE):
	$(PYTHON) -m venv $(COMPOSE_VENV)
	$(COMPOSE_VENV)/bin/pip install --quiet 'cython<3' wheel setuptools
	$(COMPOSE_VENV)/bin/pip install --quiet --no-build-isolation 'pyyaml==5.4.1'
	$(COMPOSE_VENV)/bin/pip install --quiet 'docker-compose==1.29.2'

clean:
	rm -rf $(VENV) $(COMPOSE_VENV) vtc/v1 gateway/vtc.pb *.egg-info
