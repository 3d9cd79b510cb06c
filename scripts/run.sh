#!/usr/bin/env bash
# Set up and run the whole platform: venv, migrations, Redis (reused if running), a Celery
# worker on both queues, and the web server; then the demo (made once, reused afterwards): the
# synthetic data set 'demo-synthetic', the runs 'demo-baseline' and 'demo-ensemble' trained by
# the worker, and 'Demo study' made from them, opened when they are done. --no-demo (or
# PLATFORM_DEMO=0) skips the demo. Ctrl-C stops what this started.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
export DEBUG="${DEBUG:-1}"
exec .venv/bin/python manage.py runplatform "$@"
