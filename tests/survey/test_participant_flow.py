"""The participant's side over HTTP: consent, instructions, trials by script (JSON) or plain
form, practice feedback, resume, one answer per trial, completion and redirect."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from studyplatform.researchers import researcher_create
from survey import participation
from survey.models import Participant, RefusedStart, Stimulus, Study, Trial
from survey.participation import ImageRequest, image_request, served_image
from survey.services.stimuli import served_length, stimulus_encode
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def pid(n: int) -> str:
    """A Prolific id: 24 hex digits."""
    return f"{n + 0x5F1A2B00:024x}"


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)  # 12 test scenes
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        images_per_participant=6,
        practice_trials=2,
        attention_checks=1,
        redirect_url="https://app.prolific.com/submissions/complete?cc={code}",
    )


def start(client, study, **query) -> Participant:
    landing = reverse("study_landing", args=[study.slug])
    response = client.post(landing, {"consent": "yes", **query})
    assert response.status_code == 302, response.content
    public_id = response["Location"].split("/")[2]
    return Participant.objects.get(public_id=public_id)


def answer(client, participant, position, value="real", rt_ms=800, **extra):
    return client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": position, "answer": value, "rt_ms": rt_ms},
        **extra,
    )


def test_landing_asks_for_consent_and_keeps_the_prolific_ids(client, study):
    landing = reverse("study_landing", args=[study.slug])
    ids = {"PROLIFIC_PID": pid(1), "STUDY_ID": pid(2), "SESSION_ID": pid(3)}
    page = client.get(landing, ids)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="consent"' in html and f'value="{pid(1)}"' in html
    refused = client.post(landing, {"PROLIFIC_PID": pid(1)})
    assert refused.status_code == 400 and "tick the box" in refused.content.decode()
    assert not Participant.objects.exists()
    participant = start(
        client,
        study,
        **ids,
        HTTP_USER_AGENT="Firefox",
    )
    assert (participant.prolific_pid, participant.prolific_study_id) == (pid(1), pid(2))
    assert participant.prolific_session_id == pid(3)


def test_a_whole_participation_by_script_stores_every_answer_once(client, study):
    participant = start(client, study, PROLIFIC_PID=pid(1))
    page = client.get(reverse("participant_page", args=[participant.public_id]))
    assert "Instructions" in page.content.decode()  # before the first answer
    total = Trial.objects.filter(participant=participant).count()
    assert total == 6 + 2 + 1
    given = {}
    for position in range(1, total + 1):
        value = "real" if position % 2 else "ai"
        response = answer(client, participant, position, value, rt_ms=500 + position, **JSON)
        assert response.status_code == 200
        data = response.json()
        given[position] = value
        trial = Trial.objects.get(participant=participant, position=position)
        if trial.kind == Stimulus.Role.PRACTICE:
            truth = "real" if trial.stimulus.is_real else "ai"
            assert data["feedback"]["correct"] == (value == truth)
        else:
            assert data["feedback"] is None  # no truth for a measured trial
        if position < total:
            assert data["next"]["position"] == position + 1 and data["done_url"] is None
            assert (data["next"]["answered"], data["next"]["total"]) == (position, total)
            shown = Trial.objects.get(participant=participant, position=position + 1)
            assert shown.shown_at is not None  # the next trial's display time started
        else:
            assert data["next"] is None
            assert data["done_url"] == reverse("participant_done", args=[participant.public_id])
    stored = dict(Trial.objects.filter(participant=participant).values_list("position", "answer"))
    assert stored == given
    assert list(
        Trial.objects.filter(participant=participant).order_by("position").values_list("rt_ms")
    ) == [(500 + p,) for p in range(1, total + 1)]
    participant.refresh_from_db()
    assert participant.completed_at is not None
    done = client.get(reverse("participant_done", args=[participant.public_id]))
    html = done.content.decode()
    assert study.completion_code in html
    assert f"cc={study.completion_code}" in html  # the redirect, only now
    # The page itself now leads to the completion page.
    again = client.get(reverse("participant_page", args=[participant.public_id]))
    assert again.status_code == 302 and again["Location"].endswith("/done/")


def test_practice_first_and_attention_checks_never_first_among_the_measured(client, study):
    for i in range(5):
        participant = start(client.__class__(), study, PROLIFIC_PID=pid(i))
        kinds = list(
            Trial.objects.filter(participant=participant)
            .order_by("position")
            .values_list("kind", flat=True)
        )
        assert kinds[:2] == ["practice", "practice"]
        assert kinds[2] == "main" and kinds.count("attention") == 1
        practice = Trial.objects.filter(participant=participant, kind="practice")
        assert sorted(practice.values_list("stimulus__is_real", flat=True)) == [False, True]
        main_scenes = set(
            Trial.objects.filter(participant=participant)
            .exclude(kind="practice")
            .values_list("stimulus__scene_id", flat=True)
        )
        assert not main_scenes & set(practice.values_list("stimulus__scene_id", flat=True))


def test_a_reload_resumes_at_the_same_trial(client, study):
    participant = start(client, study)
    for position in (1, 2, 3):
        answer(client, participant, position, **JSON)
    page = client.get(reverse("participant_page", args=[participant.public_id]))
    assert page.context["trial"].position == 4 and page.context["begin"]
    # Coming back through the study link (the cookie) resumes too; no second participant.
    back = client.get(reverse("study_landing", args=[study.slug]))
    assert back.status_code == 302 and participant.public_id in back["Location"]
    assert Participant.objects.count() == 1


def test_the_same_prolific_pid_resumes_in_its_own_browser_only(client, study):
    """Prolific ids are not secret: knowing one must not hand over that participation."""
    first = start(client, study, PROLIFIC_PID=pid(7))
    answer(client, first, 1, "real", **JSON)
    landing = reverse("study_landing", args=[study.slug])
    # Its own browser resumes, with or without the id in the link.
    for query in ({"PROLIFIC_PID": pid(7)}, {}):
        again = client.get(landing, query)
        assert again.status_code == 302 and first.public_id in again["Location"]
    # Another browser with the same id learns nothing and gets no way in.
    other_browser = client.__class__()
    response = other_browser.get(landing, {"PROLIFIC_PID": pid(7)})
    assert response.status_code == 409
    page = response.content.decode()
    assert "already started this study" in page and first.public_id not in page
    # One who finished there is not told to return the study (that would give up their
    # submission), and the page says the same whether they finished or not.
    assert "return the study" not in page and "if you finished there" in page
    assert not [c for c in response.cookies if c.startswith("participation-")]
    posted = other_browser.post(landing, {"consent": "yes", "PROLIFIC_PID": pid(7)})
    assert posted.status_code == 409
    for url in (
        reverse("participant_page", args=[first.public_id]),
        reverse("participant_image", args=[first.public_id, 2]),
    ):
        assert other_browser.get(url).status_code == 404
    refused = answer(other_browser, first, 2, "ai", **JSON)
    assert refused.status_code == 404
    assert Participant.objects.filter(prolific_pid=pid(7)).count() == 1
    assert Trial.objects.get(participant=first, position=2).answer is None
    counted = RefusedStart.objects.get(study=study, reason="other_browser")
    assert counted.count == 2 and counted.example == ""


def test_a_malformed_or_unreplaced_prolific_id_is_refused_with_a_message(client, study):
    landing = reverse("study_landing", args=[study.slug])
    for value in ("{{%PROLIFIC_PID%}}", "5f1a2b", "x" * 24):
        response = client.get(landing, {"PROLIFIC_PID": value, "STUDY_ID": pid(2)})
        assert response.status_code == 400
        assert "does not carry a valid Prolific id (PROLIFIC_PID)" in response.content.decode()
        assert client.post(landing, {"consent": "yes", "PROLIFIC_PID": value}).status_code == 400
    assert not Participant.objects.exists()
    refused = RefusedStart.objects.get(study=study, reason="malformed_id")
    assert refused.count == 6 and refused.example == "PROLIFIC_PID=" + "x" * 24
    researcher = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=researcher)
    client.force_login(researcher)
    monitor = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "Visits that could not start" in monitor
    assert (
        "<strong>6</strong> with a Prolific id in the link that does not look like one" in monitor
    )


def test_prolific_ids_are_compared_as_prolific_issues_them(client, study):
    upper = pid(9).upper()
    participant = start(client, study, PROLIFIC_PID=f"  {upper} ")
    assert participant.prolific_pid == pid(9)
    again = client.get(reverse("study_landing", args=[study.slug]), {"PROLIFIC_PID": pid(9)})
    assert again.status_code == 302 and participant.public_id in again["Location"]


def test_the_participation_cookie_is_secure_when_debug_is_off(client, study, settings):
    assert not settings.DEBUG and settings.PARTICIPATION_COOKIE_SECURE  # the default
    response = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    cookie = next(c for name, c in response.cookies.items() if name.startswith("participation"))
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


def test_only_the_current_and_the_preloaded_image_are_served(client, study):
    participant = start(client, study)
    image = lambda n: client.get(reverse("participant_image", args=[participant.public_id, n]))  # noqa: E731
    assert image(1).status_code == 200
    assert image(2).status_code == 200  # preloaded while the first is on screen
    assert image(3).status_code == 404  # not before its turn
    assert image(1)["Cache-Control"] == "private, no-store"
    answer(client, participant, 1, "real", **JSON)
    assert image(1).status_code == 404  # not after its answer
    assert [image(n).status_code for n in (2, 3, 4)] == [200, 200, 404]


def test_image_request_answers_from_the_trial_and_its_own_participation(client, study):
    participant = start(client, study)
    start(client.__class__(), study)  # another participation's trials count for nothing
    answer(client, participant, 1, "real", **JSON)
    public_id = participant.public_id
    files = dict(
        Trial.objects.filter(participant=participant).values_list("position", "stimulus__file")
    )
    assert image_request(public_id, 2) == ImageRequest(
        study_id=study.pk,
        protocol=Study.Protocol.SINGLE,
        public_id=public_id,
        gone=False,
        answered=False,
        open_before=0,
        fake_side=None,
        stimulus_file=files[2],
        partner_file=None,
        stimulus_bytes=study.stimulus_bytes,
    )
    answered = image_request(public_id, 1)
    assert answered.answered and answered.open_before == 0
    assert [image_request(public_id, n).open_before for n in (3, 4, 5)] == [1, 2, 3]
    # The unanswered trials before it are counted, not the positions.
    Trial.objects.filter(participant=participant, position=3).update(answer="ai")
    assert [image_request(public_id, n).open_before for n in (3, 4, 5)] == [1, 1, 2]
    assert image_request(public_id, 99) is None
    assert image_request("nope", 2) is None
    Participant.objects.filter(pk=participant.pk).update(released_at=timezone.now())
    assert image_request(public_id, 2).gone
    Participant.objects.filter(pk=participant.pk).update(
        released_at=None, withdrawn_at=timezone.now()
    )
    assert image_request(public_id, 2).gone


def test_an_image_served_twice_is_the_same_bytes_at_the_studys_length(client, study):
    participant = start(client, study)
    image = lambda n: client.get(reverse("participant_image", args=[participant.public_id, n]))  # noqa: E731
    first, again, other = image(1), image(1), image(2)
    assert first.content == again.content != other.content
    assert len(first.content) == len(other.content) == study.stimulus_bytes
    assert first["Content-Length"] == again["Content-Length"] == str(study.stimulus_bytes)


def test_served_images_kept_in_memory_stay_within_their_byte_budget(monkeypatch):
    one = served_length(4, 4)
    monkeypatch.setattr(participation, "SERVED_CACHE_BYTES", one + 150)
    a = default_storage.save("stimuli/budget-a.jpg", ContentFile(stimulus_encode(_plain("red"))))
    b = default_storage.save("stimuli/budget-b.jpg", ContentFile(stimulus_encode(_plain("blue"))))
    length = one + 100
    first = served_image(a, length)
    assert len(first) == length and first[one:] == b"\0" * 100
    assert Image.open(io.BytesIO(first)).getpixel((0, 0))[0] > 200  # red
    assert len(served_image(b, length)) == length
    assert list(participation._served)[-1:] == [(b, length)]
    assert (a, length) not in participation._served  # the least recently used went
    assert participation._served_bytes <= one + 150
    assert served_image(a, length) == first  # read again


def _plain(colour: str) -> Image.Image:
    return Image.new("RGB", (4, 4), colour)


def test_a_double_click_or_a_retried_request_stores_one_answer(client, study):
    participant = start(client, study)
    first = answer(client, participant, 1, "real", rt_ms=700, **JSON)
    second = answer(client, participant, 1, "ai", rt_ms=900, **JSON)
    assert first.status_code == second.status_code == 200
    assert second.json()["stored"] == {"position": 1, "answer": "real"}
    trial = Trial.objects.get(participant=participant, position=1)
    assert (trial.answer, trial.rt_ms) == ("real", 700)
    assert Trial.objects.filter(participant=participant, answer__isnull=False).count() == 1


def test_answers_cannot_skip_ahead_or_carry_bad_values(client, study):
    participant = start(client, study)
    skipped = answer(client, participant, 3, **JSON)
    assert skipped.status_code == 409 and "resume_url" in skipped.json()
    bad = answer(client, participant, 1, "maybe", **JSON)
    assert bad.status_code == 409
    for position in ("abc", "", "-1", "1e9", "9" * 40):  # a tampered position, in words
        refused = answer(client, participant, position, **JSON)
        assert refused.status_code == 409
        assert refused.json()["error"].startswith("the trial's position must be a whole number")
    assert not Trial.objects.filter(participant=participant, answer__isnull=False).exists()


def test_without_scripts_a_plain_form_post_answers_and_comes_back(client, study):
    participant = start(client, study)
    page = client.get(reverse("participant_page", args=[participant.public_id]), {"begin": "1"})
    assert 'name="answer" value="real"' in page.content.decode()
    response = client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": 1, "answer": "ai", "rt_ms": ""},
    )
    assert response.status_code == 302
    trial = Trial.objects.get(participant=participant, position=1)
    assert trial.answer == "ai" and trial.rt_ms is not None  # from when it was shown
    after = client.get(response["Location"])
    assert after.context["trial"].position == 2
    assert ": that image was" in after.content.decode()  # the practice feedback, server-side


@pytest.mark.parametrize(
    ("status", "text"),
    [(Study.Status.CLOSED, "has closed"), (Study.Status.DRAFT, "not open yet")],
)
def test_a_study_not_open_says_so_politely(client, study, status, text):
    Study.objects.filter(pk=study.pk).update(status=status)
    page = client.get(reverse("study_landing", args=[study.slug]))
    assert page.status_code == 200 and text in page.content.decode()
    posted = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    assert text in posted.content.decode() and not Participant.objects.exists()


def test_a_full_study_says_so_politely(client, study):
    Study.objects.filter(pk=study.pk).update(target_participants_per_condition=1)
    start(client, study)
    page = client.__class__().post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})
    assert page.status_code == 200 and "full" in page.content.decode()
    assert Participant.objects.count() == 1


def test_a_full_study_says_so_before_the_consent_without_writing(client, study):
    """Full (a researcher reopened a study at its target): the link says so at once, in
    place of the consent, and a Prolific participant is told to return the study; the GET
    writes nothing. The participant who holds the place still resumes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Study.objects.filter(pk=study.pk).update(target_participants_per_condition=1)
    holder = start(client, study)
    landing = reverse("study_landing", args=[study.slug])
    newcomer = client.__class__()
    with CaptureQueriesContext(connection) as queries:
        plain = newcomer.get(landing).content.decode()
        prolific = newcomer.get(landing, {"PROLIFIC_PID": pid(7)}).content.decode()
    writes = ("INSERT", "UPDATE", "DELETE", "MERGE")
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(writes)]
    for html in (plain, prolific):
        assert "This study is full" in html and 'name="consent"' not in html
    assert "return the study on Prolific" not in plain
    assert "Please return the study on Prolific; there is no completion code to enter." in prolific
    # Posted anyway (a consent page opened before it filled up): the same words.
    posted = newcomer.post(landing, {"consent": "yes", "PROLIFIC_PID": pid(7)})
    assert "return the study on Prolific" in posted.content.decode()
    assert Participant.objects.count() == 1
    # A place given back (the holder stops) opens the consent again.
    assert client.get(landing)["Location"].endswith(f"/p/{holder.public_id}/")
    client.post(reverse("participant_stop", args=[holder.public_id]))
    assert 'name="consent"' in newcomer.get(landing).content.decode()


