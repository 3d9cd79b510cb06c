"""The dashboard leads with the mixed models (issue 14): verdicts on chance with the study's
own δ and α, model problems in words, small-sample caveats; the models are fitted once per set
of counted judgements (a new answer is a new fit) and a GET writes nothing; the per-image page
is in the model's order and its CSV has one row per image."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from studyplatform.researchers import researcher_create
from survey.analysis import exports
from survey.analysis.image_realism import IMAGE_CSV_COLUMNS
from survey.analysis.mixed import MixedModels, study_mixed_models
from survey.analysis.model_display import model_board, model_status, signed
from survey.analysis.results import study_analysis
from survey.inference import analyse_rows
from survey.models import Study, Trial
from tests.survey.analysis_helpers import half_fooled, make_study, take_part

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")


@pytest.fixture
def ada():
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def researcher(client, ada):
    client.force_login(ada)
    return client


@pytest.fixture
def at_chance(tmp_path, ada):
    """20 participants (10 per condition) × 4 judgements, each fooled on exactly half."""
    study = make_study(tmp_path, owner=ada)
    rule = half_fooled()
    for i in range(20):
        take_part(study, i, rule=rule)
    return study


def _page(client, study, name="study_analysis") -> str:
    response = client.get(reverse(name, args=[study.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_verdict_follows_the_studys_own_margin(researcher, at_chance):
    """The same judgements at 0.5: inconclusive within ±0.05 (80 judgements cannot show
    that), equivalent within ±0.2; the page names the study's δ and α."""
    html = _page(researcher, at_chance)
    assert html.index("Mixed-effects models") < html.index("The paper's pooled analysis")
    assert "δ = ±0.05" in html and "α = 0.05" in html
    assert html.count("inconclusive</strong>") == 2
    assert "equivalent to chance" not in html

    Study.objects.filter(pk=at_chance.pk).update(equivalence_margin=0.2, alpha=0.1)
    at_chance.refresh_from_db()
    html = _page(researcher, at_chance)
    assert "δ = ±0.2" in html and "α = 0.1" in html
    assert html.count("equivalent to chance within ±20 percentage points</strong>") == 2
    assert "80 % interval" in html  # the mixed-model TOST at 1 − 2α


def test_the_page_shows_every_model_number_beside_the_pooled_chi2(researcher, at_chance):
    html = _page(researcher, at_chance)
    models = study_mixed_models(study=at_chance)
    assert models.computed
    for c in models.result.conditions:
        g, s = c.glmm, c.sdt
        assert f"{signed(g.intercept)} ± {g.intercept_se:.3f}" in html
        assert f"{100 * g.fooling_rate:.1f} %" in html
        assert f"{g.participant_sd:.3f}" in html and f"{g.image_sd:.3f}" in html
        d, (low, high) = s.d_prime, s.d_prime_ci
        assert f"{signed(d)} [{signed(low)}, {signed(high)}]" in html
        assert signed(s.criterion) in html
        assert "TOST p = " in html and escape(c.verdict_reason) in html
    (k,) = models.result.contrasts
    assert signed(k.estimate) in html and "Holm p" in html
    assert "Fake error rate".lower() in html.lower() and "real error rate" in html
    assert "the paper&#x27;s pooled χ², which ignores clustering" in html
    assert html.index("Holm p") < html.index("χ² Pearson, no continuity correction (df = 1)")


def test_a_signed_number_never_reads_minus_zero():
    assert [signed(x) for x in (-0.0001, 0.0, -0.0006, 0.1234)] == [
        "+0.000",
        "+0.000",
        "-0.001",
        "+0.123",
    ]


def test_a_singular_fit_says_so_in_words(researcher, at_chance):
    """Everybody fooled on exactly half: no participant differs, the participant SD is
    estimated as zero, and the page says "singular fit" beside the numbers."""
    models = study_mixed_models(study=at_chance)
    singular = [c for c in models.result.conditions if c.glmm.singular]
    assert singular, "the pattern was meant to make the fit singular"
    html = _page(researcher, at_chance)
    assert "singular fit: a random-effect SD was estimated as (almost) zero" in html
    assert 'model-status model-problem"' in html


