"""Settings, all from the environment (see README: "Configuration").

Defaults suit a local run: an SQLite file and a secret key under var/, Redis on localhost.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF, UNSAFE_INLINE

from studyplatform.env import (
    broker_url,
    database_config,
    env_bool,
    env_int,
    env_list,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(environ=None, debug=DEBUG, var_dir=VAR_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "studyplatform",
    "worker",
    "survey",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-csp's, its policy built once (participants' images and answers are most requests).
    "studyplatform.csp_policy.CSPMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studyplatform.urls"
WSGI_APPLICATION = "studyplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}
# Persistent connections: opening a PostgreSQL connection per request cost ~20 ms of the
# ~25 ms of an answer (bench/bench_study_load.py); health checks replace dead ones.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages a study can speak to its participants in (survey.wording): each has a
# catalogue under locale/ (compiled at start-up, studyplatform/translations.py). The
# researchers' pages stay in English.
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATASET_UPLOAD_MAX_BYTES = env_int("DATASET_UPLOAD_MAX_BYTES", 2 * 1024**3)
#: A researcher's zip may expand to at most this many times its own size (zip bombs).
UPLOAD_MAX_EXPANSION_RATIO = env_int("UPLOAD_MAX_EXPANSION_RATIO", 20)

# Security. With DEBUG off cookies are secure; HTTPS itself (redirect, HSTS, the proxy
# header) belongs to whatever terminates TLS in front, so those are opt-in here.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
#: The cookie that binds a browser to its participation (survey/views/participant.py).
PARTICIPATION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery. Training jobs run for hours: the Redis visibility timeout must outlast the longest
# job, and Celery reads it from three places (broker, result backend, top level).
CELERY_BROKER_URL = broker_url(os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 7 * 24 * 3600)
# CELERY_KEY_PREFIX keeps several platforms (or test sessions) apart on one Redis.
_celery_transport = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
if os.environ.get("CELERY_KEY_PREFIX"):
    _celery_transport["global_keyprefix"] = os.environ["CELERY_KEY_PREFIX"]
CELERY_BROKER_TRANSPORT_OPTIONS = dict(_celery_transport)
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = dict(_celery_transport)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = ("studyplatform.celery.route_by_name",)
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_TRACK_STARTED = True

# The cache (the study's start rate limit): Redis, shared by every web process, where the
# broker is Redis; else this process's memory.
CACHE_URL = os.environ.get("CACHE_URL", CELERY_BROKER_URL)
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CELERY_KEY_PREFIX", ""),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Starts of a study allowed from one client address per window (a bot must not exhaust
# the balanced lists); a resume is not a start.
STUDY_START_LIMIT = env_int("STUDY_START_LIMIT", 30)
STUDY_START_WINDOW_SECONDS = env_int("STUDY_START_WINDOW_SECONDS", 600)
# Take the client address from X-Forwarded-For (only behind a proxy that sets it): the
# entry added by the outermost of TRUSTED_PROXIES proxies (studyplatform/client_address.py).
USE_X_FORWARDED_FOR = env_bool("USE_X_FORWARDED_FOR", False)
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 1)

# Failed logins (the login page and the admin's) are throttled by django-axes, per account
# and per client address independently: after LOGIN_FAILURE_LIMIT failures in a row either
# is locked for LOGIN_LOCKOUT_MINUTES (each further failure restarts the wait), with a page
# that says so. A successful login resets the account's count.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "studyplatform.client_address.client_address"
AXES_VERBOSE = False

# Content-Security-Policy on every response: scripts only from this site's static files (no
# inline script anywhere), no plug-ins, no framing, no <base> rewriting. Inline styles stay
# allowed: the figures' inline SVG (matplotlib's, studyplatform/figures.py) carries style
# attributes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Model runs: a sub-model whose worker has not reported for this long is taken as lost and
# queued again (it resumes from its last checkpoint), up to RUN_MAX_ATTEMPTS attempts.
RUN_STALE_AFTER_SECONDS = env_int("RUN_STALE_AFTER_SECONDS", 600)
RUN_MAX_ATTEMPTS = env_int("RUN_MAX_ATTEMPTS", 3)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-runs": {"task": "cpu.sweep_stale_runs", "schedule": 60.0},
}
WORKER_SCRATCH_DIR = Path(os.environ.get("WORKER_SCRATCH_DIR", VAR_DIR / "scratch"))
# A generator's task also takes its run's other generators that no worker holds and trains
# them together in its process (worker.services.training._train_together): for a machine
# with one GPU, not for several GPU workers (which would otherwise train them in parallel).
WORKER_GENERATORS_TOGETHER = env_bool("WORKER_GENERATORS_TOGETHER", False)
