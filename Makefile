# Set-up and everyday commands. `make run` and `make test` work on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data/completejourney

# One BLAS thread per process: the models parallelise themselves (implicit, joblib).
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
# Where runs and registered models go (a file in the checkout unless set).
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: help install install-dev run test test-fast lint browser format benchmark clean

help:
	@echo "make run        set up .venv, import The Complete Journey, train (unless the champion was trained"
	@echo "                on this data; RETRAIN=1 retrains), register, promote and serve the model"
	@echo "make test       set up .venv with the dev extras and run the test suite"
	@echo "make test-fast  the suite without slow tests"
	@echo "make lint       ruff, the import-layer contracts and the size limits (make test runs it first)"
	@echo "make format     format the code with ruff"
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

PORT ?= 8000
KEYS_FILE ?= api_keys.json
TEST_WORKERS ?= 2

run: $(VENV)/.installed
	$(BIN)/python tools/make_run.py check-port $(PORT)
	@$(MAKE) --no-print-directory $(DATA_DIR)/transactions.parquet
	$(BIN)/recsys data validate $(DATA_DIR)
	$(BIN)/python tools/make_run.py train $(DATA_DIR) $(if $(RETRAIN),--retrain)
	@KEY=$$($(BIN)/python tools/make_run.py dev-key $(KEYS_FILE)); \
	echo ""; \
	case "$(MLFLOW_TRACKING_URI)" in \
	  http*) echo "MLflow UI:   $(MLFLOW_TRACKING_URI)";; \
	  *) echo "MLflow UI:   $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)   (then http://127.0.0.1:5000)";; \
	esac; \
	echo "API:         http://127.0.0.1:$(PORT)   docs: http://127.0.0.1:$(PORT)/docs"; \
	echo "page:        http://127.0.0.1:$(PORT)/app/   (log in with the key below)"; \
	echo "API key:     $$KEY   (development admin key; its hash is in $(KEYS_FILE))"; \
	echo "try:         curl -H 'X-API-Key: $$KEY' 'http://127.0.0.1:$(PORT)/v1/customers/1364/offers?k=5&as_of=2018-01-01'"; \
	echo ""; \
	RECSYS_API_KEYS_FILE=$(KEYS_FILE) exec $(BIN)/recsys serve --port $(PORT)

test: lint browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Lint and format (ruff), the layer contracts (import-linter, pyproject.toml) and the size limits:
# no module over 300 lines, no function over 60 (tools/code_size.py prints the counts).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/code_size.py

# The page tests drive Debian's Chromium (Playwright, never a browser download); they are skipped,
# saying why, where it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "chromium could not be installed: the browser tests will be skipped"; }

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

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
