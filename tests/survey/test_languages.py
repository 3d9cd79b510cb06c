"""A study speaks its own language to its participants: every fixed text of their pages
(consent, instructions, trials, feedback, completion, the messages and error pages) follows
``Study.language``, never the browser's; the researcher may replace the question and the
answers' labels and keys; right-to-left texts keep their direction."""

from __future__ import annotations

import re
import sys

import pytest
from django.db import OperationalError
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from studyplatform.researchers import researcher_create
from studyplatform.views import server_error
from survey.models import Stimulus, Study, Trial
from survey.services.studies import study_close
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
ARABIC_CONSENT = "مرحبا بكم في هذه الدراسة. ستشاهدون صورا وتجيبون عن سؤال واحد لكل صورة."


@pytest.fixture
def run(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes
    return uploaded_run(dataset, tmp_path, name="warm")


def _html(response) -> str:
    return response.content.decode()


def _start(client, study):
    response = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    assert response.status_code == 302, response.content
    return response["Location"]


def _take_whole_study(client, study) -> dict[str, object]:
    """Every page and answer a participant meets, by kind."""
    seen: dict[str, object] = {}
    landing = reverse("study_landing", args=[study.slug])
    seen["landing"] = client.get(landing)
    seen["refused"] = client.post(landing, {})
    page_url = _start(client, study)
    public_id = page_url.split("/")[2]
    seen["instructions"] = client.get(page_url)
    seen["trial"] = client.get(page_url, {"begin": "1"})
    answers = []
    for trial in Trial.objects.filter(participant__public_id=public_id).order_by("position"):
        answers.append(
            client.post(
                reverse("participant_answer", args=[public_id]),
                {"position": trial.position, "answer": "real", "rt_ms": 700},
                **JSON,
            )
        )
    seen["answers"] = answers
    seen["done"] = client.get(reverse("participant_done", args=[public_id]))
    return seen


def test_a_german_study_speaks_german_from_consent_to_completion(client, run):
    study = open_study(
        [run], language="de", images_per_participant=4, practice_trials=2, exposure_ms=1500
    )
    # The browser asks for French: the study's language wins.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    seen = _take_whole_study(client, study)
    landing = _html(seen["landing"])
    assert '<html lang="de" dir="ltr">' in landing
    assert "Bevor Sie beginnen" in landing and "Studie starten" in landing
    assert "etwa 5 Minuten" in landing  # the default consent, its plural chosen
    assert "Start the study" not in landing and "Before you start" not in landing
    assert seen["refused"].status_code == 400
    assert "Bitte setzen Sie das Häkchen" in _html(seen["refused"])
    instructions = _html(seen["instructions"])
    assert "Anleitung" in instructions and "Beginnen" in instructions
    assert "Antworten Sie mit den Schaltflächen unter dem Bild." in instructions
    assert "Sie können auch <kbd>E</kbd> für „Echt“ und <kbd>K</kbd> für „KI“ drücken." in (
        instructions
    )
    assert "Die ersten 2 Bilder sind Übungen" in instructions
    assert "Jedes Bild wird 1500 ms lang gezeigt" in instructions
    assert "Es gibt insgesamt 6 Bilder." in instructions
    trial = _html(seen["trial"])
    assert "Echtes Foto oder von KI eingefärbt?" in trial
    assert re.search(r'>Übung · </span>Bild <span data-f="number">1</span> von', trial)
    assert '<bdi>Echt</bdi> <kbd aria-hidden="true">E</kbd>' in trial
    assert '<bdi>KI</bdi> <kbd aria-hidden="true">K</kbd>' in trial
    assert 'data-real-key="E"' in trial and 'data-ai-key="K"' in trial
    assert "Teilnahme beenden" in trial and "Weiter" in trial and "Noch einmal versuchen" in trial
    for english in ("Real photograph", "Image ", "Practice", "Stop taking part", ">Real <"):
        assert english not in trial, english
    practice = [a.json()["feedback"] for a in seen["answers"][:2]]
    assert {f["text"] for f in practice} <= {
        "Richtig: Das Bild war ein echtes Foto.",
        "Falsch: Das Bild wurde von einer KI eingefärbt.",
    }
    done = _html(seen["done"])
    assert "Vielen Dank!" in done and "Ihr Abschlusscode:" in done
    assert study.completion_code in done


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", ["Avant de commencer", "Commencer l'étude", "Consignes", "Image 1 sur 6"]),
        ("es", ["Antes de empezar", "Empezar el estudio", "Instrucciones", "Imagen 1 de 6"]),
        ("en", ["Before you start", "Start the study", "Instructions", "Image 1 of 6"]),
    ],
)
def test_each_language_has_its_own_pages(client, run, language, words):
    study = open_study([run], language=language, images_per_participant=4, practice_trials=2)
    seen = _take_whole_study(client, study)
    html = "".join(_html(seen[k]) for k in ("landing", "instructions", "trial"))
    text = re.sub(r"<[^>]+>", "", html)
    for word in words:
        assert word in text, word
    assert f'<html lang="{language}" dir="ltr">' in html


