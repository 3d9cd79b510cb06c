"""The paired real-vs-fake 2AFC protocol (survey.protocols): its pairs prepared and
assigned (same scene, same size, sides balanced, vigilance pairs among the test pairs),
its flow over HTTP with and without a script, its exclusion rule, its leak-proofing and
its analysis."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from studyplatform.researchers import researcher_create
from survey.analysis.caveats import too_few_participants
from survey.analysis.display import dashboard
from survey.analysis.exclusion import FAILED_ATTENTION, exclusion_rule_text, participant_exclusions
from survey.analysis.exports import (
    judgements_csv_chunks,
    tables_csv,
    tables_json,
    tables_latex,
)
from survey.analysis.results import image_rows, study_analysis
from survey.inference import Row, analyse_rows, fooling_model
from survey.models import Stimulus, Study, Trial
from survey.participant_list import approval, participant_rows
from survey.participation import image_request
from survey.services.assignment import participant_start
from survey.services.stimuli import served_length, vigilance_image
from survey.services.trials import trial_answer
from survey.services.withdrawal import participant_withdraw
from tests.survey.study_helpers import (
    PAIR_INSTRUCTION,
    answer_post,
    instructed_side,
    open_study,
    other_side,
    tiny_dataset,
    uploaded_run,
)
from tests.survey.study_helpers import consent_start as start

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
LEFT, RIGHT = Trial.Side.LEFT, Trial.Side.RIGHT


def post(client, participant, position, answer, **extra):
    return answer_post(client, participant, position, answer, rt_ms=700, **extra)


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run],
        labels=["LabelWarmCondition"],
        protocol=Study.Protocol.PAIRED,
        images_per_participant=6,
        practice_trials=2,
        attention_checks=2,
        exposure_ms=1000,
    )


def trials_of(participant) -> list[Trial]:
    return list(
        Trial.objects.filter(participant=participant)
        .select_related("stimulus", "partner")
        .order_by("position")
    )


def _pixels(stimulus: Stimulus) -> np.ndarray:
    with default_storage.open(stimulus.file, "rb") as f:
        return np.asarray(Image.open(f).convert("RGB"), dtype=float)


def test_preparation_makes_each_fake_a_real_partner_of_its_scene_and_size(study):
    stimuli = list(Stimulus.objects.filter(study=study))
    reals = {(s.role, s.condition_id, s.scene_id, s.width, s.height) for s in stimuli if s.is_real}
    for s in stimuli:
        if not s.is_real:
            assert (s.role, s.condition_id, s.scene_id, s.width, s.height) in reals
    vigilance = [s for s in stimuli if s.role == Stimulus.Role.ATTENTION]
    assert sorted(s.is_real for s in vigilance) == [False, False, True, True]
    assert {s.condition_id for s in vigilance} == {None}
    sizes = []
    for s in stimuli:
        with default_storage.open(s.file, "rb") as f:
            data = f.read()
        sizes.append(len(data))
        assert data[:3] == b"\xff\xd8\xff"  # one encoding: every file a JPEG
    served = max(served_length(s.width, s.height) for s in stimuli)
    assert study.__class__.objects.get(pk=study.pk).stimulus_bytes == served >= max(sizes)


def test_a_vigilance_fake_is_its_photograph_with_other_colours():
    rng = random.Random(3)
    photo = Image.new("RGB", (16, 16))
    photo.putdata([(200, 40 + 8 * (i % 16), 30) for i in range(256)])  # reds and oranges
    fake = vigilance_image(photo, rng)
    hue_photo = np.asarray(photo.convert("HSV"), float)[..., 0]
    hue_fake = np.asarray(fake.convert("HSV"), float)[..., 0]
    turned = (hue_fake - hue_photo) % 256
    assert fake.size == photo.size
    assert 256 * 80 / 360 < turned.mean() < 256 * 280 / 360  # turned by 90°..270°


def test_each_participant_gets_sides_balanced_and_vigilance_among_the_test_pairs(study):
    for _ in range(4):
        participant = participant_start(study=study)
        trials = trials_of(participant)
        assert len(trials) == study.trials_per_participant == 10
        kinds = [t.kind for t in trials]
        assert kinds[:2] == ["practice", "practice"]
        assert kinds[2] == "main"  # a vigilance pair is never the first test pair
        assert kinds.count("attention") == 2
        for group in ("practice", "main", "attention"):
            sides = [t.fake_side for t in trials if t.kind == group]
            assert sides.count(LEFT) == sides.count(RIGHT), (group, sides)
        for t in trials:
            assert not t.stimulus.is_real and t.partner.is_real
            assert t.stimulus.scene_id == t.partner.scene_id
            assert (t.stimulus.width, t.stimulus.height) == (t.partner.width, t.partner.height)
        scenes = [t.stimulus.scene_id for t in trials]
        assert len(set(scenes)) == len(scenes)
    main = Stimulus.objects.filter(study=study, role=Stimulus.Role.MAIN)
    fakes = [s.exposures for s in main.filter(is_real=False)]
    assert sum(fakes) == 4 * 6 and max(fakes) - min(fakes) <= 1
    assert sum(main.filter(is_real=True).values_list("exposures", flat=True)) == 4 * 6
    # A withdrawal gives both images of each pair back.
    participant_withdraw(study=study, public_id=participant.public_id)
    assert sum(main.values_list("exposures", flat=True)) == 2 * 3 * 6


def test_an_odd_number_of_pairs_puts_the_odd_one_on_either_side(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = open_study([run], protocol=Study.Protocol.PAIRED, images_per_participant=5)
    sides = []
    for _ in range(20):  # both sides seen: fails by chance with probability 2 × 2⁻²⁰
        trials = trials_of(participant_start(study=study))
        assert [t.kind for t in trials] == ["main"] * 5
        left = [t.fake_side for t in trials].count(LEFT)
        assert left in (2, 3)
        sides.append(left)
    assert set(sides) == {2, 3}  # at random, not always the same side


def test_the_flow_by_script_stores_the_side_and_whether_the_fake_was_chosen(client, study):
    participant = start(client, study)
    page = client.get(reverse("participant_page", args=[participant.public_id]))
    html = page.content.decode()
    assert (
        "Which one is the real photograph?" in html
        and 'Pair <span data-f="number">1</span>' in html
    )
    assert 'value="left"' in html and 'value="right"' in html
    assert 'data-keys="F ArrowLeft"' in html and 'data-keys="J ArrowRight"' in html
    trials = trials_of(participant)
    for t in trials:
        for side in (LEFT, RIGHT):
            image = client.get(
                reverse("participant_pair_image", args=[participant.public_id, t.position, side])
            )
            assert image.status_code == 200
            assert len(image.content) == study.stimulus_bytes
        chosen = LEFT if t.position % 2 else RIGHT
        reply = post(client, participant, t.position, chosen, **JSON).json()
        assert reply["stored"] == {"position": t.position, "answer": chosen}
        if t.kind == "practice":
            truth = RIGHT if t.fake_side == LEFT else LEFT
            assert reply["feedback"]["truth"] == truth
            assert reply["feedback"]["correct"] == (chosen == truth)
            assert f"the real photograph was on the {truth}" in reply["feedback"]["text"]
        else:
            assert reply["feedback"] is None
        if t.position < len(trials):
            nxt = reply["next"]
            assert set(nxt["pair_urls"]) == {"left", "right"} and nxt["image_url"] == ""
            assert len(reply["preload"] or ["", ""]) == 2
    assert reply["done_url"]
    for t in trials_of(participant):
        assert t.chosen_side == (LEFT if t.position % 2 else RIGHT)
        assert t.answer == ("real" if t.chosen_side == t.fake_side else "ai")
        assert t.fooled == (t.chosen_side == t.fake_side)
    # A single image's answer is refused, and the single-image URL serves nothing.
    other = start(Client(), study)
    assert trial_answer_refused(other)
    single = reverse("participant_image", args=[participant.public_id, 1])
    assert client.get(single).status_code == 404


def test_image_request_gives_the_fake_its_side_and_the_photograph_the_other(client, study):
    participant = start(client, study)
    trial = trials_of(participant)[0]
    found = image_request(participant.public_id, trial.position)
    assert found.protocol == Study.Protocol.PAIRED and found.fake_side == trial.fake_side
    assert (found.stimulus_file, found.partner_file) == (trial.stimulus.file, trial.partner.file)
    other = RIGHT if trial.fake_side == LEFT else LEFT
    assert found.file_for(trial.fake_side) == trial.stimulus.file
    assert found.file_for(other) == trial.partner.file


def trial_answer_refused(participant) -> bool:
    from survey.services.errors import TrialError

    with pytest.raises(TrialError, match="left, right"):
        trial_answer(participant=participant, position=1, answer="real", rt_ms=5)
    return not Trial.objects.filter(participant=participant, answer__isnull=False).exists()


def test_the_flow_without_a_script_resumes_after_a_reload(client, study):
    Study.objects.filter(pk=study.pk).update(exposure_ms=None)  # no limit: no script needed
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    for t in trials_of(participant)[:3]:
        before = client.get(page_url, {"begin": "1"}).content.decode()
        assert f'name="position" value="{t.position}"' in before
        again = client.get(page_url, {"begin": "1"}).content.decode()  # a reload
        assert f'name="position" value="{t.position}"' in again
        response = post(client, participant, t.position, LEFT)
        assert response.status_code == 302 and response["Location"] == page_url
    after = client.get(page_url).content.decode()
    assert 'name="position" value="4"' in after
    assert 'Pair <span data-f="number">4</span>' in after
    stored = [t.chosen_side for t in trials_of(participant)]
    assert stored[:3] == [LEFT, LEFT, LEFT] and stored[3:] == [None] * 7


def test_without_a_script_an_exposure_limit_takes_no_answer_and_the_page_says_why(client, study):
    """Only the script hides a pair after its exposure: a page without it says so, shows
    neither image nor answer buttons nor Begin, and a plain form's answer stores nothing."""
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    needs = "This study needs JavaScript: it shows each pair for 1000 ms and then hides it"
    instructions = client.get(page_url).content.decode()
    assert "<noscript>" in instructions and needs in instructions
    assert 'class="button primary big needs-script" id="begin"' in instructions
    html = client.get(page_url, {"begin": "1"}).content.decode()
    assert needs in html
    # No image in the page itself (only the script loads them, to time them), and neither
    # the pair nor the answer buttons are shown without it (site.css: .needs-script).
    assert re.search(r'<img id="stimulus-(left|right)"[^>]* src=', html) is None
    assert '<div class="pair needs-script"' in html
    assert 'id="answer-form" class="answers needs-script"' in html
    response = post(client, participant, 1, LEFT)
    assert response.status_code == 302 and response["Location"] == page_url
    assert not Trial.objects.filter(participant=participant, answer__isnull=False).exists()
    # The script's answer is taken.
    assert post(client, participant, 1, LEFT, **JSON).json()["stored"]["answer"] == LEFT


