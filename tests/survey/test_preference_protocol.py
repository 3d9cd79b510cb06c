"""The model-vs-model preference protocol, 2AFC (survey.preference_protocol): its rules
at the study form, its stimuli (one size per photograph, no real photographs), its pairs
(balanced across the pairs of runs and the sides, each photograph once), its flow over
HTTP with and without a script, its leak-proofing, and its Bradley–Terry analysis and
exports checked against survey.preference."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
import zipfile
from collections import Counter

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from studyplatform.researchers import researcher_create
from survey.models import Stimulus, Study, Trial
from survey.participant_list import approval, participant_rows
from survey.preference import Comparison, bradley_terry
from survey.preference_protocol import (
    preference_analysis,
    run_pair_counts,
    run_pair_quotas,
    run_pair_uncertainty,
    study_wins,
)
from survey.services.assignment import participant_start
from survey.services.stimuli import served_length
from survey.services.trials import trial_answer
from survey.services.withdrawal import participant_withdraw
from tests.survey.study_helpers import (
    COLOURISERS,
    PAIR_INSTRUCTION,
    answer_post,
    instructed_side,
    open_study,
    other_side,
    tiny_dataset,
    uploaded_run,
)
from tests.survey.study_helpers import consent_start as start
from worker.models import Dataset, ModelRun

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
LEFT, RIGHT = Trial.Side.LEFT, Trial.Side.RIGHT
LABELS = ["LabelWarmRun", "LabelCoolRun", "LabelSmallRun"]


def post(client, participant, position, answer, **extra):
    return answer_post(client, participant, position, answer, rt_ms=700, **extra)


def _green(image: Image.Image) -> Image.Image:
    r, g, b = image.split()
    return Image.merge("RGB", (r, g.point(lambda v: min(255, v + 40)), b))


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setitem(COLOURISERS, "green", _green)
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes, 32 × 32
    return [
        uploaded_run(dataset, tmp_path, name="secret-run-warm"),
        uploaded_run(dataset, tmp_path, name="secret-run-cool", style="cool"),
        # Smaller outputs: its pairs must still show two images of one size.
        uploaded_run(dataset, tmp_path, name="secret-run-small", style="green", size=24),
    ]


def preference_study(runs, **fields) -> Study:
    settings = {
        "protocol": Study.Protocol.PREFERENCE,
        "design": Study.Design.WITHIN,
        "images_per_participant": 6,
        **fields,
    }
    return open_study(runs, labels=LABELS[: len(runs)], **settings)


@pytest.fixture
def study(runs):
    return preference_study(runs)


def trials_of(participant) -> list[Trial]:
    return list(
        Trial.objects.filter(participant=participant)
        .select_related("stimulus__condition", "partner__condition")
        .order_by("position")
    )


def run_pair(t: Trial) -> tuple[int, int]:
    return tuple(sorted((t.stimulus.condition_id, t.partner.condition_id)))


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------


def test_preparation_keeps_only_the_runs_outputs_each_photograph_at_one_size(study):
    stimuli = list(Stimulus.objects.filter(study=study))
    assert stimuli and not any(s.is_real for s in stimuli)  # no real photograph is shown
    assert {s.role for s in stimuli} == {"main"}
    by_scene: dict[int, list[Stimulus]] = {}
    for s in stimuli:
        by_scene.setdefault(s.scene_id, []).append(s)
    assert len(by_scene) == 12
    lengths = []
    for images in by_scene.values():
        assert len(images) == 3
        assert {(s.width, s.height) for s in images} == {(24, 24)}  # the smallest, never enlarged
        for s in images:
            with default_storage.open(s.file, "rb") as f:
                data = f.read()
            lengths.append(len(data))
            assert Image.open(io.BytesIO(data)).size == (24, 24)
    assert Study.objects.get(pk=study.pk).stimulus_bytes == served_length(24, 24)


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


def _form(runs, **overrides):
    data = {
        "name": "Preference",
        "protocol": "preference",
        "runs": [r.pk for r in runs],
        "design": "within",
        "images_per_participant": 6,
        "target_participants_per_condition": 10,
        "practice_trials": 0,
        "attention_checks": 0,
        "exposure_ms": "",
    }
    data.update(overrides)
    return data


def test_the_form_refuses_one_run_between_subjects_and_checks_with_the_reason(
    researcher_client, runs
):
    ada = researcher_client.session["_auth_user_id"]
    ModelRun.objects.filter(pk__in=[r.pk for r in runs]).update(owner_id=ada)
    Dataset.objects.update(owner_id=ada)
    url = reverse("study_new")
    one = researcher_client.post(url, _form(runs[:1])).content.decode()
    assert "compares runs: choose at least 2 runs (conditions); 1 run is chosen." in one
    between = researcher_client.post(url, _form(runs, design="between")).content.decode()
    assert "A preference study is within subjects" in between
    checks = researcher_client.post(url, _form(runs, practice_trials=2)).content.decode()
    assert "A preference study has no practice pairs" in checks
    many = researcher_client.post(url, _form(runs, images_per_participant=14)).content.decode()
    assert "These runs colourised 12 test images in common; 14 pairs per participant" in many
    adaptive = researcher_client.post(
        url, _form(runs, protocol="single", design="between", preference_adaptive="on")
    ).content.decode()
    assert "Adaptive pairs are for a model-vs-model preference study only" in adaptive
    assert not Study.objects.exists()
    made = researcher_client.post(url, _form(runs[:2]))
    assert made.status_code == 302
    created = Study.objects.get()
    assert created.protocol == "preference" and created.conditions.count() == 2
    form = researcher_client.get(url, {"protocol": "preference"}).content.decode()
    assert 'value="preference" selected' in form and 'value="within" selected' in form
    assert "Model vs model preference, 2AFC" in form


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def test_each_participant_compares_every_run_pair_equally_sides_balanced_photos_once(study):
    for _ in range(4):
        participant = participant_start(study=study)
        trials = trials_of(participant)
        assert len(trials) == study.trials_per_participant == 6
        assert {t.kind for t in trials} == {"main"}
        pairs = Counter(run_pair(t) for t in trials)
        assert sorted(pairs.values()) == [2, 2, 2]  # 3 run pairs, 2 each
        for pair in pairs:
            # The first run of the pair (the trial's stimulus) once on each side.
            sides = [t.fake_side for t in trials if run_pair(t) == pair]
            assert sorted(sides) == [LEFT, RIGHT]
        for t in trials:
            assert t.stimulus.condition_id < t.partner.condition_id
            assert t.stimulus.scene_id == t.partner.scene_id
            assert (t.stimulus.width, t.stimulus.height) == (t.partner.width, t.partner.height)
        scenes = [t.stimulus.scene_id for t in trials]
        assert len(set(scenes)) == 6  # each photograph once
    exposures = list(Stimulus.objects.filter(study=study).values_list("exposures", flat=True))
    assert sum(exposures) == 4 * 6 * 2
    # Each photograph's images were shown about equally: 48 showings over 12 photographs.
    by_scene = Counter()
    for s in Stimulus.objects.filter(study=study):
        by_scene[s.scene_id] += s.exposures
    assert max(by_scene.values()) - min(by_scene.values()) <= 2, by_scene
    participant_withdraw(study=study, public_id=participant.public_id)
    assert sum(Stimulus.objects.filter(study=study).values_list("exposures", flat=True)) == 36


def test_the_remainder_goes_to_the_run_pairs_compared_least_so_far(runs):
    study = preference_study(runs, images_per_participant=4)  # 3 run pairs: 1 each + 1
    for _ in range(3):
        participant_start(study=study)
    counts = Counter(run_pair(t) for t in Trial.objects.filter(participant__study=study))
    assert sorted(counts.values()) == [4, 4, 4]  # 12 pairs over 3 run pairs, exactly even


def test_run_pair_quotas_give_the_extra_pairs_to_the_least_compared():
    import random

    quotas = run_pair_quotas([1, 2, 3], 4, Counter({(1, 2): 5, (1, 3): 5, (2, 3): 4}), random)
    assert quotas == {(1, 2): 1, (1, 3): 1, (2, 3): 2}
    quotas = run_pair_quotas([3, 1, 2], 8, Counter({(2, 3): 1}), random)
    assert sorted(quotas.values()) == [2, 3, 3] and quotas[(2, 3)] == 2


# --------------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------------


def test_the_flow_by_script_stores_the_side_and_the_winning_run(client, study):
    participant = start(client, study)
    html = client.get(reverse("participant_page", args=[participant.public_id])).content.decode()
    assert "Which looks more natural?" in html and "There is no right or wrong answer." in html
    assert 'Pair <span data-f="number">1</span>' in html
    assert 'data-keys="F ArrowLeft"' in html and 'data-keys="J ArrowRight"' in html
    trials = trials_of(participant)
    for t in trials:
        for side in (LEFT, RIGHT):
            image = client.get(
                reverse("participant_pair_image", args=[participant.public_id, t.position, side])
            )
            assert image.status_code == 200 and len(image.content) == study.stimulus_bytes
        chosen = LEFT if t.position % 2 else RIGHT
        reply = post(client, participant, t.position, chosen, **JSON).json()
        assert reply["stored"] == {"position": t.position, "answer": chosen}
        assert reply["feedback"] is None
        if t.position < len(trials):
            assert set(reply["next"]["pair_urls"]) == {"left", "right"}
    assert reply["done_url"]
    participant.refresh_from_db()
    assert participant.completed_at is not None
    for t in trials_of(participant):
        assert t.chosen_side == (LEFT if t.position % 2 else RIGHT)
        # "real": the trial's stimulus (the first run's image) was chosen; "ai": its partner.
        chosen_image = t.stimulus if t.chosen_side == t.fake_side else t.partner
        assert t.answer == ("real" if chosen_image == t.stimulus else "ai")
    record = preference_analysis(study=study, include_unfinished=True)
    assert record["n_judgements"] == 6


def test_the_flow_without_a_script_resumes_after_a_reload_and_stores_a_double_post_once(
    client, study
):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    for t in trials_of(participant)[:3]:
        before = client.get(page_url, {"begin": "1"}).content.decode()
        assert f'name="position" value="{t.position}"' in before
        again = client.get(page_url, {"begin": "1"}).content.decode()  # a reload
        assert f'name="position" value="{t.position}"' in again
        response = post(client, participant, t.position, RIGHT)
        assert response.status_code == 302 and response["Location"] == page_url
        twice = post(client, participant, t.position, LEFT)  # a double post, another side
        assert twice.status_code == 302
    after = client.get(page_url).content.decode()
    assert 'name="position" value="4"' in after
    stored = [(t.chosen_side, t.answered_at is not None) for t in trials_of(participant)]
    assert stored[:3] == [(RIGHT, True)] * 3 and stored[3:] == [(None, False)] * 3
    # The script's double post: the stored answer comes back, unchanged.
    reply = post(client, participant, 3, LEFT, **JSON).json()
    assert reply["stored"] == {"position": 3, "answer": RIGHT}


def _flip(participant) -> None:
    """Swap which run is on which side in every pair of ``participant``."""
    for t in Trial.objects.filter(participant=participant):
        Trial.objects.filter(pk=t.pk).update(fake_side=RIGHT if t.fake_side == LEFT else LEFT)


def _without_token(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_page_json_and_images_tell_nothing_of_the_runs_when_they_swap_sides(client, study):
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    answer_url = reverse("participant_answer", args=[participant.public_id])
    trials = trials_of(participant)
    post(client, participant, 1, LEFT, **JSON)

    def seen():
        page = _without_token(client.get(page_url, {"begin": "1"}).content.decode())
        told = client.post(answer_url, {"position": 1, "answer": LEFT, "rt_ms": 700}, **JSON)
        images = [
            client.get(reverse("participant_pair_image", args=[participant.public_id, 2, side]))
            for side in (LEFT, RIGHT)
        ]
        return page, told.json(), [len(i.content) for i in images], images

    before = seen()
    _flip(participant)
    after = seen()
    assert before[:3] == after[:3]
    assert before[2] == [study.stimulus_bytes] * 2
    assert before[3][0].content == after[3][1].content  # the swap is real
    assert before[3][0].content != before[3][1].content
    words = [*LABELS, "secret-run", "condition", "fake_side", "preference"]
    for t in trials:
        words += [t.stimulus.file, t.partner.file, t.stimulus.scene.original_name]
    for word in words:
        assert word not in before[0] and word not in json.dumps(before[1]), word
    headers = [{k: v for k, v in i.headers.items() if k != "Date"} for i in before[3]]
    assert headers[0] == headers[1]


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

#: The hand-made preferences: a participant prefers the run ranked higher here, except in
#: their first pair of the runs listed in UPSETS (participant, the two runs), where they
#: prefer the other. Of the 8 comparisons per pair of runs, Warm beats Cool 6 times, Cool
#: beats Small 7 times and Warm beats Small 7 times, whatever order the pairs came in.
RANK = {"LabelWarmRun": 0, "LabelCoolRun": 1, "LabelSmallRun": 2}
WARM_COOL = frozenset({"LabelWarmRun", "LabelCoolRun"})
UPSETS = {
    (0, WARM_COOL),
    (3, WARM_COOL),
    (1, frozenset({"LabelCoolRun", "LabelSmallRun"})),
    (2, frozenset({"LabelWarmRun", "LabelSmallRun"})),
}


def _answer_by_hand(study) -> list[Comparison]:
    """Four participants answer by RANK and UPSETS; returns the comparisons as written
    down here (labels from the conditions, winner by the rule), not as the code reads them."""
    expected = []
    for k in range(4):
        participant = participant_start(study=study)
        upsets = {pair for who, pair in UPSETS if who == k}
        for t in trials_of(participant):
            a, b = t.stimulus.condition.label, t.partner.condition.label
            better, worse = sorted((a, b), key=RANK.__getitem__)
            upset = frozenset({a, b}) in upsets
            upsets.discard(frozenset({a, b}))
            winner = worse if upset else better
            side = t.fake_side if winner == a else (RIGHT if t.fake_side == LEFT else LEFT)
            trial_answer(participant=participant, position=t.position, answer=side, rt_ms=600)
            expected.append(Comparison(str(participant.pk), a, b, winner))
    return expected


def test_the_analysis_gives_the_bradley_terry_fit_of_the_hand_made_preferences(study, tmp_path):
    expected = _answer_by_hand(study)
    result = preference_analysis(study=study)
    fit = result["bradley_terry"]
    reference = bradley_terry(expected, confidence=0.95)
    assert result["error"] == "" and result["n_judgements"] == 24
    assert [i["item"] for i in fit["items"]] == [i["item"] for i in reference["items"]]
    assert [i["item"] for i in fit["items"]] == list(RANK)  # the upsets leave the order
    for got, want in zip(fit["items"], reference["items"], strict=True):
        assert got["score"] == pytest.approx(want["score"], abs=1e-9)
        assert got["ci"] == pytest.approx(want["ci"], abs=1e-9)
        assert (got["wins"], got["comparisons"]) == (want["wins"], want["comparisons"])
    assert sum(i["comparisons"] for i in fit["items"]) == 48  # each judgement counts twice
    wins = Counter(c.winner for c in expected)
    assert {i["item"]: i["wins"] for i in fit["items"]} == dict(wins)
    assert dict(wins) == {"LabelWarmRun": 13, "LabelCoolRun": 9, "LabelSmallRun": 2}
    for cell in result["run_pairs"]:
        assert cell["comparisons"] == 8  # balanced: 2 per participant per run pair
        pair = {cell["item_a"], cell["item_b"]}
        won_a = sum(
            1 for c in expected if {c.item_a, c.item_b} == pair and c.winner == cell["item_a"]
        )
        assert cell["wins_a"] == won_a and cell["wins_b"] == 8 - won_a


def test_the_exported_judgements_reread_by_analyse_preferences_give_the_same_scores(
    client, study, tmp_path
):
    _answer_by_hand(study)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    exported = client.get(reverse("export_preference_judgements_csv", args=[study.pk]))
    assert exported.status_code == 200
    text = exported.content.decode()
    assert text.splitlines()[0].startswith("participant,item_a,item_b,winner,")
    path = tmp_path / "preferences.csv"
    path.write_text(text)
    out = io.StringIO()
    call_command("analyse_preferences", str(path), "--format", "json", stdout=out)
    command = json.loads(out.getvalue())
    scores = json.loads(
        client.get(reverse("export_preference_scores_json", args=[study.pk])).content
    )["bradley_terry"]
    assert [i["item"] for i in command["items"]] == [i["item"] for i in scores["items"]]
    for a, b in zip(command["items"], scores["items"], strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-9)
        assert a["ci"] == pytest.approx(b["ci"], abs=1e-9)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 24
    for row in rows:
        assert row["winner"] == (row["left"] if row["chosen_side"] == "left" else row["right"])
    table = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    reverse("export_preference_scores_csv", args=[study.pk])
                ).content.decode()
            )
        )
    )
    assert [r["item"] for r in table] == list(RANK)
    assert float(table[0]["score"]) == pytest.approx(scores["items"][0]["score"], abs=1e-6)
    tex = client.get(reverse("export_preference_scores_tex", args=[study.pk])).content.decode()
    body = [line for line in tex.splitlines() if line.endswith("\\\\") and line[0].isdigit()]
    assert [line.split(" & ")[1] for line in body] == list(RANK)  # highest score first
    first = scores["items"][0]
    assert body[0].split(" & ")[2] == f"{first['score']:.3f}".replace("-", "$-$")
    assert f"& {first['wins']} & {first['comparisons']} \\\\" in body[0]
    assert "\\begin{tabular}{rlrrcrr}" in tex and "95\\,\\% Wald interval" in tex


def test_the_analysis_page_names_the_protocol_and_its_statistic_and_leaves_out_d_prime(
    client, study
):
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    url = reverse("study_analysis", args=[study.pk])
    empty = client.get(url).content.decode()
    assert "No scores yet: there are no comparisons" in empty
    _answer_by_hand(study)
    html = client.get(url).content.decode()
    assert "Model vs model preference, 2AFC" in html and "Bradley–Terry score per run" in html
    assert "95 % interval" in html and "LabelWarmRun" in html
    assert "d′" in html and "are left out" in html  # named as left out, with the reason
    assert "mixed-effects models: the numbers" not in html.lower()
    for name in (
        "export_preference_judgements_csv",
        "export_preference_scores_json",
        "export_preference_scores_tex",
        "export_judgements_csv",
        "study_bundle",
    ):
        assert reverse(name, args=[study.pk]) in html
    condition = study.conditions.first().pk
    for url in (  # no fooling rates to show
        reverse("study_images", args=[study.pk]),
        reverse("export_images_csv", args=[study.pk]),
        reverse("study_figure", args=[study.pk, f"images-c{condition}", "svg"]),
    ):
        assert client.get(url).status_code == 404, url
    preview = client.get(reverse("study_preview", args=[study.pk])).content.decode()
    assert "Which looks more natural?" in preview
    for name in (
        "study_detail",
        "study_monitor",
        "study_participants",
        "study_stimuli",
        "study_display_report",
        "study_analysis_json",
    ):
        assert client.get(reverse(name, args=[study.pk])).status_code == 200, name
    detail = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "each pair of runs equally often" in detail
    bundle = client.get(reverse("study_bundle", args=[study.pk]))
    assert bundle.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(bundle.streaming_content))) as zf:
        names = zf.namelist()
        scores = json.loads(zf.read(f"study-{study.pk}/tables/bradley-terry.json"))
    assert f"study-{study.pk}/data/preferences.csv" in names
    assert f"study-{study.pk}/tables/bradley-terry.tex" in names
    assert [i["item"] for i in scores["bradley_terry"]["items"]] == list(RANK)


def test_unestimable_preferences_are_named_not_scored(study):
    """Every participant prefers the first-ranked run every time: it never loses, so the
    maximum-likelihood scores do not exist and the analysis says why."""
    for _ in range(2):
        participant = participant_start(study=study)
        for t in trials_of(participant):
            a, b = t.stimulus.condition.label, t.partner.condition.label
            winner = min((a, b), key=RANK.__getitem__)
            side = t.fake_side if winner == a else (RIGHT if t.fake_side == LEFT else LEFT)
            trial_answer(participant=participant, position=t.position, answer=side, rt_ms=600)
    result = preference_analysis(study=study)
    assert result["bradley_terry"] is None
    assert "'LabelWarmRun' never lost" in result["error"]


def test_the_study_page_and_the_consent_say_what_a_preference_study_asks(researcher_client, study):
    Study.objects.filter(pk=study.pk).update(owner=researcher_client.session["_auth_user_id"])
    html = researcher_client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Which looks more natural?" in html and "Real photograph, or colourised" not in html
    assert '<bdi lang="en">Left</bdi> (keys <kbd>F</kbd>, <kbd>←</kbd>)' in html
    assert "Bradley–Terry score per run" in html and "equivalence to chance" not in html
    consent = Client().get(reverse("study_landing", args=[study.slug])).content.decode()
    assert "pairs of images, both colourised by AI, and choose in each pair" in consent
    assert "whether it is a real photograph" not in consent


def test_german_participants_are_asked_in_german(runs):
    study = preference_study(runs[:2], language="de")
    client = Client()
    participant = start(client, study)
    html = client.get(reverse("participant_page", args=[participant.public_id])).content.decode()
    assert "Welches wirkt natürlicher?" in html
    assert "Es gibt keine richtige oder falsche Antwort." in html


def test_the_first_run_is_compared_with_each_other_run(runs):
    study = preference_study(runs[:2], images_per_participant=4)
    participant = participant_start(study=study)
    pairs = {run_pair(t) for t in trials_of(participant)}
    ids = sorted(study.conditions.values_list("pk", flat=True))
    assert pairs == set(itertools.combinations(ids, 2))


# --------------------------------------------------------------------------------------------
# Adaptive pairs
# --------------------------------------------------------------------------------------------


def test_run_pair_uncertainty_is_the_se_of_the_score_difference_of_survey_preference():
    wins = {(1, 2): 7, (2, 1): 3, (2, 3): 2, (3, 2): 1, (1, 3): 1, (3, 1): 1}
    got = run_pair_uncertainty([1, 2, 3], wins)
    comparisons = [
        Comparison("", str(w), str(lo), str(w)) for (w, lo), n in wins.items() for _ in range(n)
    ]
    fit = bradley_terry(comparisons)
    items = fit["covariance"]["items"]
    cov = fit["covariance"]["matrix"]
    for (a, b), se in got.items():
        i, j = items.index(str(a)), items.index(str(b))
        assert se == pytest.approx((cov[i][i] + cov[j][j] - 2 * cov[i][j]) ** 0.5, rel=1e-9)
    assert max(got, key=got.get) == (1, 3)  # compared least: 2 times
    # Not linked by any chain of comparisons: infinitely uncertain; before any finite
    # estimate exists, the information at equal scores (p = 1/2): Var(d) = 4 / n for a pair.
    apart = run_pair_uncertainty([1, 2, 3, 4], {(1, 2): 4, (3, 4): 1})
    assert apart[(1, 3)] == float("inf") and apart[(2, 4)] == float("inf")
    assert apart[(1, 2)] == pytest.approx(1.0) and apart[(3, 4)] == pytest.approx(2.0)


def test_an_adaptive_study_rechooses_the_pair_two_on_where_the_ranking_is_least_certain(
    client, runs
):
    study = preference_study(runs, preference_adaptive=True)
    first = participant_start(study=study)
    for t in trials_of(first):
        # The first run's image is chosen, but in every third pair the other one.
        side = t.fake_side if t.position % 3 else (RIGHT if t.fake_side == LEFT else LEFT)
        trial_answer(participant=first, position=t.position, answer=side, rt_ms=500)
    participant = start(client, study)
    planned = trials_of(participant)
    for position in range(1, 5):
        post(client, participant, position, LEFT, **JSON)
        trials = trials_of(participant)
        assert [run_pair(t) for t in trials[: position + 1]] == [
            run_pair(t) for t in planned[: position + 1]
        ]  # the pair shown or preloaded never changes
        if position + 2 <= len(trials):
            wins = study_wins(study, pilot=False)
            se = run_pair_uncertainty(sorted(c.pk for c in study.conditions.all()), wins)
            chosen = run_pair(trials[position + 1])
            assert se[chosen] == pytest.approx(max(se.values())), (chosen, se)
            image = client.get(
                reverse(
                    "participant_pair_image",
                    args=[participant.public_id, position + 2, trials[position + 1].fake_side],
                )
            )
            with default_storage.open(trials[position + 1].stimulus.file, "rb") as f:
                stored = Image.open(f).convert("RGB").tobytes()
            assert Image.open(io.BytesIO(image.content)).convert("RGB").tobytes() == stored
        planned = trials
        scenes = [t.stimulus.scene_id for t in trials]
        assert len(set(scenes)) == len(scenes)  # each photograph still once
    total = sum(Stimulus.objects.filter(study=study).values_list("exposures", flat=True))
    assert total == 2 * 6 * 2  # two participants, six pairs, two images each


# --------------------------------------------------------------------------------------------
# Instructed-response checks ("For this pair, please answer Left"), for Prolific's policy
# --------------------------------------------------------------------------------------------


@pytest.fixture
def checked(runs):
    return preference_study(runs, images_per_participant=6, instructed_checks=2)


def test_reserved_photographs_give_each_participant_two_check_pairs_never_first(checked):
    reserved = Stimulus.objects.filter(study=checked, role=Stimulus.Role.INSTRUCTED)
    by_scene = Counter(reserved.values_list("scene_id", flat=True))
    assert len(by_scene) == 2 and set(by_scene.values()) == {3}  # every run's image of each
    main_scenes = set(
        Stimulus.objects.filter(study=checked, role="main").values_list("scene_id", flat=True)
    )
    assert not main_scenes & set(by_scene)
    asked = Counter()
    for seed in range(12):
        participant = participant_start(study=checked, rng=random.Random(seed))
        trials = trials_of(participant)
        assert len(trials) == checked.trials_per_participant == 8
        kinds = [t.kind for t in trials]
        assert kinds[0] == "main" and kinds.count("instructed") == 2
        checks = [t for t in trials if t.kind == "instructed"]
        assert {t.stimulus.scene_id for t in checks} == set(by_scene)
        for t in checks:
            assert t.stimulus.scene_id == t.partner.scene_id
            assert t.stimulus.condition_id < t.partner.condition_id  # two different runs
            assert (t.stimulus.width, t.stimulus.height) == (t.partner.width, t.partner.height)
            asked[t.fake_side, instructed_side(t)] += 1
        for t in trials:
            assert (t.instructed_answer is not None) == (t.kind == "instructed")
        main_pairs = Counter(run_pair(t) for t in trials if t.kind == "main")
        assert sorted(main_pairs.values()) == [2, 2, 2]  # the main pairs keep their balance
    # The side asked for does not follow the first run's side: every combination occurs.
    assert set(asked) == {(LEFT, LEFT), (LEFT, RIGHT), (RIGHT, LEFT), (RIGHT, RIGHT)}
    # The study's pair counts (which decide later participants' pairs) leave checks out.
    assert sum(run_pair_counts(checked).values()) == 12 * 6


def test_the_flow_asks_for_a_side_stores_it_and_keeps_the_checks_out_of_the_scores(client, checked):
    participant = start(client, checked, PROLIFIC_PID=f"{0xFACE:024x}")
    page_url = reverse("participant_page", args=[participant.public_id])
    intro = client.get(page_url).content.decode()
    assert "A few pairs come with an instruction that says which side to choose" in intro
    assert "There are 8 pairs in all." in intro
    trials = trials_of(participant)
    first_check = True
    for i, t in enumerate(trials):
        page = client.get(page_url, {"begin": "1"})  # the no-script page of this pair
        html = page.content.decode()
        if t.kind == "instructed":
            assert PAIR_INSTRUCTION[instructed_side(t)] in html
            assert page.context["trial"].instruction == PAIR_INSTRUCTION[instructed_side(t)]
            # The first check answered as asked, the second otherwise.
            side = instructed_side(t) if first_check else other_side(instructed_side(t))
            first_check = False
        else:
            assert "For this pair" not in html
            side = t.fake_side  # the first run's image, always
        reply = post(client, participant, t.position, side, **JSON).json()
        assert reply["stored"] == {"position": t.position, "answer": side}
        if i + 1 < len(trials):
            nxt = trials[i + 1]
            expected = PAIR_INSTRUCTION[instructed_side(nxt)] if nxt.kind == "instructed" else ""
            assert reply["next"]["instruction"] == expected
    row = next(r for r in participant_rows(study=checked) if r.prolific_pid)
    assert (row.instructed_passed, row.instructed_failed) == (1, 1)
    assert row.status == "completed" and approval(row) == ("approve", "completed")
    assert preference_analysis(study=checked)["n_judgements"] == 6  # the checks never count


def test_two_failed_pair_checks_may_be_rejected_and_exclude_only_when_chosen(runs):
    for exclude in (False, True):
        study = preference_study(runs, instructed_checks=2, instructed_checks_exclude=exclude)
        people = []
        for n, failures in enumerate((0, 1, 2)):
            client = Client()
            participant = start(client, study, PROLIFIC_PID=f"{n + 0xBEE0:024x}")
            failed = 0
            for t in trials_of(participant):
                side = t.fake_side
                if t.kind == "instructed":
                    asked = instructed_side(t)
                    side = asked if failed >= failures else other_side(asked)
                    failed += side != asked
                post(client, participant, t.position, side, **JSON)
            people.append(participant)
        rows = {r.public_id: r for r in participant_rows(study=study)}
        assert [rows[p.public_id].instructed_failed for p in people] == [0, 1, 2]
        assert [approval(rows[p.public_id])[0] for p in people] == [
            "approve",
            "approve",
            "may_reject",
        ]
        _, why = approval(rows[people[1].public_id])  # one failed check: approved, and why
        if exclude:
            assert "excluded from the analysis for failing 1 instructed-response check" in why
            assert "colour-inverted" not in why and "performance check" not in why
        else:
            assert why == "completed"
        counted = preference_analysis(study=study)["n_judgements"]
        assert counted == (6 if exclude else 18), exclude  # excluding: the one who passed both


def test_an_adaptive_study_leaves_the_check_pairs_as_planned(client, runs):
    study = preference_study(runs, preference_adaptive=True, instructed_checks=2)
    first = participant_start(study=study)
    for t in trials_of(first):
        side = t.fake_side if t.position % 3 else other_side(t.fake_side)
        trial_answer(participant=first, position=t.position, answer=side, rt_ms=500)

    def checks(participant):
        return {
            t.position: (t.stimulus_id, t.partner_id, t.fake_side, t.instructed_answer)
            for t in trials_of(participant)
            if t.kind == "instructed"
        }

    participant = start(client, study)
    planned = checks(participant)
    assert len(planned) == 2
    for t in trials_of(participant):
        post(client, participant, t.position, LEFT, **JSON)
    assert checks(participant) == planned
    scenes = [t.stimulus.scene_id for t in trials_of(participant)]
    assert len(set(scenes)) == len(scenes) == 8  # no photograph twice, the checks' included


def test_german_participants_and_the_preview_are_told_the_side_to_choose(runs, researcher_client):
    study = preference_study(runs[:2], language="de", instructed_checks=2)
    client = Client()
    participant = start(client, study)
    page_url = reverse("participant_page", args=[participant.public_id])
    assert "Bei einigen Paaren steht eine Anweisung" in client.get(page_url).content.decode()
    for t in trials_of(participant):
        if t.kind == "instructed":
            html = client.get(page_url, {"begin": "1"}).content.decode()
            label = "Links" if instructed_side(t) == LEFT else "Rechts"
            assert f"Bitte antworten Sie bei diesem Paar mit {label}." in html
        post(client, participant, t.position, LEFT, **JSON)
    english = preference_study(runs, instructed_checks=2)
    Study.objects.filter(pk=english.pk).update(owner=researcher_client.session["_auth_user_id"])
    preview = researcher_client.get(reverse("study_preview", args=[english.pk]))
    script = preview.content.decode().split('id="preview-trials" type="application/json">')[1]
    trials = json.loads(script.split("</script>")[0])
    instructed = [t for t in trials if t["kind"] == "instructed"]
    assert len(trials) == 8 and len(instructed) == 2
    assert all(t["instruction"] in PAIR_INSTRUCTION.values() for t in instructed)
    assert all(t["instruction"] == "" for t in trials if t["kind"] != "instructed")
    # The German study's preview says it in German, as its participants read it.
    Study.objects.filter(pk=study.pk).update(owner=researcher_client.session["_auth_user_id"])
    german = researcher_client.get(reverse("study_preview", args=[study.pk])).content.decode()
    script = german.split('id="preview-trials" type="application/json">')[1]
    said = [t["instruction"] for t in json.loads(script.split("</script>")[0]) if t["instruction"]]
    assert len(said) == 2
    assert all(
        re.fullmatch(r"Bitte antworten Sie bei diesem Paar mit (Links|Rechts)\.", t) for t in said
    )


def test_the_form_takes_pair_checks_and_counts_their_photographs(researcher_client, runs):
    ada = researcher_client.session["_auth_user_id"]
    ModelRun.objects.filter(pk__in=[r.pk for r in runs]).update(owner_id=ada)
    Dataset.objects.update(owner_id=ada)
    url = reverse("study_new")
    many = researcher_client.post(url, _form(runs, images_per_participant=11, instructed_checks=2))
    assert (
        "These runs colourised 12 test images in common; 11 pairs per participant, each of a "
        "different photograph, plus 2 instructed checks need 13"
    ) in many.content.decode()
    attention = researcher_client.post(url, _form(runs, attention_checks=1)).content.decode()
    assert "A preference study has no attention checks" in attention
    assert not Study.objects.exists()
    made = researcher_client.post(url, _form(runs, instructed_checks=2))
    assert made.status_code == 302
    assert Study.objects.get().instructed_checks == 2


def test_the_exported_preferences_hold_the_main_pairs_only(researcher_client, checked):
    Study.objects.filter(pk=checked.pk).update(owner=researcher_client.session["_auth_user_id"])
    client = Client()
    participant = start(client, checked)
    for t in trials_of(participant):
        post(client, participant, t.position, instructed_side(t) if t.kind != "main" else LEFT)
    download = researcher_client.get(
        reverse("export_preference_judgements_csv", args=[checked.pk]), {"unfinished": "1"}
    )
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    main_positions = {t.position for t in trials_of(participant) if t.kind == "main"}
    assert {int(r["position"]) for r in rows} == main_positions


def test_a_participants_answers_page_names_the_runs_by_side_and_the_one_preferred(client, study):
    """Not the single-image protocol's truth and answer (a pair has neither): the runs on
    the left and the right, the side chosen and the run preferred, as written down here."""
    expected = _answer_by_hand(study)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    number = int(expected[0].participant)
    page = client.get(reverse("study_participant", args=[study.pk, number]))
    assert page.status_code == 200
    trials = page.context["trials"]
    mine = [c for c in expected if c.participant == str(number)]
    assert [t["preferred"] for t in trials] == [c.winner for c in mine]
    for t, c in zip(trials, mine, strict=True):
        assert {t["left"], t["right"]} == {c.item_a, c.item_b}
        assert t[t["side"]] == c.winner  # the run on the chosen side is the one preferred
    html = page.content.decode()
    assert '<th scope="col">Preferred</th>' in html and "Image is" not in html
