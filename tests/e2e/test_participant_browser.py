"""A participant takes a whole study in a real browser (headless Chromium): by mouse, by
keyboard alone, and on a phone by touch, where the image and the answer buttons must fit the
screen and no key is named (the keys still answer); a reload in the middle resumes at the
same trial. Every answer given is then found in the database, once, in order, with its
response time."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs, urlencode

import pytest
from playwright.sync_api import expect

from survey.models import Participant, Study, Trial
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.keyboard_hints import assert_button_badges, assert_instruction_hints, touch_only
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

CONSENT = "I have read the above and agree to take part."
#: What a participant reads and presses, by language (the study's).
WORDS = {
    "en": {
        "consent_heading": "Before you start",
        "consent": CONSENT,
        "start": "Start the study",
        "instructions": "Instructions",
        "begin": "Begin",
        "buttons": "Answer with the buttons under the image.",
        "real": "Real",
        "ai": "AI",
        "keys": {"real": "r", "ai": "a"},
        "continue": "Continue",
        "feedback": {
            (True, True): "Correct: that image was a real photograph.",
            (True, False): "Correct: that image was colourised by AI.",
            (False, True): "Wrong: that image was a real photograph.",
            (False, False): "Wrong: that image was colourised by AI.",
        },
    },
    "de": {
        "consent_heading": "Bevor Sie beginnen",
        "consent": "Ich habe den Text oben gelesen und bin mit der Teilnahme einverstanden.",
        "start": "Studie starten",
        "instructions": "Anleitung",
        "begin": "Beginnen",
        "buttons": "Antworten Sie mit den Schaltflächen unter dem Bild.",
        "real": "Echt",
        "ai": "KI",
        "keys": {"real": "e", "ai": "k"},
        "continue": "Weiter",
        "feedback": {
            (True, True): "Richtig: Das Bild war ein echtes Foto.",
            (True, False): "Richtig: Das Bild wurde von einer KI eingefärbt.",
            (False, True): "Falsch: Das Bild war ein echtes Foto.",
            (False, False): "Falsch: Das Bild wurde von einer KI eingefärbt.",
        },
    },
}
#: The answers given, trial by trial (6 measured images + 2 practice + 1 attention check).
#: Prolific ids (24 hex digits) for the mouse test.
MOUSE, STUDY, SESSION = (f"{n:024x}" for n in (0x1A, 0x2B, 0x3C))
ANSWERS = ["real", "ai", "ai", "real", "real", "ai", "ai", "real", "real"]


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)  # 12 test scenes
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        images_per_participant=6,
        practice_trials=2,
        attention_checks=1,
        target_participants_per_condition=10,
    )


class Taker:
    """Takes the study in ``page`` as a participant would, ``how``: "mouse" (clicks),
    "keyboard" (Tab, Space, Enter, R and A only) or "touch" (taps)."""

    def __init__(self, page, how: str, shoot=None, prefix: str = "", language: str = "en"):
        self.page, self.how = page, how
        self.words = WORDS[language]
        self.shoot = (lambda name: shoot(page, f"{prefix}{name}")) if shoot else lambda n: None
        self.public_id: str | None = None
        #: A check run on every trial once its image is shown, ``(position, feedback)``.
        self.after_show = lambda position, feedback: None

    def press(self, locator) -> None:
        locator.tap() if self.how == "touch" else locator.click()

    def tab_to(self, locator) -> None:
        """One Tab must reach ``locator`` (the page's focus order is the reading order)."""
        self.page.keyboard.press("Tab")
        expect(locator).to_be_focused()

    def consent(self, study, **query) -> None:
        page = self.page
        page.goto(f"/s/{study.slug}/" + (f"?{urlencode(query)}" if query else ""))
        expect(page.get_by_role("heading", name=self.words["consent_heading"])).to_be_visible()
        for name, value in query.items():  # the Prolific ids travel with the form
            expect(page.locator(f'input[type=hidden][name="{name}"]')).to_have_value(value)
        self.shoot("consent")
        checkbox = page.get_by_label(self.words["consent"])
        start = page.get_by_role("button", name=self.words["start"])
        if self.how == "keyboard":
            self.tab_to(checkbox)
            page.keyboard.press("Space")
            expect(checkbox).to_be_checked()
            self.tab_to(start)
            self.shoot("consent-focus")
            page.keyboard.press("Enter")
        else:
            self.press(checkbox)
            expect(checkbox).to_be_checked()
            self.press(start)
        page.wait_for_url("**/p/*/")
        self.public_id = page.url.rstrip("/").split("/")[-1]

    def begin(self) -> None:
        page = self.page
        expect(page.get_by_role("heading", name=self.words["instructions"])).to_be_visible()
        assert_instruction_hints(page, self.words["buttons"])
        self.shoot("instructions")
        begin = page.get_by_role("button", name=self.words["begin"])
        if self.how == "keyboard":
            self.tab_to(begin)
            page.keyboard.press("Enter")
        else:
            self.press(begin)
        expect(page.locator("#trial")).to_be_visible()

    def trial_number(self) -> int:
        return int(self.page.locator('#progress-text [data-f="number"]').inner_text())

    def answer(self, position: int, value: str) -> None:
        """Answer trial ``position`` (the one on screen) once its image is shown; through
        the practice feedback if there is one."""
        page = self.page
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        button = page.get_by_role("button", name=self.words[value], exact=True)
        # The buttons are enabled once the image is displayed (polled every frame).
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        expect(button).to_be_enabled()
        practice = page.locator('#progress-text [data-f="practice"]').is_visible()
        self.after_show(position, False)
        if position == 3:
            assert_button_badges(page)
            self.shoot("trial")
        page.wait_for_timeout(25)  # a person takes a moment: the response time is > 0
        with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
            if self.how == "keyboard":
                page.keyboard.press(self.words["keys"][value])
            else:
                self.press(button)
        assert sent.value.status == 200
        posted = parse_qs(sent.value.request.post_data)
        assert (posted["position"], posted["answer"]) == ([str(position)], [value])
        if not practice:
            return
        feedback = page.locator("#feedback")
        expect(feedback).to_be_visible()
        stimulus = Trial.objects.select_related("stimulus").get(
            participant__public_id=self.public_id, position=position
        )
        is_real = stimulus.stimulus.is_real
        right = (value == "real") == is_real
        expect(feedback).to_contain_text(self.words["feedback"][(right, is_real)])
        self.after_show(position, True)
        if position == 1:
            self.shoot("practice-feedback")
        go_on = page.get_by_role("button", name=self.words["continue"])
        if self.how == "keyboard":
            expect(go_on).to_be_focused()  # the feedback takes the focus
            page.keyboard.press("Space" if position == 1 else "Enter")
        else:
            self.press(go_on)
        expect(feedback).to_be_hidden()

    def answer_all(self, answers: list[str], first: int = 1) -> None:
        for position in range(first, len(answers) + 1):
            self.answer(position, answers[position - 1])
        self.page.wait_for_url(f"**/p/{self.public_id}/done/")

    def finish(self, study) -> None:
        code = self.page.get_by_test_id("completion-code")
        expect(code).to_have_text(study.completion_code)
        self.shoot("done")


def assert_stored(public_id: str, answers: list[str]) -> None:
    """Every answer given is stored once, in order, with a plausible response time, and
    the participation is complete."""
    participant = Participant.objects.get(public_id=public_id)
    rows = list(
        Trial.objects.filter(participant=participant)
        .order_by("position")
        .values_list("position", "answer", "rt_ms")
    )
    assert [(p, a) for p, a, _ in rows] == list(enumerate(answers, start=1))
    assert all(0 < rt < 60_000 for *_, rt in rows), rows
    assert participant.completed_at is not None


def test_a_whole_study_by_mouse(open_page, study, shoot):
    page = open_page()
    images = Counter()
    page.on("request", lambda r: images.update([r.url]) if "/image/" in r.url else None)
    taker = Taker(page, "mouse", shoot, prefix="desktop-")
    taker.consent(study, PROLIFIC_PID=MOUSE, STUDY_ID=STUDY, SESSION_ID=SESSION)
    taker.begin()
    taker.answer_all(ANSWERS)
    taker.finish(study)
    assert_stored(taker.public_id, ANSWERS)
    # Each image was fetched once, preloaded or shown (the server keeps none in a cache and
    # serves only the current and the next trial's image).
    assert sorted(int(url.rsplit("/", 1)[1]) for url in images) == list(range(1, 10))
    assert set(images.values()) == {1}, images
    participant = Participant.objects.get(public_id=taker.public_id)
    assert (participant.prolific_pid, participant.prolific_study_id) == (MOUSE, STUDY)
    assert participant.prolific_session_id == SESSION
    assert "Chrome" in participant.user_agent


def test_a_whole_study_by_keyboard_alone(open_page, study, shoot):
    page = open_page()
    taker = Taker(page, "keyboard", shoot, prefix="keyboard-")
    taker.consent(study, PROLIFIC_PID=f"{0xCE1:024x}")
    taker.begin()
    answers = [{"real": "ai", "ai": "real"}[a] for a in ANSWERS]
    taker.answer_all(answers)
    taker.finish(study)
    assert_stored(taker.public_id, answers)


def _assert_within_viewport(page, what: str, box) -> None:
    size = page.viewport_size
    assert box is not None, f"{what} is not displayed"
    assert box["x"] >= 0 and box["y"] >= 0, (what, box)
    assert box["x"] + box["width"] <= size["width"] + 0.5, (what, box, size)
    assert box["y"] + box["height"] <= size["height"] + 0.5, (what, box, size)


def _assert_fits_the_phone(page, words=WORDS["en"]) -> None:
    """Nothing to scroll: the image fits the screen, the answer buttons (or the practice
    feedback's Continue, which takes their place) are on it, and the page is no wider than
    the screen."""
    scroll_x, scroll_y, wide, screen = page.evaluate(
        "() => [scrollX, scrollY, document.documentElement.scrollWidth,"
        " document.documentElement.clientWidth]"
    )
    assert (scroll_x, scroll_y) == (0, 0)
    assert wide <= screen, f"the page is {wide} px wide on a {screen} px screen"
    image = page.locator("#stimulus").bounding_box()
    _assert_within_viewport(page, "the image", image)
    assert min(image["width"], image["height"]) >= 128, image  # still large enough to judge
    if page.locator("#feedback").is_visible():
        names = [words["continue"]]
    else:
        names = [words["real"], words["ai"]]
    for name in names:
        button = page.get_by_role("button", name=name, exact=True)
        expect(button, f"the {name} button on {page.viewport_size}").to_be_in_viewport(ratio=1)
        _assert_within_viewport(page, f"the {name} button", button.bounding_box())


#: Other screens checked on a few trials: the phone held sideways, a small phone.
OTHER_SCREENS = [{"width": 844, "height": 390}, {"width": 320, "height": 568}]


def test_a_whole_study_on_a_phone_by_touch(open_page, study, shoot):
    page = open_page(**PHONE)
    taker = Taker(page, "touch", shoot, prefix="phone-")

    def fits(position: int, feedback: bool) -> None:
        _assert_fits_the_phone(page)
        if position in (1, 3):  # a practice trial, its feedback, a measured trial
            for screen in OTHER_SCREENS:
                page.set_viewport_size(screen)
                _assert_fits_the_phone(page)
            page.set_viewport_size(PHONE["viewport"])

    taker.after_show = fits
    taker.consent(study, PROLIFIC_PID=f"{0xF0E:024x}")
    taker.begin()
    taker.answer_all(ANSWERS)
    taker.finish(study)
    assert_stored(taker.public_id, ANSWERS)


def test_keys_are_named_at_a_desktop_and_not_on_a_touch_phone_where_they_still_answer(
    open_page, study, shoot
):
    desktop, phone = open_page(**DESKTOP), open_page(**PHONE)
    assert not touch_only(desktop) and touch_only(phone)
    for page, size in ((desktop, "desktop"), (phone, "phone")):
        taker = Taker(page, "mouse" if page is desktop else "touch", shoot, f"keys-{size}-")
        taker.consent(study)
        hint = page.locator("#instructions .keyboard-hint")
        expect(page.locator("#instructions")).to_contain_text(WORDS["en"]["buttons"])
        expect(hint).to_be_visible() if page is desktop else expect(hint).to_be_hidden()
        taker.begin()
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        badges = page.locator("#answer-form kbd")
        expect(badges).to_have_count(2)
        for i in range(2):
            visible = badges.nth(i).is_visible()
            assert visible == (page is desktop), (size, i)
        shoot(page, f"keys-trial-{size}")
    # A keyboard attached to the phone still answers.
    with phone.expect_response(lambda r: r.url.endswith("/answer")) as sent:
        phone.keyboard.press("a")
    assert sent.value.status == 200 and parse_qs(sent.value.request.post_data)["answer"] == ["ai"]


def test_without_scripts_no_key_is_named_and_the_buttons_answer(open_page, study, shoot):
    page = open_page(**DESKTOP, java_script_enabled=False)
    page.goto(f"/s/{study.slug}/")
    page.get_by_label(WORDS["en"]["consent"]).check()
    page.get_by_role("button", name=WORDS["en"]["start"]).click()
    page.wait_for_url("**/p/*/")
    expect(page.locator("#instructions")).to_contain_text(WORDS["en"]["buttons"])
    expect(page.locator("#instructions .keyboard-hint")).to_be_hidden()  # keys need the script
    page.get_by_role("button", name=WORDS["en"]["begin"]).click()
    expect(page.locator("#trial")).to_be_visible()
    badges = page.locator("#answer-form kbd")
    expect(badges).to_have_count(2)
    for i in range(2):
        expect(badges.nth(i)).to_be_hidden()
    shoot(page, "no-script-trial")
    expect(page.locator('#progress-text [data-f="number"]')).to_have_text("1")
    page.get_by_role("button", name="Real").click()  # a plain form's post
    expect(page.locator('#progress-text [data-f="number"]')).to_have_text("2")


def test_a_reload_in_the_middle_resumes_at_the_same_trial(open_page, study):
    page = open_page()
    taker = Taker(page, "mouse")
    taker.consent(study)
    taker.begin()
    for position in (1, 2, 3):
        taker.answer(position, ANSWERS[position - 1])
    expect(page.locator('#progress-text [data-f="number"]')).to_have_text("4")
    page.reload()
    expect(page.locator("#trial")).to_be_visible()  # straight to the trial, no instructions
    expect(page.locator("#instructions")).to_be_hidden()
    assert taker.trial_number() == 4
    # The study link (the cookie) leads back to the same trial too.
    page.goto(f"/s/{study.slug}/")
    page.wait_for_url(f"**/p/{taker.public_id}/")
    assert taker.trial_number() == 4
    answered = Trial.objects.filter(participant__public_id=taker.public_id, answer__isnull=False)
    assert answered.count() == 3
    taker.answer_all(ANSWERS, first=4)
    taker.finish(study)
    assert_stored(taker.public_id, ANSWERS)
    assert Participant.objects.filter(study=study).count() == 1


def test_a_whole_study_in_german_by_keyboard_and_on_a_phone(open_page, study, shoot):
    """Every word in German, the German keys (E for Echt, K for KI), numbers in German
    format, and the German pages still fit a phone."""
    Study.objects.filter(pk=study.pk).update(language="de")
    study.refresh_from_db()
    page = open_page()
    taker = Taker(page, "keyboard", shoot, prefix="german-", language="de")

    def on_a_phone_too(position: int, feedback: bool) -> None:
        expect(page.locator("#trial-question")).to_have_text("Echtes Foto oder von KI eingefärbt?")
        expect(page.locator("#progress-text")).to_contain_text(f"Bild {position} von 9")
        if position in (1, 3):
            page.set_viewport_size(PHONE["viewport"])
            _assert_fits_the_phone(page, WORDS["de"])
            taker.shoot(f"phone-{position}{'-feedback' if feedback else ''}")
            page.set_viewport_size(DESKTOP["viewport"])

    taker.after_show = on_a_phone_too
    page.goto(f"/s/{study.slug}/")
    assert page.locator("html").get_attribute("lang") == "de"
    expect(page.locator(".study-text")).to_contain_text("Die Daten sind pseudonym")
    taker.consent(study, PROLIFIC_PID=f"{0xDE:024x}")
    instructions = page.locator("#instructions")
    expect(instructions).to_contain_text("Sie können auch E für „Echt“ und K für „KI“ drücken.")
    expect(instructions).to_contain_text("Die ersten 2 Bilder sind Übungen")
    taker.begin()
    expect(page.locator('#progress-text [data-f="practice"]')).to_have_text("Übung · ")
    taker.answer_all(ANSWERS)
    expect(page.get_by_role("heading", name="Vielen Dank!")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Alle Ihre Antworten wurden gespeichert.")
    taker.finish(study)
    assert_stored(taker.public_id, ANSWERS)


def test_the_preview_runs_in_the_study_language_with_its_words(open_page, study):
    """The researcher's preview shows what a German participant would see, the researcher's
    labels and keys included, with the practice feedback from the page."""
    from studyplatform.researchers import researcher_create

    researcher_create(username="ada", password="a-long-Passphrase-1", staff=True)
    Study.objects.filter(pk=study.pk).update(language="de", ai_label="Maschine", ai_key="m")
    page = open_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-Passphrase-1")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/studies/{study.pk}/preview/")
    page.get_by_role("button", name="Ich stimme zu: weiter").click()
    expect(page.locator("#instructions")).to_contain_text("E für „Echt“ und M für „Maschine“")
    page.get_by_role("button", name="Beginnen").click()
    for position in range(1, 10):
        expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
        page.wait_for_function("() => !document.querySelector('button.answer').disabled")
        expect(page.get_by_role("button", name="Maschine", exact=True)).to_be_visible()
        page.keyboard.press("m")
        if position <= 2:  # practice: the German sentence, chosen by the page's script
            feedback = page.locator("#feedback")
            expect(feedback).to_contain_text("Das Bild")
            text = feedback.inner_text()
            assert text.startswith(("Richtig:", "Falsch:")), text
            page.get_by_role("button", name="Weiter").click()
    expect(page.locator("#preview-done")).to_be_visible()
    expect(page.locator("[data-f=preview-score]")).to_contain_text("measured images")
    assert not Participant.objects.exists()


def test_a_full_study_says_so_on_its_link_before_the_consent(open_page, study, shoot):
    """A study at its target (reopened, say) tells a newcomer from Prolific on the link
    itself, with no consent to tick first, to return the study; nothing is started."""
    from survey.services.assignment import participant_start

    Study.objects.filter(pk=study.pk).update(target_participants_per_condition=1)
    participant_start(study=Study.objects.get(pk=study.pk))  # taking part: holds the place
    page = open_page(**PHONE)
    page.goto(f"/s/{study.slug}/?" + urlencode({"PROLIFIC_PID": "5f1a2b00" * 3}))
    expect(page.get_by_role("heading", name="This study is full")).to_be_visible()
    expect(page.locator("main")).to_contain_text(
        "Please return the study on Prolific; there is no completion code to enter."
    )
    expect(page.get_by_label(CONSENT)).to_have_count(0)
    shoot(page, "full-on-the-link")
    assert Participant.objects.count() == 1
