"""Nothing a participant's browser receives tells a real photograph from a colourised one,
names its condition or its scene, or marks an attention check: not the pages, not the
JSON, not the image URLs, names, bytes, sizes or headers."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from survey.models import Condition, Stimulus, Trial
from survey.services.stimuli import served_length
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
VOLATILE_HEADERS = {"Date", "Set-Cookie"}


@pytest.fixture(params=[("en", "single"), ("de", "single"), ("en", "hype_time")])
def taken(client, tmp_path, request):
    """A participant who took a whole study (two conditions, practice, an attention
    check), with every response their browser received; in English and in German (the
    translated pages must not depend on the truth either), and in the HYPE_time protocol
    (survey.hype: one image at a time too, its exposure from a staircase, masks after it)."""
    language, protocol = request.param
    dataset = tiny_dataset("syn", per_category=20, size=32)
    warm = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    cool = uploaded_run(dataset, tmp_path, name="secret-run-cool", style="cool")
    study = open_study(
        [warm, cool],
        labels=["LabelWarmCondition", "LabelCoolCondition"],
        images_per_participant=6,
        practice_trials=2,
        attention_checks=1,
        language=language,
        protocol=protocol,
    )
    responses = [client.get(reverse("study_landing", args=[study.slug]))]
    started = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    public_id = started["Location"].split("/")[2]
    responses.append(client.get(started["Location"]))
    trials = list(
        Trial.objects.filter(participant__public_id=public_id)
        .select_related("stimulus")
        .order_by("position")
    )
    pages, answers, images = {}, {}, {}
    for trial in trials:
        pages[trial.position] = client.get(started["Location"], {"begin": "1"})
        images[trial.position] = client.get(
            reverse("participant_image", args=[public_id, trial.position])
        )
        answers[trial.position] = client.post(
            reverse("participant_answer", args=[public_id]),
            {"position": trial.position, "answer": "real", "rt_ms": 600},
            **JSON,
        )
    responses += [*pages.values(), *answers.values()]
    return study, trials, responses, pages, answers, images


def forbidden_strings(study, trials) -> list[str]:
    words = [c.label for c in Condition.objects.filter(study=study)]
    words += [c.run.name for c in Condition.objects.filter(study=study).select_related("run")]
    for trial in trials:
        s = trial.stimulus
        words += [s.file, s.file.split("/")[-1].split(".")[0], s.scene.file, s.scene.original_name]
        words.append(f"scene {s.scene_id}")
    words += ["attention", "is_real", "colour-inverted", "stimulus_id"]
    return words


def test_pages_and_json_name_no_condition_scene_file_or_truth(taken):
    study, trials, responses, *_ = taken
    for response in responses:
        body = response.content.decode()
        for word in forbidden_strings(study, trials):
            assert word not in body, (word, response.request["PATH_INFO"])


def test_image_urls_name_only_the_participants_trial_position(taken):
    study, trials, responses, pages, *_ = taken
    for position, page in pages.items():
        url = page.context["trial"].image_url
        assert re.fullmatch(r"/p/[A-Za-z0-9_-]+/image/\d+", url)
        assert url.endswith(f"/image/{position}")
        for k, mask in enumerate(page.context["trial"].mask_urls or [], start=1):
            assert mask.endswith(f"/mask/{position}/{k}")


def test_every_image_has_the_same_byte_length_and_headers(taken):
    study, trials, _, _, _, images = taken
    lengths = {len(r.content) for r in images.values()}
    assert lengths == {study.stimulus_bytes}
    stored = {default_storage.size(t.stimulus.file) for t in trials}
    assert len(stored) > 1  # the files themselves differ; what is served does not
    header_sets = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k not in VOLATILE_HEADERS))
        for r in images.values()
    }
    assert len(header_sets) == 1
    assert dict(header_sets.pop())["Content-Type"] == "image/png"


def test_serving_changes_no_pixel(taken):
    study, trials, _, _, _, images = taken
    for trial in trials:
        with default_storage.open(trial.stimulus.file, "rb") as f:
            expected = Image.open(f).convert("RGB").tobytes()
        served = Image.open(io.BytesIO(images[trial.position].content))
        assert served.format == "PNG" and served.convert("RGB").tobytes() == expected


def _own_length(png: bytes) -> int:
    """Where a served image's own data end (its IEND chunk), the padding left out: what a
    participant reading the bytes in the browser's developer tools would find."""
    return png.index(b"IEND") + 8


def test_even_the_bytes_before_the_padding_tell_nothing(taken):
    """A stored file's length follows its content (a real photograph's JPEG is larger than
    its colourisation's); zeros after a JPEG's end marker hid nothing. The served image's
    own length depends on its size alone."""
    study, trials, _, _, _, images = taken
    stored = {t.position: default_storage.size(t.stimulus.file) for t in trials}
    assert len(set(stored.values())) > 1
    sizes = {t.position: (t.stimulus.width, t.stimulus.height) for t in trials}
    assert {_own_length(images[p].content) for p in images} == {
        served_length(*sizes[p]) for p in images
    }
    assert len({sizes[p] for p in images}) == 1


