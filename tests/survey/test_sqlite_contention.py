"""The embedded default (an SQLite file, as `scripts/run.sh` runs the platform) under a
burst of participants: concurrent writers in processes of their own wait for SQLite's
write lock instead of failing, so that "database is locked" never reaches a participant
and no answer is lost or stored twice (tests/survey/sqlite_contention.py does the work in
a process of its own, since this suite's database is PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, PARTICIPANTS = 6, 3


def test_concurrent_participants_on_sqlite_lose_nothing_and_see_no_error(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studyplatform.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEBUG": "1",  # as scripts/run.sh
        "VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "STUDY_START_LIMIT": "1000000",  # every participant here is one address
        "CELERY_KEY_PREFIX": f"sqlite-contention-{uuid.uuid4().hex}:",
        "LOG_LEVEL": "ERROR",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.survey.sqlite_contention", str(tmp_path), str(PROCESSES),
         str(PARTICIPANTS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["vendor"], result["journal_mode"]) == ("sqlite", "wal")
    assert result["problems"] == [], result["problems"][:5]
    assert "database is locked" not in done.stderr
    assert result["exit_codes"] == [0] * PROCESSES
    everyone = PROCESSES * PARTICIPANTS
    assert result["participants"] == result["completed"] == everyone
    assert result["trials"] == result["answered"] == everyone * result["trials_per_participant"]
    assert result["doubled"] == 0
    assert result["shown_before_answered"] == result["displays"] == result["answered"]
    assert result["active_at_last_answer"] == everyone