def test_a_model_that_did_not_converge_says_so_in_words(at_chance):
    """Code compared with itself: a result whose model did not converge (set here) is shown
    with the words, never as a plain number."""
    analysis = study_analysis(study=at_chance)
    models = study_mixed_models(study=at_chance)
    first = models.result.conditions[0]
    first.glmm.converged = False
    first.glmm.warnings = ["the optimiser stopped before converging (test)"]
    board = model_board(models, analysis)
    statuses = {g[0]: g[2][-1].statuses for g in board.groups if g[0] != "counts"}
    index = board.conditions.index(first.condition)
    status = statuses["fooling"][index]
    assert not status.ok and status.text == "did not converge: its estimates are unreliable"
    assert status.details == ["the optimiser stopped before converging (test)"]
    assert model_status(fitted=False, converged=False, singular=False, warnings=["x"]).text == (
        "could not be fitted"
    )


def test_few_participants_keep_their_caveat(researcher, tmp_path, ada):
    study = make_study(tmp_path, owner=ada)
    for i in range(4):
        take_part(study, i)  # two per condition
    html = _page(researcher, study)
    assert "only 2 participants, fewer than 5: too few to mean anything" in html
    start = html.index('id="models"')
    assert "too few to mean anything" in html[start : html.index("</section>", start)]


def test_models_are_fitted_once_per_set_of_judgements_and_a_get_writes_nothing(
    researcher, at_chance
):
    first = study_mixed_models(study=at_chance)
    again = study_mixed_models(study=at_chance)
    assert again.fit_seconds is None  # from the cache
    assert to_numbers(again) == to_numbers(first)
    with CaptureQueriesContext(connection) as queries:
        for name in ("study_analysis", "study_images", "export_images_csv", "export_tables_json"):
            assert researcher.get(reverse(name, args=[at_chance.pk])).status_code == 200
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]

    take_part(at_chance, 20, rule=lambda i, t: "real")  # a new answer: a new fit
    fresh = study_mixed_models(study=at_chance)
    assert fresh.fit_seconds is not None
    assert sum(c.n_judgements for c in fresh.result.conditions) == 84


def to_numbers(models: MixedModels):
    return [(c.glmm.intercept, c.glmm.intercept_se, c.verdict) for c in models.result.conditions]


def test_above_the_size_limit_the_page_names_the_command(researcher, at_chance, monkeypatch):
    monkeypatch.setattr(exports, "MIXED_MODEL_LIMIT", 5)
    html = _page(researcher, at_chance)
    assert "not computed here: more than 5 judgements" in html
    assert f"python manage.py analyse_judgements study-{at_chance.pk}-judgements.csv" in html
    assert "Mixed model not computed here" in _page(researcher, at_chance, "study_images")


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_per_image_page_is_in_the_models_order(researcher, at_chance):
    response = researcher.get(reverse("study_images", args=[at_chance.pk]))
    html = response.content.decode()
    assert reverse("export_images_csv", args=[at_chance.pk]) in html
    for section in response.context["sections"]:
        for _, _, cards in section["groups"]:
            judged = [card for card in cards if card["image"].n]
            assert judged and all(card["model"] is not None for card in judged)
            realism = [card["model"].p_real for card in judged]
            assert realism == sorted(realism, reverse=True)
            assert cards[: len(judged)] == judged  # images nobody judged come last
            for card in judged:
                assert f"{card['p_real']} judged Real</span> (model, " in html
    # Every image alike (the fit is singular): the page says so beside the realism.
    assert "The condition&#x27;s model: singular fit" in html


