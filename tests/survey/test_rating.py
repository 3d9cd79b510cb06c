"""The rating protocol (ITU-T P.910 ACR, survey.rating_protocol): its flow over HTTP with and
without a script, reloads, repeated and absurd answers, the study form, and its analysis
on a hand-made set (MOS, t intervals, ITU-R BT.500 screening) with its page and exports."""

from __future__ import annotations

import csv
import io
import json
import math
import random

import pytest
from django.urls import reverse
from django.utils import timezone

from studyplatform.researchers import researcher_create
from survey.analysis.exclusion import FAILED_INSTRUCTED, participant_exclusions
from survey.analysis.exports import judgements_csv_chunks
from survey.models import Participant, Stimulus, Study, Trial
from survey.participant_list import approval, participant_rows
from survey.rating_protocol import REAL_ITEM, rating_analysis, ratings_csv
from survey.ratings import analyse_ratings, read_ratings
from survey.services.assignment import participant_start
from tests.survey.study_helpers import answer_post, open_study, tiny_dataset, uploaded_run
from tests.survey.study_helpers import consent_start as start

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def post(client, participant, position, answer, **extra):
    return answer_post(client, participant, position, answer, rt_ms=900, **extra)


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run],
        labels=["LabelWarmCondition"],
        protocol=Study.Protocol.RATING,
        images_per_participant=4,
        practice_trials=1,
    )


def trials_of(participant) -> list[Trial]:
    return list(Trial.objects.filter(participant=participant).order_by("position"))


def test_the_page_shows_five_buttons_keyed_1_to_5_and_the_photographs_are_rated_too(client, study):
    participant = start(client, study)
    html = client.get(reverse("participant_page", args=[participant.public_id])).content.decode()
    for score, label in ((1, "Bad"), (2, "Poor"), (3, "Fair"), (4, "Good"), (5, "Excellent")):
        assert f'value="{score}" class="answer" data-keys="{score}"' in html
        assert f"<bdi>{label}</bdi>" in html
    assert 'value="real"' not in html and 'value="ai"' not in html
    assert "How would you rate the quality of this image?" in html
    # Half photographs, half colourisations among the measured trials (the hidden reference).
    main = [t for t in trials_of(participant) if t.kind == Stimulus.Role.MAIN]
    truths = [Stimulus.objects.get(pk=t.stimulus_id).is_real for t in main]
    assert sorted(truths) == [False, False, True, True]


def test_the_scale_is_translated(client, study):
    Study.objects.filter(pk=study.pk).update(language="de")
    participant = start(client, study)
    html = client.get(reverse("participant_page", args=[participant.public_id])).content.decode()
    for label in ("Ausgezeichnet", "Gut", "Ordentlich", "Dürftig", "Schlecht"):
        assert f"<bdi>{label}</bdi>" in html
    assert "Excellent" not in html


def test_the_flow_by_script_stores_each_rating_once_on_its_trial(client, study):
    participant = start(client, study)
    trials = trials_of(participant)
    for i, trial in enumerate(trials):
        score = str(1 + i % 5)
        data = post(client, participant, trial.position, score, **JSON).json()
        assert data["stored"] == {"position": trial.position, "answer": score}
        assert data["feedback"] is None  # not even after practice: a rating is never wrong
    assert data["done_url"] and data["next"] is None
    stored = trials_of(participant)
    assert [(t.answer, t.rating) for t in stored] == [
        ("acr", 1 + i % 5) for i in range(len(stored))
    ]
    participant.refresh_from_db()
    assert participant.completed_at is not None


def test_the_flow_without_a_script_resumes_after_a_reload(client, study):
    participant = start(client, study)
    page = reverse("participant_page", args=[participant.public_id])
    response = post(client, participant, 1, "5")
    assert response.status_code == 302 and response["Location"] == page
    reloaded = client.get(page)
    assert reloaded.context["trial"].position == 2
    assert 'name="position" value="2"' in reloaded.content.decode()
    again = client.get(page)  # a second reload: still the same trial, nothing answered
    assert again.context["trial"].position == 2
    assert [t.rating for t in trials_of(participant)][:2] == [5, None]


