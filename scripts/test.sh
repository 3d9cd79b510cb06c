#!/usr/bin/env bash
# Set up and run the whole test suite against the real PostgreSQL and Redis on 127.0.0.1
# (started here if they are installed but not running), for the browser tests Debian's
# Chromium and for the mixed-model tests R with lme4 (installed here if missing). Extra
# arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bash scripts/ensure-services.sh
bash scripts/ensure-browser.sh  # Chromium, for the browser tests (tests/e2e)
# R and lme4, the reference of the mixed-model tests; without them the rest still runs and
# tests/survey/test_glmm.py fails saying so.
bash scripts/ensure-r.sh || echo "test.sh: no R with lme4: tests/survey/test_glmm.py will fail" >&2
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/studyplatform}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
