# nasa_autoscale: every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# The ingest range defaults to the NASA trace; NASA_START_DATE sets another start, and then the
# range runs to today unless NASA_END_DATE says otherwise (as the daily partitions do).
# With a sites file (NASA_SITES_PATH, nasa_autoscale/sites.py) a site's range and asset keys are
# its own: NASA_SITE=<name> runs one site; without it, run, raw, ingest, analysis and ingest-day
# run for every site of the file in turn.
ifneq ($(strip $(NASA_SITES_PATH)),)
SITE_RANGE = $(shell $(BIN)/python -m nasa_autoscale.sites range)
START ?= $(word 1,$(SITE_RANGE))
END ?= $(word 2,$(SITE_RANGE))
KEY = $(word 3,$(SITE_RANGE))/
EVERY_SITE := $(if $(strip $(NASA_SITE)),,1)
else
START ?= $(or $(NASA_START_DATE),1995-07-01)
END ?= $(or $(NASA_END_DATE),$(if $(NASA_START_DATE),$(shell date +%F),1995-08-31))
KEY :=
endif
DAGSTER := $(BIN)/dagster
DEFS := -m nasa_autoscale.definitions
INGEST_ASSETS = $(KEY)requests,$(KEY)rejected_lines,$(KEY)traffic_1m,$(KEY)traffic_5m,$(KEY)traffic_15m
# One line per finished step and the assets' own messages; the whole log goes to
# .dagster_home/last_<target>.log. LOG=debug shows Dagster's whole log instead.
LOG ?= info
PROGRESS = $(if $(filter debug,$(LOG)),,2>&1 | $(BIN)/python -m nasa_autoscale.progress $(DAGSTER_HOME)/last_$@.log)

.PHONY: aws-export bench-live bench-follower help install live run raw ingest ingest-samples analysis ingest-day test test-fast lint format validate bench-ingest bench-forecast bench-scaling bench-daily bench-history bench-backfill api dashboard recover mlflow-ui dev clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)  ## create .venv and install the pinned dependencies

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

ifeq ($(EVERY_SITE),1)
run raw ingest analysis ingest-day: install $(DAGSTER_HOME)/dagster.yaml
	@$(BIN)/python -m nasa_autoscale.sites list | while read -r site first last; do \
	  echo "== site $$site ($$first .. $$last): make $@"; \
	  NASA_SITE=$$site $(MAKE) --no-print-directory $@ || exit 1; done
else
run: install $(DAGSTER_HOME)/dagster.yaml raw ingest analysis  ## install, then materialize the whole graph (every site of NASA_SITES_PATH)

raw: install $(DAGSTER_HOME)/dagster.yaml  ## the raw log files: data/raw, a download, or a replica
	$(DAGSTER) asset materialize $(DEFS) --select $(KEY)raw_log_files $(PROGRESS)

ingest: install $(DAGSTER_HOME)/dagster.yaml  ## parse every day START..END and build the traffic tables
	$(DAGSTER) asset materialize $(DEFS) --select $(INGEST_ASSETS) --partition-range $(START)...$(END) $(PROGRESS)

analysis: install $(DAGSTER_HOME)/dagster.yaml  ## events, features, anomalies, models, forecasts, scaling, cost report and reports
	$(DAGSTER) job execute $(DEFS) -j analysis_job $(PROGRESS)

ingest-day: install $(DAGSTER_HOME)/dagster.yaml  ## one day: make ingest-day DAY=1995-07-13
	$(DAGSTER) asset materialize $(DEFS) --select $(INGEST_ASSETS) --partition $(DAY) $(PROGRESS)
endif

# Two test processes (pytest-xdist): the suite's tests are independent (each its own tmp folder,
# warehouse and ports), and half the wall time on a 2-core machine.
TEST_WORKERS ?= 2

test: install  ## every test, with coverage (fails under 80%), in two processes
	$(BIN)/pytest -n $(TEST_WORKERS) --cov=nasa_autoscale --cov-report=term-missing:skip-covered --cov-fail-under=80

test-fast: install  ## the fast loop: every test not marked slow (no subprocess, browser, database server, full replica), under 90 s
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -q -m "not slow"

lint: install  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# With a sites file, the Dagster UI and validate load a workspace of one code location per site.
WORKSPACE = $(if $(strip $(NASA_SITES_PATH)),$$($(BIN)/python -m nasa_autoscale.sites workspace $(DAGSTER_HOME)),workspace.yaml)

