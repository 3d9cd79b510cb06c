"""manage.py analyse_table: text, JSON and LaTeX output; bad input exits with status 2."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def _call(*args):
    out = StringIO()
    call_command("analyse_table", *args, stdout=out)
    return out.getvalue()


def _manage(tmp_path, *args):
    env = {
        **os.environ,
        "DEBUG": "1",
        "SECRET_KEY": "analyse-table-tests-only-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path}/unused.sqlite3",
        "VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "analyse_table", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_text_output_reproduces_table_5():
    out = _call(715, 533, 596, 652)
    assert "22.7519" in out and "45.23 %" in out
    assert "Pearson chi-square (no continuity correction, df = 1)" in out
    assert "Yates-corrected" in out and "Fisher" in out and "P(judged Real | AI)" in out


def test_json_output():
    result = json.loads(_call("725", "523", "598", "650", "--format", "json"))
    for key in ("n", "chi2_pearson", "p_pearson", "chi2_yates", "p_yates", "fisher_p"):
        assert key in result
    assert {"fooling_rate", "ai_judged_real_rate", "intervals", "cells"} <= set(result)
    assert result["n"] == 2496
    assert round(result["chi2_pearson"], 4) == 25.9414
    assert round(100 * result["fooling_rate"], 2) == 44.91
    assert result["cells"] == {"real_real": 725, "real_ai": 523, "ai_real": 598, "ai_ai": 650}


def test_json_output_with_an_empty_column_has_nulls():
    result = json.loads(_call(5, 0, 3, 0, "--format", "json"))
    assert result["chi2_pearson"] is None and result["p_pearson"] is None
    assert "column is empty" in result["chi2_reason"]


def test_latex_output():
    out = _call(694, 554, 579, 669, "--format", "latex", "--caption", "Baseline LAB")
    assert "\\toprule" in out and "\\bottomrule" in out and "\\caption{Baseline LAB}" in out
    assert "Actual Real & 694 & 554 & 1248" in out and "Actual AI & 579 & 669 & 1248" in out
    assert "21.2024" in out and "45.39\\,\\%" in out


def test_confidence_option():
    wide = json.loads(_call(715, 533, 596, 652, "--format", "json", "--confidence", "0.99"))
    narrow = json.loads(_call(715, 533, 596, 652, "--format", "json"))
    assert wide["confidence"] == 0.99
    assert (
        wide["intervals"]["fooling_rate"]["wilson"][0]
        < (narrow["intervals"]["fooling_rate"]["wilson"][0])
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("715", "-5", "596", "652"), "REAL_AI: expected a non-negative integer count, got '-5'"),
        (("715", "533", "1.5", "652"), "AI_REAL: expected a non-negative integer count"),
        (("x", "533", "596", "652"), "REAL_REAL: expected a non-negative integer count"),
        (("0", "0", "596", "652"), "actual-Real row is empty"),
        (("715", "533", "0", "0"), "actual-AI row is empty"),
        (("1", "2", "3", "4", "--confidence", "95"), "--confidence: expected a number"),
    ],
)
def test_bad_input_raises_command_error_with_status_2(args, message):
    with pytest.raises(CommandError, match=message) as caught:
        _call(*args)
    assert caught.value.returncode == 2


def test_subprocess_reports_bad_input_on_stderr_with_status_2(tmp_path):
    negative = _manage(tmp_path, "715", "-5", "596", "652")
    assert negative.returncode == 2
    assert "REAL_AI: expected a non-negative integer count, got '-5'" in negative.stderr
    assert negative.stdout == ""
    empty = _manage(tmp_path, "0", "0", "596", "652")
    assert empty.returncode == 2 and "actual-Real row is empty" in empty.stderr
    assert not (tmp_path / "unused.sqlite3").exists()  # no database was touched


def test_subprocess_json_output(tmp_path):
    result = _manage(tmp_path, "740", "508", "630", "618", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert round(data["chi2_pearson"], 4) == 19.5781
    assert round(100 * data["fooling_rate"], 2) == 45.59