def test_answers_to_measured_and_attention_trials_look_the_same(taken):
    study, trials, _, pages, answers, _ = taken
    kinds = {t.position: t.kind for t in trials}
    for position, response in answers.items():
        data = response.json()
        if kinds[position] == Stimulus.Role.PRACTICE:
            assert data["feedback"] is not None
            continue
        assert data["feedback"] is None
        nxt = data["next"]
        if nxt is not None:
            extra = {"exposure_ms", "mask_urls"} if study.hype_time else set()
            assert set(nxt) == {
                "position",
                "total",
                "answered",
                "practice",
                "image_url",
                "instruction",
                *extra,
            }
            assert nxt["practice"] is False and nxt["instruction"] == ""
    # The page of the attention check and of a measured trial differ only in numbers.
    attention = next(p for p, k in kinds.items() if k == Stimulus.Role.ATTENTION)
    measured = next(p for p, k in kinds.items() if k == Stimulus.Role.MAIN and p > 3)

    def skeleton(position):
        html = pages[position].content.decode()
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        # The last trial has no next image to preload, whatever its kind.
        assert ("data-preload=" in html) == (position < len(trials))
        html = re.sub(r'\s*data-preload="[^"]*"', "", html)
        return re.sub(r"\d+", "#", html)

    assert skeleton(attention) == skeleton(measured)


def test_stimulus_files_are_not_served_from_media_or_to_other_participants(client, taken):
    study, trials, *_ = taken
    assert client.get("/media/" + trials[0].stimulus.file).status_code == 404
    researcher_only = reverse("study_stimulus_image", args=[trials[0].stimulus_id])
    assert client.get(researcher_only).status_code == 302  # to the login page


@pytest.fixture
def instructed(client, tmp_path):
    """A participant of a study with instructed-response checks, stopped before the last
    one (its page and the answer that leads to it are what is compared)."""
    dataset = tiny_dataset("syn", per_category=20, size=32)
    warm = uploaded_run(dataset, tmp_path, name="secret-run-warm")
    cool = uploaded_run(dataset, tmp_path, name="secret-run-cool", style="cool")
    study = open_study(
        [warm, cool],
        labels=["LabelWarmCondition", "LabelCoolCondition"],
        images_per_participant=6,
        practice_trials=1,
        attention_checks=1,
        instructed_checks=2,
    )
    started = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    public_id = started["Location"].split("/")[2]
    trials = list(
        Trial.objects.filter(participant__public_id=public_id)
        .select_related("stimulus")
        .order_by("position")
    )
    last = max(t.position for t in trials if t.kind == Stimulus.Role.INSTRUCTED)
    responses = []
    for trial in trials[: last - 1]:
        responses.append(
            client.post(
                reverse("participant_answer", args=[public_id]),
                {"position": trial.position, "answer": "real", "rt_ms": 600},
                **JSON,
            )
        )
    return study, trials, public_id, last, responses


def _flip_truth(trials) -> None:
    """Give every trial the other version of its scene (real for AI and back), as if each
    image's truth were the opposite; the attention check's has none and is left."""
    for trial in trials:
        s = trial.stimulus
        if s.role == Stimulus.Role.ATTENTION:
            continue
        other = Stimulus.objects.get(
            study=s.study, scene=s.scene, role=s.role, is_real=not s.is_real, condition=s.condition
        )
        Trial.objects.filter(pk=trial.pk).update(stimulus=other)


def test_the_pages_of_an_instructed_check_depend_on_no_truth(client, instructed):
    study, trials, public_id, last, _ = instructed
    page_url = reverse("participant_page", args=[public_id])
    previous = {"position": last - 1, "answer": "real", "rt_ms": 600}
    answer_url = reverse("participant_answer", args=[public_id])

    def seen():
        page = client.get(page_url, {"begin": "1"}).content.decode()
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
        # The answer before it, repeated: what a script is told of the check.
        told = client.post(answer_url, previous, **JSON).json()
        return page, told

    client.post(answer_url, previous, **JSON)
    before = seen()
    assert "For this image, please answer" in before[0]
    assert before[1]["next"]["instruction"].startswith("For this image, please answer")
    _flip_truth(trials)
    assert seen() == before
    image = client.get(reverse("participant_image", args=[public_id, last]))
    assert len(image.content) == study.stimulus_bytes


def test_instructed_checks_name_no_condition_scene_file_or_truth(client, instructed):
    study, trials, public_id, last, responses = instructed
    page = client.get(reverse("participant_page", args=[public_id]), {"begin": "1"})
    for response in [*responses, page]:
        body = response.content.decode()
        for word in [*forbidden_strings(study, trials), "instructed"]:
            assert word not in body, (word, response.request["PATH_INFO"])
