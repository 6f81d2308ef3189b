# vtc: `make run` starts everything on embedded defaults; `make test` runs the suite.
# Both set up what they need first (venv, dependencies, generated stubs).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(wildcard proto/vtc/v1/*.proto)
GENERATED := vtc/v1/__init__.py gateway/vtc.pb

.PHONY: run run-mesh test proto bench lint clean

run: $(INSTALLED) $(GENERATED)
	$(PY) -m services

# The scale-out topology without Docker, on the RabbitMQ and PostgreSQL of
# VTC_BUS_URL / VTC_MESH_DATABASE_URL (default: the ones on 127.0.0.1).
run-mesh: $(INSTALLED) $(GENERATED)
	$(PY) -m services.mesh

test: $(INSTALLED) $(GENERATED)
	$(PY) -m pytest $(PYTEST_ARGS)

proto: $(INSTALLED)
	$(PY) proto/generate.py

bench: $(INSTALLED) $(GENERATED)
	@command -v ffmpeg >/dev/null || { echo "bench needs the ffmpeg CLI: apt-get install -y ffmpeg"; exit 1; }
	$(PY) bench/transcode_ladder.py

lint: $(INSTALLED) $(GENERATED)
	$(VENV)/bin/ruff check services vtc/cli gateway proto tests bench

$(GENERATED) &: $(PROTOS) proto/generate.py $(INSTALLED)
	$(PY) proto/generate.py

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) vtc/v1 gateway/vtc.pb *.egg-info