def test_an_unknown_study_or_participant_is_not_found(client, study):
    assert client.get(reverse("study_landing", args=["nope"])).status_code == 404
    assert client.get(reverse("participant_page", args=["nope"])).status_code == 404
    assert client.get(reverse("participant_image", args=["nope", 1])).status_code == 404


def test_starts_from_one_address_are_rate_limited_but_resumes_are_not(client, study, settings):
    settings.STUDY_START_LIMIT = 2
    study.target_participants_per_condition = 50
    study.save()
    first = start(client, study, PROLIFIC_PID=pid(1))
    start(client.__class__(), study, PROLIFIC_PID=pid(2))
    third = client.__class__().post(
        reverse("study_landing", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": pid(3)}
    )
    assert third.status_code == 429
    assert Participant.objects.count() == 2
    resumed = client.get(reverse("study_landing", args=[study.slug]), {"PROLIFIC_PID": pid(1)})
    assert resumed.status_code == 302 and first.public_id in resumed["Location"]


def test_one_ipv6_network_counts_as_one_address_for_the_start_limit(client, study, settings):
    """A home or a machine gets a whole IPv6 /64: counting single addresses would let one
    client start from as many addresses as it likes."""
    settings.STUDY_START_LIMIT = 2
    study.target_participants_per_condition = 50
    study.save()

    def start_from(address: str, n: int):
        return client.__class__(REMOTE_ADDR=address).post(
            reverse("study_landing", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": pid(n)}
        )

    assert start_from("2001:db8:1:2::1", 1).status_code == 302
    assert start_from("2001:db8:1:2:ffff::9", 2).status_code == 302
    assert start_from("2001:db8:1:2:abcd::7", 3).status_code == 429  # the same /64
    assert start_from("2001:db8:1:3::1", 4).status_code == 302  # another network
    assert start_from("192.0.2.1", 5).status_code == 302
    assert Participant.objects.count() == 4


def test_another_browser_cannot_read_or_answer_for_a_participant(client, study):
    participant = start(client, study)
    answer(client, participant, 1, "ai", **JSON)
    stranger = client.__class__()
    stranger.post(reverse("study_landing", args=[study.slug]), {"consent": "yes"})  # own one
    public_id = participant.public_id
    for url in (
        reverse("participant_page", args=[public_id]),
        reverse("participant_image", args=[public_id, 1]),
        reverse("participant_done", args=[public_id]),
    ):
        assert stranger.get(url).status_code == 404, url
    refused = answer(stranger, participant, 2, "real", **JSON)
    assert refused.status_code == 404
    assert Trial.objects.get(participant=participant, position=2).answer is None
    assert client.get(reverse("participant_image", args=[public_id, 2])).status_code == 200


def test_a_participants_link_opened_elsewhere_says_where_to_continue_and_nothing_more(
    client, study
):
    """A participant who copies the page's address to another device (or another browser)
    gets words, not a bare "Not found"; a link that never existed gets the same page, in
    the site's language, so that neither tells whether the link exists or its study's
    language."""
    study.language = "de"
    study.save(update_fields=["language"])
    participant = start(client, study)
    elsewhere = client.__class__()
    pages = [
        elsewhere.get(reverse(name, args=[public_id]))
        for name in ("participant_page", "participant_done")
        for public_id in (participant.public_id, "no-such-link-" + "x" * 9)
    ]
    assert {p.status_code for p in pages} == {404}
    texts = {p.content.decode() for p in pages}
    assert len(texts) == 1
    (text,) = texts
    assert "This link does not open here" in text and "please continue there" in text
    assert participant.public_id not in text and 'lang="de"' not in text


def test_participant_ids_never_start_like_a_spreadsheet_formula(monkeypatch):
    """An id starting with "-" would be written to the CSV exports as "'-…" and no longer
    match itself elsewhere: such a draw is changed."""
    from survey import models

    monkeypatch.setattr(models.secrets, "token_urlsafe", lambda n: "-abc" + "x" * 18)
    assert models.participant_public_id() == "pabc" + "x" * 18
    monkeypatch.setattr(models.secrets, "token_urlsafe", lambda n: "abc" + "x" * 19)
    assert models.participant_public_id() == "abc" + "x" * 19