validate: install $(DAGSTER_HOME)/dagster.yaml  ## dagster definitions validate (every site's code location)
	$(DAGSTER) definitions validate -w $(WORKSPACE)

aws-export: install  ## a fleet's plan as AWS scheduled actions: make aws-export FLEET=realistic GROUP=web-asg [SHIFT_TO=YYYY-MM-DD]
	$(BIN)/python -m nasa_autoscale.scaling.aws --group $(or $(GROUP),$(error GROUP= names the Auto Scaling group)) $(if $(FLEET),--fleet $(FLEET)) $(if $(SHIFT_TO),--shift-to $(SHIFT_TO))

ingest-samples: install  ## make ingest on each real sample of another format (data/samples/formats): every line accounted
	$(BIN)/python -m nasa_autoscale.benchmarks.samples

bench-ingest: install  ## ingest speed: ours, a line-by-line Python parser, a combined-format copy, every other format -> reports/bench_ingest.json
	$(BIN)/python -m nasa_autoscale.benchmarks.ingest $(if $(COMPARE),--compare-with $(COMPARE))

bench-live: install  ## replay the test window through the live follower and planner, scored beside the benchmark (after make run) -> reports/bench_live.json
	$(BIN)/python -m nasa_autoscale.benchmarks.live

bench-follower: install  ## the live follower's CPU at 1x, 100x and 1000x the trace's rate -> reports/bench_follower.json
	$(BIN)/python -m nasa_autoscale.benchmarks.follower

bench-forecast: install  ## 5-minute training + evaluation time (after make run) -> reports/bench_forecast.json
	$(BIN)/python -m nasa_autoscale.benchmarks.forecasting

bench-scaling: install  ## policy sweep + hindsight optimum time (after make run) -> reports/bench_scaling.json
	$(BIN)/python -m nasa_autoscale.benchmarks.scaling

bench-daily: install $(DAGSTER_HOME)/dagster.yaml  ## one daily refresh (ingest a day + daily_refresh_job, after make run) -> reports/bench_daily.json
	$(BIN)/python -m nasa_autoscale.benchmarks.daily $(if $(DAY),--day $(DAY))

bench-history: install  ## make run and the daily path on 2, 6 and 12 months of the trace repeated -> reports/bench_history.json
	$(BIN)/python -m nasa_autoscale.benchmarks.history $(if $(MONTHS),--months $(MONTHS))

bench-backfill: install  ## full ingest backfill as weekly runs, 1 vs 2 at a time -> reports/bench_backfill.json
	$(BIN)/python -m nasa_autoscale.benchmarks.backfill

live: install  ## follow each site's log folder as it grows and plan every fleet at each decision interval (python -m nasa_autoscale.live; INTERVAL=5)
	$(BIN)/python -m nasa_autoscale.live --interval $(or $(INTERVAL),5)

api: install  ## the HTTP API (read-only, after make run) on http://127.0.0.1:8000, docs at /docs; beyond loopback only with NASA_API_KEYS
	$(BIN)/python -m nasa_autoscale.api --host $(or $(API_HOST),127.0.0.1) --port $(or $(API_PORT),8000)

dashboard: install  ## the Streamlit dashboard (after make run) on http://127.0.0.1:8501
	$(BIN)/streamlit run nasa_autoscale/dashboard/app.py --server.address 127.0.0.1 \
		--server.port $(or $(DASHBOARD_PORT),8501) --server.headless true --browser.gatherUsageStats false

mlflow-ui: install  ## the MLflow UI over data/mlflow.db on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri $(or $(NASA_MLFLOW_URI),sqlite:///data/mlflow.db) -h 127.0.0.1 -p 5000

dev: install $(DAGSTER_HOME)/dagster.yaml  ## the Dagster UI on http://127.0.0.1:3000
	$(DAGSTER) dev -w $(WORKSPACE) -h 127.0.0.1 -p 3000

clean:  ## remove the environment, the Dagster home and the caches (keeps data/)
	rm -rf $(VENV) $(DAGSTER_HOME) .pytest_cache .ruff_cache .coverage

recover: install $(DAGSTER_HOME)/dagster.yaml  ## after a killed run: mark dead runs failed, free their pool slots
	$(BIN)/python -m nasa_autoscale.recover
