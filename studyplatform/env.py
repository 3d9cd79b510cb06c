"""Reading settings from the environment, with errors that name the variable at fault."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

#: psycopg's own default: a statement run this many times on a connection is prepared, on
#: a cursor that binds server-side (Django's do not: only participant_sql's ask).
PREPARE_THRESHOLD = 5
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool, environ: dict[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (1/0, true/false, yes/no), got {raw!r}")


def env_int(name: str, default: int, environ: dict[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {raw!r}") from None


def env_list(name: str, default: list[str], environ: dict[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    raw = environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_config(url: str, *, variable: str = "DATABASE_URL") -> dict[str, Any]:
    """Django DATABASES entry for a URL (postgres://…, sqlite:///path)."""
    if not url or "://" not in url:
        raise ImproperlyConfigured(
            f"{variable}: expected a URL such as postgres://user@host:5432/name or "
            f"sqlite:////absolute/path.sqlite3, got {url!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"{variable}: cannot parse {url!r}: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(
            f"{variable}: unsupported database {engine or url!r}; use postgres:// or sqlite://"
        )
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{variable}: the URL {url!r} names no database")
    if engine == "django.db.backends.postgresql":
        # psycopg prepares statements only where a threshold is set (Django sets None).
        # Django's cursors bind client-side and never prepare whatever it is; the
        # participants' hot statements ask for it (survey.services.participant_sql).
        # ?prepare_threshold= in the URL overrides it (none: turned off, e.g. for a pooler
        # that cannot keep prepared statements).
        options = config.setdefault("OPTIONS", {})
        threshold = str(options.get("prepare_threshold", PREPARE_THRESHOLD)).strip().lower()
        if threshold in ("none", "") or threshold.isdigit():
            options["prepare_threshold"] = int(threshold) if threshold.isdigit() else None
        else:
            raise ImproperlyConfigured(
                f"{variable}: prepare_threshold must be a whole number or none, got {threshold!r}"
            )
    if engine == "django.db.backends.sqlite3":
        # The local default is shared by the web server and the worker's processes: WAL lets
        # readers and a writer work together, and writers wait their turn instead of failing.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


def broker_url(url: str, *, variable: str = "CELERY_BROKER_URL") -> str:
    if not url.startswith(("redis://", "rediss://", "redis+socket://")):
        raise ImproperlyConfigured(f"{variable}: expected a redis:// URL, got {url!r}")
    return url


def secret_key(*, environ: dict[str, str] | None, debug: bool, var_dir: Path) -> str:
    """SECRET_KEY from the environment, else the one kept under var/.

    A local run (DEBUG on) generates var/secret_key once; with DEBUG off that file is used
    only if it exists (made by the run command on this machine), so `manage.py` commands
    work there as the README shows them, while a fresh deployment must still set SECRET_KEY.
    """
    environ = os.environ if environ is None else environ
    key = environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    key_file = var_dir / "secret_key"
    stored = key_file.read_text().strip() if key_file.exists() else ""
    if stored:
        return stored
    if not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY: must be set when DEBUG is off (a long random string, kept secret), "
            f"or {key_file} must exist (scripts/run.sh creates it for a local run)"
        )
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key
