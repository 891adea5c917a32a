# The two commands the README opens with: `make up` and `make test`.
BIN := .venv/bin
SQL_DIRS := migrations functions policies supabase/local seed.sql

.PHONY: up test bootstrap lint down bench types

bootstrap:
	@./scripts/bootstrap.sh

## Start the embedded stack (PostgreSQL 15 + Supabase shim + schema + seed) and run the sync service.
up: bootstrap
	$(BIN)/cfgctl local start
	$(BIN)/cfgctl serve

## Stop the embedded stack.
down: bootstrap
	$(BIN)/cfgctl local stop

## Static checks: ruff over the Python, sqlfluff over the SQL (one process per core: ~45 s of
## CPU on one core otherwise; it may warn of a leaked semaphore at exit, harmlessly).
lint: bootstrap
	$(BIN)/ruff check cli sync_service tests bench scripts
	$(BIN)/sqlfluff lint --disable-progress-bar --nocolor --processes 0 $(SQL_DIRS)

## Every test: lint, then pytest (which starts a throwaway cluster and runs the pgTAP files too).
## Two pytest workers (pytest-xdist), a cluster each: the suite is mostly waiting on one
## core for PostgreSQL and on the other for Python. worksteal: each worker starts on one
## half in file order (a module's shared world is built once) and takes from the other's
## end when done, so no long test is left alone at the end (docs/api.md, Tests).
test: lint
	$(BIN)/pytest -n 2 --dist worksteal

## Regenerate supabase/types/database.ts (the dashboard's TypeScript types) from a freshly
## migrated throwaway database with Supabase's generator; commit the result (tests/platform/test_types.py checks it).
types: bootstrap
	$(BIN)/python scripts/gen_types.py

## Benchmarks (not part of the test suite).
bench: bootstrap
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