def test_a_repeated_post_stores_once_and_returns_the_first_rating(client, study):
    participant = start(client, study)
    first = post(client, participant, 1, "4", **JSON).json()
    repeated = post(client, participant, 1, "1", **JSON)
    assert repeated.status_code == 200
    assert repeated.json()["stored"] == first["stored"] == {"position": 1, "answer": "4"}
    assert post(client, participant, 1, "2").status_code == 302  # plain form too
    trial = trials_of(participant)[0]
    assert (trial.answer, trial.rating) == ("acr", 4)
    assert Trial.objects.filter(participant=participant, answer__isnull=False).count() == 1


@pytest.mark.parametrize("bad", ["0", "6", "abc", "3.5", "", " 3", "real", "-1", "55"])
def test_an_absurd_rating_is_refused_in_words_and_loses_nothing(client, study, bad):
    participant = start(client, study)
    post(client, participant, 1, "3", **JSON)
    response = post(client, participant, 2, bad, **JSON)
    assert response.status_code == 409
    assert "five-point scale" in response.json()["error"]
    assert "1 (bad) to 5 (excellent)" in response.json()["error"]
    plain = post(client, participant, 2, bad)
    assert plain.status_code == 302  # back to the same trial, which says so
    back = client.get(plain["Location"])
    assert back.context["trial"].position == 2
    assert "Your last answer could not be stored." in back.content.decode()
    assert (
        "could not be stored"
        not in client.get(
            reverse("participant_page", args=[participant.public_id])
        ).content.decode()
    )
    trials = trials_of(participant)
    assert [(t.answer, t.rating) for t in trials[:2]] == [("acr", 3), (None, None)]
    assert post(client, participant, 2, "2", **JSON).json()["stored"]["answer"] == "2"


