# Two commands matter: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench-lfw bench-throughput clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,accurate]'
	$(BIN)/facetrust models verify
	touch $(STAMP)

# The Rekognition-compatible server on the default data directory; the first run creates and
# prints an admin key with a boto3 snippet (`make run HOST=... PORT=...` to move it).
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(BIN)/facetrust serve --bootstrap --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Four pytest workers (pytest-xdist), each test file on one worker: many tests wait on servers,
# subprocesses and timers, so four overlap well even on two cores (`make test TEST_WORKERS=0`: one process).
TEST_WORKERS ?= 4
test: $(STAMP) lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench-lfw: $(STAMP)
	$(BIN)/python bench/lfw.py

bench-throughput: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
