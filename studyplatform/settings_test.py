"""Test settings: the real PostgreSQL and Redis of the development machines.

Tests never fall back to SQLite or an in-memory broker: if the services are missing the
suite fails (tests/conftest.py checks both before anything runs).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studyplatform")
# Database 15 keeps test messages away from a platform running on database 0.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret-" + "x" * 40)
os.environ.setdefault("DEBUG", "0")
# Concurrent test sessions on one machine keep to their own queues and database; worker
# processes started by the tests inherit the prefix through the environment.
os.environ.setdefault("CELERY_KEY_PREFIX", f"test{os.getpid()}:")

from studyplatform.settings import *  # noqa: E402,F403

DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": f"test_studyplatform_{os.environ['CELERY_KEY_PREFIX'].strip(':')}"
}
# Worker threads would keep their connections open and block dropping the test database.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