def test_messages_and_refusals_are_in_the_study_language(client, run):
    study = open_study([run], language="es", images_per_participant=4)
    landing = reverse("study_landing", args=[study.slug])
    malformed = client.get(landing, {"PROLIFIC_PID": "{{%PROLIFIC_PID%}}"})
    assert malformed.status_code == 400
    assert "Este enlace está incompleto" in _html(malformed)
    assert "no contiene un ID de Prolific válido (PROLIFIC_PID)" in _html(malformed)
    study_close(study=study)
    closed = client.get(landing)
    assert "Este estudio ha terminado" in _html(closed)
    assert '<html lang="es"' in _html(closed)


def test_a_participant_who_stops_reads_it_in_the_study_language(client, run):
    study = open_study([run], language="fr", images_per_participant=4)
    page_url = _start(client, study)
    public_id = page_url.split("/")[2]
    stopped = client.post(reverse("participant_stop", args=[public_id]))
    assert "Vous avez arrêté de participer" in _html(stopped)
    # What happens to the answers, truly: a stopped participant cannot finish.
    assert "restent enregistrées mais sont exclues des résultats principaux" in _html(stopped)


def test_the_language_does_not_leak_into_the_next_request(client, run):
    """The language is the study's for its request only: the researchers' pages (and the
    next study) answer in their own language on the same thread."""
    german = open_study([run], language="de", images_per_participant=4)
    client.get(reverse("study_landing", args=[german.slug]))
    assert translation.get_language() != "de"
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    page = _html(client.get(reverse("studies")))
    assert '<html lang="en' in page


def test_the_researchers_words_replace_the_question_labels_and_keys(client, run):
    study = open_study(
        [run],
        language="en",
        images_per_participant=4,
        question_text="Photo or machine?",
        real_label="Photo",
        ai_label="Machine",
        real_key="p",
        ai_key="m",
    )
    seen = _take_whole_study(client, study)
    instructions = _html(seen["instructions"])
    assert "also press <kbd>P</kbd> for Photo and <kbd>M</kbd> for Machine" in instructions
    assert "whether you think it is Photo or Machine" in instructions
    trial = _html(seen["trial"])
    assert ">Photo or machine?</span>" in trial
    assert '<bdi>Photo</bdi> <kbd aria-hidden="true">P</kbd>' in trial
    assert 'data-real-key="P"' in trial and 'data-ai-key="M"' in trial


