# The two commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# Tests use the local PostgreSQL when it answers, else SQLite.
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test setup migrate lint typecheck bench bench-smoke soak check-deploy deploy-dry-run loadtest clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(PY) manage.py migrate --noinput

## make run: set up, migrate, seed, and serve the whole app on http://127.0.0.1:8000
run: migrate
	$(PY) manage.py ensure_demo_user
	$(PY) -m ai4joy.devrun

## make test: the full suite (python manage.py test -> pytest), with what it needs
test: setup
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "make test: using PostgreSQL at $(PG_URL)"; export DATABASE_URL='$(PG_URL)'; \
	else echo "make test: PostgreSQL not reachable, using SQLite"; fi; \
	$(PY) manage.py test

lint: setup
	$(VENV)/bin/ruff check .
	PYTHONPATH=. $(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy .

## make bench: the voice relay ladder, app beside a bare relay (table + var/bench/report.json)
BENCH_ARGS ?=
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

bench-smoke: setup
	$(PY) -m bench.run --smoke

## make soak: the long reliability runs, loopback only, each bounded and stopping by itself:
## the fuzzers at FUZZ_SCALE x their in-suite budget, then SOAK_SESSIONS voice sessions on
## SOAK_PROCESSES server processes (as the container runs: one per vCPU, Redis between them) for
## SOAK_ROUNDS rounds of SOAK_ROUND_S seconds (bench/soak.py: RSS, fds, threads, records), then
## the hour-long voice scene in Chromium compressed HOUR_SCENE_SCALE times (6: a 10-minute socket
## cap; make test runs it at 36, README "Reliability"). 100 sessions on 2 processes is what a
## 2-vCPU box carries in real time (make bench); the issue's 200 wants 4: SOAK_SESSIONS=200 SOAK_PROCESSES=4
FUZZ_SCALE ?= 10
SOAK_SESSIONS ?= 100
SOAK_PROCESSES ?= 2
SOAK_ROUNDS ?= 6
SOAK_ROUND_S ?= 100
HOUR_SCENE_SCALE ?= 6
soak: setup
	FUZZ_SCALE=$(FUZZ_SCALE) $(PY) -m pytest -q -p no:cacheprovider -o timeout=3600 \
		audio/tests/test_fuzz_protocol.py audio/tests/test_fuzz_consumer.py ai4joy/tests/test_api_fuzz.py
	$(PY) -m bench.soak --sessions $(SOAK_SESSIONS) --processes $(SOAK_PROCESSES) --rounds $(SOAK_ROUNDS) \
		--round-s $(SOAK_ROUND_S) --out var/soak/report.json
	HOUR_SCENE_SCALE=$(HOUR_SCENE_SCALE) $(PY) -m pytest -q -rP -p no:cacheprovider -o timeout=3600 \
		tests/e2e/test_hour_scene.py

check-deploy: setup
	AI4JOY_ENV=production DJANGO_SECRET_KEY=$$($(PY) -c "import secrets;print(secrets.token_urlsafe(50))") \
	ALLOWED_HOSTS=improv.example.com CSRF_TRUSTED_ORIGINS=https://improv.example.com \
	$(PY) manage.py check --deploy --fail-level WARNING

## make deploy-dry-run ENV=production: the whole ordered gcloud plan, calling nothing
ENV ?= dev
deploy-dry-run:
	infra/deploy.sh $(ENV) --dry-run

## make loadtest HOST=https://staging.example.com: the guide's load test (infra/loadtest/locustfile.py)
USERS ?= 100
SPAWN_RATE ?= 10
RUN_TIME ?= 10m
loadtest: setup
	@test -n "$(HOST)" || { echo "usage: make loadtest HOST=https://host [USERS=100 SPAWN_RATE=10 RUN_TIME=10m]"; exit 2; }
	mkdir -p var && $(VENV)/bin/locust -f infra/loadtest/locustfile.py --host=$(HOST) --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(RUN_TIME) --headless --csv var/loadtest

clean:
	rm -rf $(VENV) var test-artifacts staticfiles db.sqlite3
