"""manage.py analyse_preferences: Bradley–Terry scores of any pairwise file; bad input and
files without a maximum-likelihood estimate exit with 2 and say why."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.survey.test_preference import _reference_fit, _simulated

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["participant", "item_a", "item_b", "winner"]


def _write(path: Path, rows, header=COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _call(*args) -> str:
    out = io.StringIO()
    call_command("analyse_preferences", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def simulated_file(tmp_path_factory):
    names, pairs = _simulated()
    rows = [
        (f"p{k % 11}", *((w, lo) if k % 2 else (lo, w)), w, 1200 + k)
        for k, (w, lo) in enumerate(pairs)
    ]
    path = _write(tmp_path_factory.mktemp("prefs") / "pairs.csv", rows, [*COLUMNS, "rt_ms"])
    return path, names, pairs


def test_json_has_the_issues_fields_and_the_maximum(simulated_file):
    path, names, pairs = simulated_file
    result = json.loads(_call(path, "--format", "json"))
    reference, cov = _reference_fit(names, pairs)
    assert result["n_comparisons"] == len(pairs) and result["n_participants"] == 11
    assert {r["item"] for r in result["items"]} == set(names)
    for r in result["items"]:
        assert set(r) >= {"item", "score", "ci", "wins", "comparisons"}
        i = names.index(r["item"])
        assert r["score"] == pytest.approx(reference[i], abs=1e-4)
        low, high = r["ci"]
        assert low < r["score"] < high
        assert (high - low) / 2 == pytest.approx(1.959964 * math.sqrt(cov[i, i]), rel=1e-4)
        assert r["wins"] == sum(w == r["item"] for w, _ in pairs)
        assert r["comparisons"] == sum(r["item"] in p for p in pairs)


def test_text_lists_every_item_by_rank(simulated_file):
    path, names, _ = simulated_file
    text = _call(path)
    assert text.startswith("Bradley–Terry scores: 1500 comparisons of 8 items by 11 ")
    ranked = json.loads(_call(path, "--format", "json"))["items"]
    lines = [line for line in text.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert ranked[0]["item"] in lines[0] and ranked[1]["item"] in lines[1]
    assert f"{ranked[0]['score']:.4f}" in lines[0]


def test_the_issues_two_item_example(tmp_path):
    path = _write(tmp_path / "two.csv", [["p1", "a", "b", "a"]] * 3 + [["p2", "b", "a", "b"]])
    a, b = json.loads(_call(path, "--format", "json"))["items"]
    assert a["score"] - b["score"] == pytest.approx(math.log(3), abs=1e-10)


@pytest.mark.parametrize(
    "header, rows, message",
    [
        (["participant", "item_a", "winner"], [["p", "a", "a"]], "no 'item_b' column"),
        (COLUMNS, [["p", "a", "b", "a"], ["p", "a", "b", "B"]], "line 3: the winner 'B'"),
        (COLUMNS, [["p", "a", "b", "a"], ["p", "c", "c", "c"]], "line 3: item 'c' is compared"),
        (COLUMNS, [], "no comparisons"),
    ],
)
def test_bad_input_names_the_line_or_column_and_exits_with_2(tmp_path, header, rows, message):
    path = _write(tmp_path / "bad.csv", rows, header)
    with pytest.raises(CommandError, match=message) as caught:
        _call(path)
    assert caught.value.returncode == 2


def test_an_empty_or_non_utf8_file_is_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="the file is empty") as caught:
        _call(empty)
    assert caught.value.returncode == 2
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("participant,item_a,item_b,winner\np,a,b,a\np,Köln,b,b\n".encode("latin-1"))
    with pytest.raises(CommandError, match="line 3: byte 0xf6 is not UTF-8") as caught:
        _call(latin)
    assert caught.value.returncode == 2


def test_no_estimate_is_a_message_not_a_number(tmp_path):
    rows = [["p", "a", "b", "a"], ["p", "b", "a", "b"], ["p", "a", "z", "a"], ["p", "b", "z", "b"]]
    with pytest.raises(CommandError, match=r"'z' never won") as caught:
        _call(_write(tmp_path / "never.csv", rows), "--format", "json")
    assert caught.value.returncode == 2
    rows = [["p", "a", "b", "a"], ["p", "b", "a", "b"], ["p", "c", "d", "c"], ["p", "d", "c", "d"]]
    with pytest.raises(CommandError, match="not connected"):
        _call(_write(tmp_path / "apart.csv", rows))


def test_exit_status_2_from_the_shell(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "1",
        "SECRET_KEY": "analyse-preferences-tests-only-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path}/unused.sqlite3",
        "VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "analyse_preferences", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = manage(str(tmp_path / "nowhere.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = _write(tmp_path / "bad.csv", [["p", "a", "b", "c"]])
    wrong = manage(str(bad))
    assert wrong.returncode == 2 and "line 2: the winner 'c'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    good = _write(tmp_path / "good.csv", [["p", "a", "b", "a"], ["p", "a", "b", "b"]])
    ok = manage(str(good), "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["n_items"] == 2