def test_the_preview_shows_the_study_language_and_words(client, run):
    researcher = researcher_create(username="ada", password="a-long-Passphrase-1")
    study = open_study(
        [run], owner=researcher, language="de", images_per_participant=4, practice_trials=1
    )
    Study.objects.filter(pk=study.pk).update(real_label="Wirklich", ai_label="Künstlich")
    client.force_login(researcher)
    html = _html(client.get(reverse("study_preview", args=[study.pk])))
    assert '<html lang="de"' in html
    assert "Ich stimme zu: weiter" in html and "Bevor Sie beginnen" in html
    assert '<bdi>Wirklich</bdi> <kbd aria-hidden="true">E</kbd>' in html
    assert '<bdi>Künstlich</bdi> <kbd aria-hidden="true">K</kbd>' in html
    # The practice feedback the preview's script shows, in German.
    assert "Richtig: Das Bild war ein echtes Foto." in html
    # What only the researcher reads stays English, and says so.
    assert 'class="preview-banner" role="note" lang="en" dir="ltr"' in html
    assert "nothing you answer here is recorded" in html


def test_a_right_to_left_consent_text_keeps_its_direction(client, run):
    study = open_study([run], images_per_participant=4, consent_text=ARABIC_CONSENT)
    html = _html(client.get(reverse("study_landing", args=[study.slug])))
    assert f'<div class="study-text" dir="auto"><p>{ARABIC_CONSENT}</p></div>' in html
    assert '<html lang="en" dir="ltr">' in html


def test_a_right_to_left_language_turns_the_page():
    """No right-to-left language is shipped yet; one added to LANGUAGES turns the page."""
    from django.template.loader import render_to_string

    with translation.override("ar"):
        html = render_to_string(
            "survey/participant/message.html",
            {"title": "t", "text": "x"},
            request=RequestFactory().get("/"),
        )
    assert '<html lang="ar" dir="rtl">' in html


def _error_page(request) -> tuple[int, str]:
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        assert sys.exc_info()[0] is OperationalError
        response = server_error(request)
    return response.status_code, response.content.decode()


def test_error_pages_speak_the_study_language_or_the_participants():
    factory = RequestFactory()
    request = factory.get("/p/someone/")
    request.study_language = "fr"  # the study was read before the database went away
    status, html = _error_page(request)
    assert status == 503 and '<html lang="fr"' in html
    assert "Momentanément indisponible" in html and "Réessayer" in html
    # The study could not be read: the browser's choice among the study languages.
    status, html = _error_page(factory.get("/s/slug/", HTTP_ACCEPT_LANGUAGE="de-AT,de;q=0.9"))
    assert "Kurz nicht erreichbar" in html and '<html lang="de"' in html
    # The researchers' pages stay English.
    status, html = _error_page(factory.get("/studies/", HTTP_ACCEPT_LANGUAGE="de"))
    assert "Briefly unavailable" in html
    assert translation.get_language() != "de"


def test_the_leak_proofing_holds_in_german(client, run):
    """A real and an AI trial give the same page, apart from numbers, in German too."""
    study = open_study([run], language="de", images_per_participant=4, attention_checks=1)
    page_url = _start(client, study)
    public_id = page_url.split("/")[2]
    pages = {}
    trials = Trial.objects.filter(participant__public_id=public_id).order_by("position")
    truths = {t.position: (t.stimulus.is_real, t.kind) for t in trials.select_related("stimulus")}
    for position in truths:
        pages[position] = _html(client.get(page_url, {"begin": "1"}))
        client.post(
            reverse("participant_answer", args=[public_id]),
            {"position": position, "answer": "ai", "rt_ms": 500},
            **JSON,
        )

    def skeleton(html: str) -> str:
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        html = re.sub(r'\s*data-preload="[^"]*"', "", html)
        return re.sub(r"\d+", "#", html)

    real = next(p for p, (is_real, kind) in truths.items() if is_real and kind == "main")
    fake = next(p for p, (is_real, kind) in truths.items() if not is_real and kind == "main")
    check = next(p for p, (_, kind) in truths.items() if kind == Stimulus.Role.ATTENTION)
    assert "Echtes Foto oder von KI eingefärbt?" in pages[real]
    assert skeleton(pages[real]) == skeleton(pages[fake]) == skeleton(pages[check])
