"""manage.py analyse_judgements on paired real-vs-fake judgements (survey.paired_file):
--paired, or a protocol column saying paired (a paired study's judgements.csv as it is);
the fooling rate P(chose the fake) with bootstrap and mixed-model intervals, no d′; bad
input exits with 2 naming the line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from survey.analysis.exports import judgements_csv_chunks
from survey.inference import Row, fooling_model
from survey.models import Study, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

COLUMNS = ["participant", "image", "condition", "truth", "answer"]


def _write(path: Path, rows, header=COLUMNS) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _call(*args) -> str:
    out = io.StringIO()
    call_command("analyse_judgements", *map(str, args), stdout=out)
    return out.getvalue()


def _hand_made() -> list[list[str]]:
    """4 participants, 6 pairs each (images i0–i5): each chose the fake in exactly 3 (but
    not the same ones), so every resample of participants has the rate 0.5."""
    rows = []
    for p in range(4):
        for i in range(6):
            fooled = (i + p) % 2 == 0
            rows.append([f"p{p}", f"i{i}", "warm", "ai", "real" if fooled else "ai"])
    return rows


def test_a_hand_made_paired_file_gives_the_fooling_rate_and_its_intervals(tmp_path):
    path = _write(tmp_path / "pairs.csv", _hand_made())
    result = json.loads(_call(path, "--paired", "--format", "json"))
    assert result["protocol"] == "paired" and "P(chose the fake" in result["statistic"]
    (c,) = result["conditions"]
    assert (c["n_judgements"], c["fooled"], c["fooling_rate"]) == (24, 12, 0.5)
    assert c["sdt"] is None and c["real_judged_ai_rate"] is None
    boot = c["bootstrap"]
    # Every participant chose 3 fakes of 6: resampling participants cannot move the rate.
    assert boot["over_participants"] == [0.5, 0.5]
    low, high = boot["two_way"]
    assert low < 0.5 < high  # the images differ: resampling them does move it
    rows = [Row(*r) for r in _hand_made()]
    model, _ = fooling_model(rows)  # compared with itself: the same model of the rows
    assert c["glmm"]["intercept"] == pytest.approx(model.intercept, abs=1e-9)
    low, high = c["glmm"]["fooling_rate_ci"]
    assert low < c["glmm"]["fooling_rate"] < high


def test_the_text_names_the_protocol_and_gives_no_d_prime(tmp_path):
    path = _write(tmp_path / "pairs.csv", _hand_made())
    text = _call(path, "--paired")
    assert text.startswith("Paired real vs fake, 2AFC")
    assert "P(chose the fake" in text
    assert "bootstrap 95 % (percentile, 2000 replicates, seed 0): over participants " in text
    assert "50.0–50.0 %" in text  # the participants' bootstrap, degenerate here
    assert "model-based fooling rate" in text
    assert not any(line.strip().startswith("d'") for line in text.splitlines())  # no SDT


def test_without_paired_a_file_of_fakes_only_is_refused_as_before(tmp_path):
    path = _write(tmp_path / "pairs.csv", _hand_made())
    with pytest.raises(CommandError, match="no judgements of real photographs"):
        _call(path)


@pytest.mark.parametrize(
    ("header", "rows", "args", "message"),
    [
        (
            COLUMNS,
            [["p1", "i1", "warm", "ai", "real"], ["p1", "i2", "warm", "real", "real"]],
            ["--paired"],
            "line 3: truth 'real' in a paired file",
        ),
        (
            [*COLUMNS, "protocol"],
            [["p1", "i1", "warm", "ai", "real", "paired"], ["p1", "i2", "w", "ai", "ai", "single"]],
            [],
            "line 3: protocol 'single' where line 2 has 'paired'",
        ),
        (
            [*COLUMNS, "protocol"],
            [["p1", "i1", "warm", "ai", "real", "single"]],
            ["--paired"],
            "line 2: protocol 'single', not paired",
        ),
        (
            COLUMNS,
            [["p1", "i1", "warm", "ai", "maybe"]],
            ["--paired"],
            "line 2: unknown answer value 'maybe'",
        ),
    ],
)
def test_bad_paired_files_exit_with_2_naming_the_line(tmp_path, header, rows, args, message):
    path = _write(tmp_path / "bad.csv", rows, header=header)
    with pytest.raises(CommandError, match=message) as caught:
        _call(path, *args)
    assert caught.value.returncode == 2


@pytest.mark.django_db
def test_a_paired_studys_judgements_csv_is_found_paired_as_it_is(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="warm-run")
    study = open_study(
        [run],
        labels=["warm"],
        protocol=Study.Protocol.PAIRED,
        images_per_participant=6,
        practice_trials=2,
        attention_checks=2,
        exposure_ms=1000,
    )
    for wanted in (1, 3, 4, 5):
        participant = participant_start(study=study)
        fooled = 0
        trials = participant.trials.order_by("position")
        for t in trials:
            real = Trial.Side.RIGHT if t.fake_side == Trial.Side.LEFT else Trial.Side.LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            answer = t.fake_side if choose_fake else real
            trial_answer(participant=participant, position=t.position, answer=answer, rt_ms=800)
    path = tmp_path / "judgements.csv"
    path.write_text("".join(judgements_csv_chunks(study=study)))
    result = json.loads(_call(path, "--format", "json"))  # no --paired: the column says it
    (c,) = result["conditions"]
    assert result["protocol"] == "paired"
    assert (c["n_judgements"], c["fooled"]) == (24, 13)  # practice and vigilance left out
    assert c["fooling_rate"] == pytest.approx(13 / 24)
    low, high = c["bootstrap"]["over_participants"]
    assert low < 13 / 24 < high