def test_choosing_a_vigilance_fake_excludes_the_participant(study):
    good, bad = participant_start(study=study), participant_start(study=study)
    for participant, fall_for_vigilance in ((good, False), (bad, True)):
        for t in trials_of(participant):
            real = RIGHT if t.fake_side == LEFT else LEFT
            caught = t.kind == "attention" and fall_for_vigilance
            trial_answer(
                participant=participant,
                position=t.position,
                answer=t.fake_side if caught else real,
                rt_ms=900,
            )
    assert participant_exclusions(study=study) == {bad.pk: FAILED_ATTENTION}
    # The researcher reads what a paired study's checks are: vigilance pairs.
    rows = {row.public_id: row for row in participant_rows(study=study)}
    assert rows[bad.public_id].detail == "failed a vigilance pair (excluded from the analysis)"
    from_prolific = dataclasses.replace(rows[bad.public_id], prolific_pid="5f0c" * 6)
    assert "failing a vigilance pair" in approval(from_prolific)[1]
    rule = " ".join(exclusion_rule_text(study=study))
    assert "Vigilance pairs" in rule and "colour-inverted" not in rule


def _flip_sides(participant) -> None:
    for t in Trial.objects.filter(participant=participant):
        Trial.objects.filter(pk=t.pk).update(fake_side=RIGHT if t.fake_side == LEFT else LEFT)


