# Set-up and everyday commands. `make run` and `make test` work on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data/completejourney

# One BLAS thread per process: the models parallelise themselves (implicit, joblib).
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: help install install-dev run test test-fast benchmark clean

help:
	@echo "make run        set up .venv, import The Complete Journey, train, register and promote the model"
	@echo "make test       set up .venv with the dev extras and run the test suite"
	@echo "make test-fast  the suite without slow tests"
	@echo "make benchmark  print speed and memory figures"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(DATA_DIR)/transactions.parquet: | $(VENV)/.installed
	$(BIN)/recsys data import-completejourney --out $(DATA_DIR) --overwrite

run: $(VENV)/.installed $(DATA_DIR)/transactions.parquet
	$(BIN)/recsys data validate $(DATA_DIR)
	$(BIN)/recsys train --data $(DATA_DIR)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow"

benchmark: $(VENV)/.installed-dev $(DATA_DIR)/transactions.parquet
	$(BIN)/python benchmarks/data_loading.py
	$(BIN)/python benchmarks/synthetic.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/churn.py --data $(DATA_DIR)
	$(BIN)/python benchmarks/cf.py --data $(DATA_DIR)
	$(BIN)/python benchmarks/offers.py --data $(DATA_DIR)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
