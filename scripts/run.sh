#!/usr/bin/env bash
# Set up and run the whole platform: venv, migrations, Redis (reused if running), a Celery
# worker on both queues, and the web server. Ctrl-C stops what this started.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
export DEBUG="${DEBUG:-1}"
exec .venv/bin/python manage.py runplatform "$@"