def test_the_per_image_csv_has_one_row_per_image(researcher, at_chance):
    response = researcher.get(reverse("export_images_csv", args=[at_chance.pk]))
    assert response["Content-Disposition"] == (
        f'attachment; filename="study-{at_chance.pk}-images.csv"'
    )
    rows = _csv(response.content.decode())
    assert tuple(rows[0]) == IMAGE_CSV_COLUMNS
    main = at_chance.stimuli.filter(role="main")
    assert sorted(int(r["stimulus"]) for r in rows) == sorted(main.values_list("pk", flat=True))

    # The pooled numbers, from the trials the test answered.
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in Trial.objects.filter(participant__study=at_chance, kind="main").select_related(
        "stimulus"
    ):
        said_real = t.answer == "real"
        tally[t.stimulus_id][0] += 1
        tally[t.stimulus_id][1] += said_real != t.stimulus.is_real
        tally[t.stimulus_id][2] += said_real
    # The model's, from survey.inference on the long-format rows (the engine compared with
    # its own use by the export).
    result = analyse_rows(
        exports.inference_rows(study=at_chance), margin=0.05, alpha=0.05, confidence=0.95
    )
    model = {(c.condition, i.image, i.truth): i for c in result.conditions for i in c.images}
    for r in rows:
        n, fooled, said_real = tally[int(r["stimulus"])]
        assert (int(r["n"]), int(r["fooled"])) == (n, fooled)
        if not n:
            assert r["model_p_real"] == "" and r["model_note"] == "not judged yet"
            continue
        assert float(r["fooling_rate"]) == pytest.approx(fooled / n)
        assert float(r["soft_label"]) == pytest.approx(said_real / n)
        image = model[(r["condition"], r["image"], r["truth"])]
        p_real = image.fooling_rate if r["truth"] == "ai" else 1 - image.fooling_rate
        assert float(r["model_p_real"]) == pytest.approx(p_real)
        assert float(r["model_p_real_low"]) <= float(r["model_p_real"])
        assert float(r["model_p_real"]) <= float(r["model_p_real_high"])
        assert float(r["model_effect"]) == pytest.approx(image.effect)
        assert "singular" in r["model_note"] or r["model_note"] == ""
    # Within a condition and truth: most realistic first, ranked from 1.
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if r["model_rank"]:
            groups[(r["condition"], r["truth"])].append(r)
    for group in groups.values():
        assert [int(r["model_rank"]) for r in group] == list(range(1, len(group) + 1))
        realism = [float(r["model_p_real"]) for r in group]
        assert realism == sorted(realism, reverse=True)


def test_within_subjects_the_shared_photographs_have_the_joint_models_realism(
    researcher, tmp_path, ada
):
    study = make_study(tmp_path, owner=ada, design=Study.Design.WITHIN)
    for i in range(8):
        take_part(study, i)
    response = researcher.get(reverse("study_images", args=[study.pk]))
    shared = response.context["sections"][-1]
    assert shared["title"] == "Real photographs (shared)"
    cards = [card for _, _, group in shared["groups"] for card in group if card["image"].n]
    assert cards and all(card["model"] is not None for card in cards)
    models = study_mixed_models(study=study)
    expected = {i.image: 1 - i.fooling_rate for i in models.result.joint.shared_images}
    for card in cards:
        assert card["model"].p_real == pytest.approx(expected[str(card["image"].scene_id)])
    rows = _csv(researcher.get(reverse("export_images_csv", args=[study.pk])).content.decode())
    real = [r for r in rows if r["condition_id"] == "" and int(r["n"])]
    assert real and all(r["truth"] == "real" and r["model_p_real"] for r in real)


def test_a_condition_without_counted_judgements_is_named_beside_the_models(tmp_path, ada):
    """Seen by a new user: with one participant so far, the other condition was simply
    missing from the mixed models, without a word."""
    study = make_study(tmp_path, owner=ada)
    take_part(study, 0)
    analysis = study_analysis(study=study)
    board = model_board(study_mixed_models(study=study), analysis)
    assert board.computed, board.reason
    (missing,) = [c.label for c in analysis.conditions if c.label not in board.conditions]
    assert f"{missing}: no model, none of its images has a counted judgement yet." in board.notes