def test_the_database_keeps_a_rating_on_the_scale(study):
    from django.db import IntegrityError, transaction

    participant = Participant.objects.create(study=study)
    stimulus = Stimulus.objects.filter(study=study, role="main").first()
    for answer, rating in (("acr", 6), ("acr", 0), ("acr", None), ("real", 3)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Trial.objects.create(
                participant=participant, position=1, stimulus=stimulus, answer=answer, rating=rating
            )


def test_the_form_offers_the_preset_and_refuses_attention_checks_not_instructed_ones(client, study):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(ada)
    form = client.get(reverse("study_new"), {"protocol": "rating"}).content.decode()
    assert 'value="rating" selected' in form
    assert 'name="images_per_participant" value="24"' in form
    assert 'name="practice_trials" value="4"' in form
    assert "Rating, ACR" in form
    response = client.post(
        reverse("study_new"),
        {
            "name": "r",
            "protocol": "rating",
            "design": "within",
            "images_per_participant": 24,
            "attention_checks": 2,
            "instructed_checks": 1,
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "A rating study has no colour-inverted attention checks" in html
    assert html.count("Use instructed-response checks instead") == 1  # not for instructed


# --------------------------------------------------------------------------------------------
# Analysis on a hand-made set
# --------------------------------------------------------------------------------------------

#: Per photograph (each rated by the 8 consistent observers in turn) and the erratic
#: observer's score: chosen so that every presentation's β2 is within [2, 4] and only
#: the erratic observer falls beyond ū ± 2S, low on every photograph and high on every
#: colourisation (P = Q = 3 of 6: rejected by BT.500).
GOOD = [3, 4, 4, 5, 5, 5, 5, 5]
BAD = [3, 2, 2, 1, 1, 1, 1, 1]
T_975_23 = 2.0686576104190406  # Student's t, 0.975 quantile, 23 degrees of freedom


def _hand_made(study) -> list[Participant]:
    """9 finished observers (the 9th erratic) rating the same 3 photographs and 3
    colourisations; an unfinished observer whose ratings must not count."""
    reals = list(Stimulus.objects.filter(study=study, role="main", is_real=True)[:3])
    fakes = list(Stimulus.objects.filter(study=study, role="main", is_real=False)[:3])
    now = timezone.now()
    people = [
        Participant.objects.create(study=study, completed_at=now, condition=None) for _ in range(10)
    ]
    people[9].completed_at = None
    people[9].save()
    for k, stimulus in enumerate(reals + fakes):
        scores = GOOD if stimulus.is_real else BAD
        scores = scores[k:] + scores[:k]
        erratic = 1 if stimulus.is_real else 5
        for i, person in enumerate(people):
            score = scores[i] if i < 8 else erratic if i == 8 else 3
            Trial.objects.create(
                participant=person,
                position=k + 1,
                stimulus=stimulus,
                answer="acr",
                rating=score,
                rt_ms=1000,
            )
    return people


@pytest.fixture
def within(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run],
        labels=["Warm"],
        protocol=Study.Protocol.RATING,
        design=Study.Design.WITHIN,
        images_per_participant=6,
    )


def test_mos_and_intervals_match_the_hand_computed_values(within):
    people = _hand_made(within)
    analysis = rating_analysis(study=within)
    result = analysis["result"]
    assert analysis["rejected"] == [str(people[8].pk)]
    rows = {r["item"]: r for r in result["items"]}
    assert [r["item"] for r in result["items"]] == ["Warm", REAL_ITEM]
    # By hand: 24 ratings each; photographs 3,4,4,5,5,5,5,5 thrice: mean 4.5, squared
    # deviations 2.25 + 2·0.25 + 5·0.25 = 4 per photograph, S² = 3·4/23; colourisations
    # the mirror image (mean 1.5, the same S).
    sd = math.sqrt(12 / 23)
    half = T_975_23 * sd / math.sqrt(24)
    for item, mos in ((REAL_ITEM, 4.5), ("Warm", 1.5)):
        r = rows[item]
        assert (r["n"], r["n_participants"], r["n_images"]) == (24, 8, 3)
        assert r["mos"] == pytest.approx(mos, abs=1e-12)
        assert r["sd"] == pytest.approx(sd, abs=1e-12)
        assert r["ci"] == pytest.approx([mos - half, mos + half], abs=1e-9)
    # Without the screening the erratic observer counts: (108 + 3) / 27 and (36 + 15) / 27.
    analysis = rating_analysis(study=within, screening=False)
    unscreened = {r["item"]: r for r in analysis["result"]["items"]}
    assert unscreened[REAL_ITEM]["mos"] == pytest.approx(111 / 27)
    assert unscreened["Warm"]["mos"] == pytest.approx(51 / 27)


def test_the_study_analysis_equals_analyse_ratings_on_its_export_compared_with_itself(within):
    _hand_made(within)
    exported = ratings_csv(study=within)
    lines = list(csv.DictReader(io.StringIO(exported)))
    assert len(lines) == 9 * 6  # before the screening; the unfinished observer left out
    expected = analyse_ratings(read_ratings(io.StringIO(exported)), confidence=0.95)
    got = rating_analysis(study=within)["result"]
    assert sorted(got["items"], key=lambda r: r["item"]) == expected["items"]
    assert got["screening"]["rejected"] == expected["screening"]["rejected"]


def test_the_analysis_page_names_the_protocol_screening_and_exports(client, within):
    people = _hand_made(within)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=within.pk).update(owner=ada)
    client.force_login(ada)
    page = client.get(reverse("study_analysis", args=[within.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Rating, ACR" in html and "mean opinion score" in html
    assert "ITU-T P.910" in html and "ITU-R BT.500" in html
    assert "Real photographs" in html and "4.500" in html and "1.500" in html
    assert f"Rejected: 1</strong> — {people[8].pk}" in html
    assert people[8].public_id not in html  # by number, never the URL token
    assert "d′" in html and "do not apply" in html
    assert "Mixed-effects models" not in html
    unscreened = client.get(reverse("study_analysis", args=[within.pk]), {"screening": "off"})
    assert "Screening not applied" in unscreened.content.decode()
    assert "4.111" in unscreened.content.decode()  # 111 / 27
    mos = client.get(reverse("export_mos_csv", args=[within.pk]))
    table = {r["item"]: r for r in csv.DictReader(io.StringIO(mos.content.decode()))}
    assert float(table[REAL_ITEM]["mos"]) == pytest.approx(4.5)
    assert table["Warm"]["n"] == "24"
    record = json.loads(client.get(reverse("export_mos_json", args=[within.pk])).content)
    assert record["result"]["screening"]["rejected"] == [str(people[8].pk)]
    assert record["protocol"] == "rating"
    plain = client.get(reverse("export_mos_json", args=[within.pk]), {"screening": "off"})
    assert json.loads(plain.content)["screening_applied"] is False
    ratings = client.get(reverse("export_ratings_csv", args=[within.pk]))
    assert ratings.status_code == 200
    assert ratings.content.decode().startswith("participant,condition,item,image,is_real,score")


def test_a_single_image_study_refuses_a_rating_and_the_acr_marker(client, tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    single = open_study([run], images_per_participant=4)
    participant = start(client, single)
    for bad in ("3", "acr"):
        response = post(client, participant, 1, bad, **JSON)
        assert response.status_code == 409 and "must be one of real, ai" in response.json()["error"]
    assert trials_of(participant)[0].answer is None
    assert post(client, participant, 1, "real", **JSON).json()["stored"]["answer"] == "real"


def test_the_study_and_participants_pages_of_a_rating_study_open(client, within):
    _hand_made(within)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=within.pk).update(owner=ada)
    client.force_login(ada)
    detail = client.get(reverse("study_detail", args=[within.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "rating, absolute category rating (ACR, ITU-T P.910)" in html
    # What participants are asked and how it is analysed: the scale and the MOS, not
    # "Real or AI?" and an equivalence test.
    assert "How would you rate the quality of this image?" in html
    assert '<bdi lang="en">Excellent</bdi> (key <kbd>5</kbd>)' in html
    assert "mean opinion score (MOS" in html and "equivalence to chance" not in html
    assert "Real photograph, or colourised by AI?" not in html
    assert client.get(reverse("study_participants", args=[within.pk])).status_code == 200
    client.logout()
    consent = client.get(reverse("study_landing", args=[within.slug])).content.decode()
    assert "rate the quality of each from 1 (bad) to 5 (excellent)" in consent
    assert "whether it is a real photograph" not in consent


def test_stimuli_are_not_prepared_for_a_rating_study_with_checks(tmp_path):
    from survey.services.errors import StudyError

    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    with pytest.raises(StudyError, match="a rating study has no colour-inverted attention"):
        open_study(
            [run], protocol=Study.Protocol.RATING, images_per_participant=4, attention_checks=1
        )


def test_between_subjects_each_condition_has_its_photographs_row(client, study):
    """Two participants rate every photograph 5 and every colourisation 2 (practice 1, not
    counted); a third stops half-way and does not count."""
    for finish in (True, True, False):
        client.cookies.clear()
        participant = start(client, study)
        trials = list(Trial.objects.filter(participant=participant).select_related("stimulus"))
        for t in sorted(trials, key=lambda t: t.position)[: None if finish else 2]:
            score = "1" if t.kind == "practice" else "5" if t.stimulus.is_real else "2"
            post(client, participant, t.position, score, **JSON)
    analysis = rating_analysis(study=study)
    rows = {r["item"]: r for r in analysis["result"]["items"]}
    assert (rows[REAL_ITEM]["mos"], rows[REAL_ITEM]["n"]) == (5.0, 4)
    assert (rows["LabelWarmCondition"]["mos"], rows["LabelWarmCondition"]["n"]) == (2.0, 4)
    assert rows[REAL_ITEM]["ci"] == [5.0, 5.0]  # every rating the same: a zero-width interval
    (own,) = analysis["by_condition_real"]
    assert (own["item"], own["mos"], own["n"]) == ("LabelWarmCondition", 5.0, 4)
    assert analysis["rejected"] == []


# --------------------------------------------------------------------------------------------
# Instructed-response checks ("For this image, please answer Poor (2)")
# --------------------------------------------------------------------------------------------

SCALE = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}


def asked(t: Trial) -> str:
    return f"For this image, please answer {SCALE[t.instructed_rating]} ({t.instructed_rating})."


@pytest.fixture
def checked(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    return open_study(
        [run], protocol=Study.Protocol.RATING, images_per_participant=4, instructed_checks=2
    )


def test_instructed_checks_ask_for_a_score_drawn_whatever_the_image(checked):
    seen = set()
    for seed in range(20):
        participant = participant_start(study=checked, rng=random.Random(seed))
        trials = trials_of(participant)
        assert [t.kind for t in trials].count("instructed") == 2 and trials[0].kind == "main"
        for t in trials:
            if t.kind == "instructed":
                assert t.instructed_answer == "acr" and 1 <= t.instructed_rating <= 5
                seen.add((Stimulus.objects.get(pk=t.stimulus_id).is_real, t.instructed_rating))
            else:
                assert t.instructed_answer is None and t.instructed_rating is None
    assert {score for _, score in seen} == set(SCALE)  # every score is asked for
    assert {real for real, _ in seen} == {True, False}  # of photographs and colourisations


def test_the_flow_shows_the_score_to_give_and_counts_the_checks_for_prolific(client, checked):
    participant = start(client, checked, PROLIFIC_PID=f"{0xACE:024x}")
    page_url = reverse("participant_page", args=[participant.public_id])
    intro = client.get(page_url).content.decode()
    assert "A few images come with an instruction that says which answer to give" in intro
    trials = trials_of(participant)
    first_check = True
    for i, t in enumerate(trials):
        page = client.get(page_url, {"begin": "1"})
        html = page.content.decode()
        if t.kind == "instructed":
            assert asked(t) in html and page.context["trial"].instruction == asked(t)
            score = t.instructed_rating if first_check else 1 + t.instructed_rating % 5
            first_check = False
        else:
            assert "For this image" not in html
            score = 3
        reply = post(client, participant, t.position, str(score), **JSON).json()
        assert reply["stored"] == {"position": t.position, "answer": str(score)}
        if i + 1 < len(trials):
            nxt = trials[i + 1]
            assert reply["next"]["instruction"] == (asked(nxt) if nxt.kind == "instructed" else "")
    (row,) = participant_rows(study=checked)
    assert (row.instructed_passed, row.instructed_failed) == (1, 1)
    assert approval(row) == ("approve", "completed")
    ratings = rating_analysis(study=checked)["result"]
    assert sum(item["n"] for item in ratings["items"]) == 4  # the checks are never rated in
    # judgements.csv says which score each check asked for, beside the score given.
    rows = csv.DictReader(io.StringIO("".join(judgements_csv_chunks(study=checked))))
    exported = {int(r["position"]): r["instructed"] for r in rows}
    for t in trials:
        assert exported[t.position] == (str(t.instructed_rating) if t.kind == "instructed" else "")


def test_a_wrong_score_fails_a_check_and_excludes_when_the_researcher_chose_so(client, tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    study = open_study(
        [run],
        protocol=Study.Protocol.RATING,
        images_per_participant=4,
        instructed_checks=2,
        instructed_checks_exclude=True,
    )
    people = []
    for wrong in (False, True):
        client.cookies.clear()
        participant = start(client, study)
        for t in trials_of(participant):
            score = 3
            if t.kind == "instructed":  # the right answer ("acr"), the wrong score
                score = 1 + t.instructed_rating % 5 if wrong else t.instructed_rating
            post(client, participant, t.position, str(score), **JSON)
        people.append(participant)
    assert participant_exclusions(study=study) == {people[1].pk: FAILED_INSTRUCTED}


def test_the_database_keeps_an_instructed_score_on_the_scale_and_with_acr(checked):
    from django.db import IntegrityError, transaction

    participant = Participant.objects.create(study=checked)
    stimulus = Stimulus.objects.filter(study=checked, role="instructed").first()
    for answer, score in (("acr", 6), ("acr", 0), ("acr", None), ("real", 3)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Trial.objects.create(
                participant=participant,
                position=1,
                stimulus=stimulus,
                kind="instructed",
                instructed_answer=answer,
                instructed_rating=score,
            )


def test_the_preview_names_the_score_each_check_asks_for(client, checked):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=checked.pk).update(owner=ada)
    client.force_login(ada)
    html = client.get(reverse("study_preview", args=[checked.pk])).content.decode()
    script = html.split('id="preview-trials" type="application/json">')[1].split("</script>")[0]
    trials = json.loads(script)
    checks = [t["instruction"] for t in trials if t["kind"] == "instructed"]
    assert len(checks) == 2
    for text in checks:
        assert any(text == f"For this image, please answer {w} ({n})." for n, w in SCALE.items())
    assert all(t["instruction"] == "" for t in trials if t["kind"] != "instructed")