def _without_token(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_page_json_and_images_tell_nothing_when_the_sides_swap(client, study):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    answer_url = reverse("participant_answer", args=[participant.public_id])
    trials = trials_of(participant)
    post(client, participant, 1, LEFT, **JSON)
    post(client, participant, 2, LEFT, **JSON)
    post(client, participant, 3, LEFT, **JSON)  # now at a test pair

    def seen():
        page = _without_token(client.get(page_url, {"begin": "1"}).content.decode())
        told = client.post(answer_url, {"position": 3, "answer": LEFT, "rt_ms": 700}, **JSON)
        images = [
            client.get(reverse("participant_pair_image", args=[participant.public_id, 4, side]))
            for side in (LEFT, RIGHT)
        ]
        return page, told.json(), [len(i.content) for i in images], images

    before = seen()
    _flip_sides(participant)
    after = seen()
    assert before[:3] == after[:3]
    assert before[2] == [study.stimulus_bytes] * 2
    # The swap is real: the two sides' bytes trade places.
    assert before[3][0].content == after[3][1].content
    words = ["LabelWarmCondition", "secret-run-warm", "attention", "vigilance", "fake_side"]
    for t in trials:
        words += [t.stimulus.file, t.partner.file, t.stimulus.scene.original_name]
    for word in words:
        assert word not in before[0] and word not in json.dumps(before[1]), word
    headers = [{k: v for k, v in i.headers.items() if k != "Date"} for i in before[3]]
    assert headers[0] == headers[1]


def test_analysis_counts_the_fooling_rate_of_pairs(study):
    """A hand-made set: 3 participants choose the fake in 1, 3 and 5 of their 6 test pairs
    (9 of 18: 50 %), and catch every vigilance pair."""
    chosen_fakes = (1, 3, 5)
    for wanted in chosen_fakes:
        participant = participant_start(study=study)
        fooled = 0
        for t in trials_of(participant):
            real = RIGHT if t.fake_side == LEFT else LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            trial_answer(
                participant=participant,
                position=t.position,
                answer=t.fake_side if choose_fake else real,
                rt_ms=800,
            )
    analysis = study_analysis(study=study, n_boot=500)
    (c,) = analysis.conditions
    assert analysis.protocol == "paired" and "P(chose the fake" in analysis.statistic
    assert c.pairs["n"] == 18 and c.pairs["fooled"] == 9 and c.pairs["rate"] == 0.5
    assert c.cells == {"real_real": 0, "real_ai": 0, "ai_real": 9, "ai_ai": 9}
    boot = c.bootstrap.fooling_rate
    assert boot.estimate == pytest.approx(0.5)
    assert boot.interval.low < 0.5 < boot.interval.high
    (table,) = csv.DictReader(io.StringIO(tables_csv(analysis)))
    assert (table["n"], float(table["fooling_rate"])) == ("18", 0.5)
    assert float(table["fooling_rate_wilson_low"]) == pytest.approx(c.pairs["wilson"][0])
    record = json.loads(tables_json(analysis))
    assert record["study"]["protocol"] == "paired"
    mixed = record["mixed_models"]
    assert mixed["computed"], mixed
    (m,) = mixed["conditions"]
    assert m["n_judgements"] == 18 and m["fooled"] == 9 and m["sdt"] is None
    low, high = m["glmm"]["fooling_rate_ci"]
    assert low < m["glmm"]["fooling_rate"] < high
    lines = list(csv.DictReader(io.StringIO("".join(judgements_csv_chunks(study=study)))))
    counted = [r for r in lines if r["counted"] == "1"]
    assert len(counted) == 18 and {r["protocol"] for r in lines} == {"paired"}
    assert {r["truth"] for r in counted} == {"ai"}
    for r in counted:
        assert (r["answer"] == "real") == (r["side"] == r["fake_side"])
    # Per image: the fakes, each with its pairs; a photograph is never judged alone, so it
    # is no row that would say "not judged yet" for ever.
    rows = [r for group in image_rows(study=study).values() for r in group]
    assert rows and not any(r.is_real for r in rows)
    assert sum(r.n for r in rows) == 18 and sum(r.fooled for r in rows) == 9


def test_the_analysis_page_names_the_protocol_and_its_statistic(client, study):
    for wanted in (2, 4):
        participant = participant_start(study=study)
        fooled = 0
        for t in trials_of(participant):
            real = RIGHT if t.fake_side == LEFT else LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            trial_answer(
                participant=participant,
                position=t.position,
                answer=t.fake_side if choose_fake else real,
                rt_ms=800,
            )
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    page = client.get(reverse("study_analysis", args=[study.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Paired real vs fake, 2AFC" in html and "P(chose the fake" in html
    assert "50.00 %" in html  # 6 of 12 test pairs
    # Only the rows a pair has numbers for: no 2×2 table, χ² or d′ (no real photograph is
    # judged alone), the binomial test on the pairs, the rates drawn.
    rows = ("χ² Pearson, no continuity correction (df = 1)", "Sensitivity d′", "Accuracy<")
    for absent in ("The 2×2 tables", "P(judged AI | Real)", *rows):
        assert absent not in html, absent
    binomial = re.search(r"Binomial test of the fooling rate against 50 %: p</th>(.*?)</tr>", html)
    assert re.sub(r"<[^>]+>", "", binomial.group(1)).strip() == "1.0000"  # 6 of 12: p = 1
    assert "No judgements yet." not in html and "Needs judgements" not in html
    # A pair's response time is its fake's: one column and one series, "pairs".
    assert "response time, pairs" in html and "response time, real photographs" not in html
    assert "response times to the pairs" in html and "no participants counted yet" not in html
    assert "Fisher, d′ and c stay empty" in html
    assert "an image is a pair, named by its colourised image" in html  # the models' counts
    assert "an image is (scene, truth)" not in html
    assert "laid out like the paper's Tables 5" not in html
    form = client.get(reverse("study_new"), {"protocol": "paired"}).content.decode()
    assert 'value="paired" selected' in form
    assert 'name="images_per_participant" value="40"' in form
    assert 'name="practice_trials" value="10"' in form
    assert 'name="exposure_ms" value="1000"' in form
    preview = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    plan = json.loads(re.search(r'id="preview-trials"[^>]*>(.*?)</script>', preview).group(1))
    assert len(plan) == study.trials_per_participant
    assert all(set(t["pair_urls"]) == {"left", "right"} for t in plan)
    assert {t["truth"] for t in plan} <= {"left", "right"}
    assert "Which one is the real photograph?" in preview


def test_paired_rows_fit_the_fooling_model_of_their_fakes_compared_with_itself():
    """analyse_rows(paired=True) fits fooled ~ 1 + (1|participant) + (1|image) to the
    pairs as judgements of their fakes: the same numbers as the fooling model of those
    rows (code compared with itself; the model itself is checked against lme4 in
    test_glmm), and no signal-detection model."""
    rng = np.random.default_rng(5)
    rows = [
        Row(f"p{p}", f"img{i}", "A", "ai", "real" if rng.random() < 0.3 + 0.04 * p else "ai")
        for p in range(8)
        for i in range(10)
    ]
    result = analyse_rows(rows, paired=True)
    (c,) = result.conditions
    model, _ = fooling_model(rows)
    assert c.sdt is None and c.real_judged_ai_rate is None
    assert c.fooling_rate == sum(r.answer == "real" for r in rows) / len(rows)
    assert c.glmm.intercept == pytest.approx(model.intercept, abs=1e-9)
    assert any("Paired" in note for note in result.notes)
    with pytest.raises(ValueError, match="truth ai"):
        analyse_rows([*rows, Row("p0", "x", "A", "real", "real")], paired=True)


def test_few_participants_in_a_paired_study_are_said_in_the_exports_as_on_the_page(study):
    """Two participants: the page says "fewer than 5" beside the pairs' interval, and
    tables.csv, tables.json and tables.tex say it in the same words (not only a
    zero-width bootstrap's note)."""
    for wanted in (2, 4):
        participant = participant_start(study=study)
        fooled = 0
        for t in trials_of(participant):
            real = RIGHT if t.fake_side == LEFT else LEFT
            choose_fake = t.kind == "main" and fooled < wanted
            fooled += choose_fake
            trial_answer(
                participant=participant,
                position=t.position,
                answer=t.fake_side if choose_fake else real,
                rt_ms=800,
            )
    analysis = study_analysis(study=study, n_boot=300)
    (c,) = analysis.conditions
    few = too_few_participants(2)
    assert few.startswith("only 2 participants, fewer than 5")
    assert few in dashboard(analysis).fields[f"c{c.condition_id}-fooling_rate_ci"]
    (table,) = csv.DictReader(io.StringIO(tables_csv(analysis)))
    assert few in table["interval_note"]
    (condition,) = json.loads(tables_json(analysis))["conditions"]
    assert few in condition["interval_note"]
    assert few in tables_latex(analysis)


# --------------------------------------------------------------------------------------------
# Instructed-response checks ("For this pair, please answer Left"), for Prolific's policy
# --------------------------------------------------------------------------------------------


@pytest.fixture
def checked(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run],
        protocol=Study.Protocol.PAIRED,
        images_per_participant=4,
        practice_trials=1,
        attention_checks=1,
        instructed_checks=2,
    )


def test_the_default_consent_says_a_pair_is_shown_and_the_photograph_chosen(client, study):
    consent = client.get(reverse("study_landing", args=[study.slug])).content.decode()
    assert "You will see a series of pairs of images and choose in each pair the real" in consent
    assert "one at a time" not in consent


def test_check_pairs_are_a_reserved_scenes_photograph_and_fake_among_the_test_pairs(checked):
    combinations = set()
    for seed in range(12):
        participant = participant_start(study=checked, rng=random.Random(seed))
        trials = trials_of(participant)
        kinds = [t.kind for t in trials]
        assert kinds[:2] == ["practice", "main"]  # never first among the test pairs
        assert kinds.count("instructed") == 2 and kinds.count("attention") == 1
        main_scenes = {t.stimulus.scene_id for t in trials if t.kind == "main"}
        for t in trials:
            assert (t.instructed_answer is not None) == (t.kind == "instructed")
            if t.kind == "instructed":
                assert t.stimulus.role == t.partner.role == Stimulus.Role.INSTRUCTED
                assert not t.stimulus.is_real and t.partner.is_real
                assert t.stimulus.scene_id == t.partner.scene_id not in main_scenes
                combinations.add((t.fake_side, instructed_side(t)))
    # The side asked for says nothing of where the photograph is: every combination occurs.
    assert combinations == {(LEFT, LEFT), (LEFT, RIGHT), (RIGHT, LEFT), (RIGHT, RIGHT)}


def test_the_flow_asks_for_a_side_and_the_checks_count_for_prolific_not_the_analysis(
    client, checked
):
    participant = start(client, checked, PROLIFIC_PID=f"{0xCAFE:024x}")
    page_url = reverse("participant_page", args=[participant.public_id])
    intro = client.get(page_url).content.decode()
    assert "A few pairs come with an instruction that says which side to choose" in intro
    trials = trials_of(participant)
    failed = 0
    for i, t in enumerate(trials):
        page = client.get(page_url, {"begin": "1"})
        html = page.content.decode()
        photograph = RIGHT if t.fake_side == LEFT else LEFT
        if t.kind == "instructed":
            assert PAIR_INSTRUCTION[instructed_side(t)] in html
            assert "hidden>Which one is the real photograph?</span>" in html  # in its place
            side = instructed_side(t) if failed else other_side(instructed_side(t))
            failed += 1  # the first check failed, the second passed
        else:
            assert "For this pair" not in html
            side = photograph
        reply = post(client, participant, t.position, side, **JSON).json()
        assert reply["stored"] == {"position": t.position, "answer": side}
        if i + 1 < len(trials):
            nxt = trials[i + 1]
            expected = PAIR_INSTRUCTION[instructed_side(nxt)] if nxt.kind == "instructed" else ""
            assert reply["next"]["instruction"] == expected
    (row,) = participant_rows(study=checked)
    assert (row.instructed_passed, row.instructed_failed) == (1, 1)
    assert (row.attention_passed, row.attention_failed) == (1, 0)
    assert approval(row) == ("approve", "completed")
    analysis = study_analysis(study=checked, n_boot=200)
    (c,) = analysis.conditions
    assert analysis.participants.included == 1
    assert (c.pairs["n"], c.pairs["fooled"]) == (4, 0)  # the 4 test pairs only
    # judgements.csv says what each check asked for, beside the side chosen.
    rows = csv.DictReader(io.StringIO("".join(judgements_csv_chunks(study=checked))))
    asked = {int(r["position"]): (r["instructed"], r["side"]) for r in rows}
    for t in trials:
        if t.kind == "instructed":
            assert asked[t.position][0] == instructed_side(t)
        else:
            assert asked[t.position][0] == ""
    passed = [side == wanted for wanted, side in asked.values() if wanted]
    assert sorted(passed) == [False, True]
