"""Settings come from the environment; bad values are reported by variable name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from studyplatform.env import broker_url, database_config, env_bool, env_int, secret_key

ROOT = Path(__file__).resolve().parents[2]


def test_postgres_url_is_parsed():
    config = database_config("postgres://alice:pw@db.example:6543/studies")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 6543, "studies")
    assert (config["USER"], config["PASSWORD"]) == ("alice", "pw")


def test_postgres_statements_may_be_prepared_unless_turned_off():
    # survey.services.participant_sql prepares its statements where psycopg has a threshold
    assert database_config("postgres://a@h/db")["OPTIONS"]["prepare_threshold"] == 5
    assert database_config("postgres://a@h/db?prepare_threshold=2")["OPTIONS"] == {
        "prepare_threshold": 2
    }
    config = database_config("postgres://a@h/db?prepare_threshold=none&sslmode=require")
    assert config["OPTIONS"] == {"prepare_threshold": None, "sslmode": "require"}
    with pytest.raises(ImproperlyConfigured, match="^DATABASE_URL: prepare_threshold"):
        database_config("postgres://a@h/db?prepare_threshold=often")


def test_sqlite_url_is_parsed(tmp_path):
    config = database_config(f"sqlite:///{tmp_path}/db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == f"{tmp_path}/db.sqlite3"
    # Shared by the web server and worker processes: writers wait instead of failing.
    assert config["OPTIONS"]["timeout"] >= 10
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


@pytest.mark.parametrize("url", ["bogus", "", "mysql://root@localhost/x", "postgres://host:5432/"])
def test_bad_database_url_names_the_variable(url):
    with pytest.raises(ImproperlyConfigured, match="^DATABASE_URL: "):
        database_config(url)


def test_bad_database_url_stops_manage_py_with_the_variable_named():
    env = {**os.environ, "DATABASE_URL": "not-a-url", "DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DATABASE_URL: expected a URL" in result.stderr


def test_broker_must_be_redis():
    assert broker_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ImproperlyConfigured, match="^CELERY_BROKER_URL: "):
        broker_url("amqp://guest@localhost//")


def test_booleans_and_integers():
    assert env_bool("X", True, {}) is True
    assert env_bool("X", True, {"X": "off"}) is False
    assert env_bool("X", False, {"X": "Yes"}) is True
    with pytest.raises(ImproperlyConfigured, match="^X: expected a boolean"):
        env_bool("X", False, {"X": "maybe"})
    assert env_int("N", 3, {"N": "12"}) == 12
    with pytest.raises(ImproperlyConfigured, match="^N: expected an integer"):
        env_int("N", 3, {"N": "twelve"})


def test_secret_key_required_without_debug(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="^SECRET_KEY: must be set"):
        secret_key(environ={}, debug=False, var_dir=tmp_path)
    assert secret_key(environ={"SECRET_KEY": "given"}, debug=False, var_dir=tmp_path) == "given"


def test_local_secret_key_is_generated_once_and_kept(tmp_path):
    first = secret_key(environ={}, debug=True, var_dir=tmp_path / "var")
    second = secret_key(environ={}, debug=True, var_dir=tmp_path / "var")
    assert first == second and len(first) >= 50
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0


def _manage_check(var_dir, **extra_env):
    env = {**os.environ, "VAR_DIR": str(var_dir), **extra_env}
    for name in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"):
        env.pop(name, None)
    env.update(extra_env)
    env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_manage_py_uses_the_key_the_local_run_made_and_refuses_without_one(tmp_path):
    var_dir = tmp_path / "var"
    refused = _manage_check(var_dir)  # DEBUG off by default, no key anywhere
    assert refused.returncode != 0
    assert "SECRET_KEY: must be set" in refused.stderr
    assert f"{var_dir / 'secret_key'} must exist" in refused.stderr
    assert not (var_dir / "secret_key").exists()

    made = _manage_check(var_dir, DEBUG="1")  # what scripts/run.sh does
    assert made.returncode == 0, made.stderr
    assert (var_dir / "secret_key").exists()
    # The README's commands, typed later in a plain shell (no DEBUG, no SECRET_KEY), now work.
    later = _manage_check(var_dir)
    assert later.returncode == 0, later.stderr


def test_stored_secret_key_is_used_with_debug_off(tmp_path):
    (tmp_path / "secret_key").write_text("stored-key\n")
    assert secret_key(environ={}, debug=False, var_dir=tmp_path) == "stored-key"
    given = secret_key(environ={"SECRET_KEY": "given"}, debug=False, var_dir=tmp_path)
    assert given == "given"


def _check_deploy(extra_env):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "k" * 20 + "-production-like-secret-" + "z" * 30,
        "DATABASE_URL": "sqlite:////tmp/unused.sqlite3",
        **extra_env,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_check_deploy_leaves_only_what_https_termination_provides():
    result = _check_deploy({})
    lines = [line for line in result.stderr.splitlines() if "(security." in line]
    warnings = {line.split(")")[0].split("(")[-1] for line in lines}
    assert warnings <= {"security.W004", "security.W008"}, result.stderr


def test_check_deploy_is_clean_behind_https():
    result = _check_deploy(
        {
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
            "BEHIND_HTTPS_PROXY": "1",
        }
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_every_variable_the_platform_reads_is_in_the_readmes_table():
    import re

    pattern = re.compile(r'(?:environ(?:\.get)?[\[(]|env_(?:bool|int|list)\()"([A-Z][A-Z_0-9]+)"')
    read = set()
    for package in ("studyplatform", "worker", "survey"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name != "settings_test.py":
                read |= set(pattern.findall(path.read_text()))
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z_0-9]+)`", row)}
    assert {"DATABASE_URL", "SECRET_KEY", "VAR_DIR"} <= read  # the scan finds them
    assert sorted(read - documented) == []
