"""Measured display timing in a real browser (headless Chromium): a study that shows each
image for a set time is taken as a participant would, and every trial's display is found
measured in the database: the refresh interval, devicePixelRatio, the window's and the
image's size on screen, an exposure locked to frames near the target. A disturbed trial
is flagged: the window losing the focus (another page brought to the front), the page
hidden (headless Chromium never hides a page: the event is dispatched with
``document.visibilityState`` made "hidden"), frames held up by a busy main thread (the
image stays up too long: a real miss, measured).

Headless Chromium paints without a display's vertical sync, so its frames are only about
60 Hz and the exposures only near whole frames: the bounds below allow three frames."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from studyplatform.researchers import researcher_create
from survey.models import TrialDisplay
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.e2e.axe import axe_violations
from tests.e2e.conftest import PHONE
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)

EXPOSURE_MS = 300
PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=64)
    run = uploaded_run(dataset, tmp_path, name="warm")
    return open_study(
        [run],
        images_per_participant=4,
        exposure_ms=EXPOSURE_MS,
        target_participants_per_condition=5,
    )


def start(page, study) -> str:
    page.goto(f"/s/{study.slug}/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start the study").click()
    page.wait_for_url("**/p/*/")
    page.get_by_role("button", name="Begin").click()
    return page.url.rstrip("/").split("/")[-1]


def wait_shown(page, position: int) -> None:
    """Until trial ``position``'s image is on screen (its answers are enabled then)."""
    expect(page.locator('#progress-text [data-f="number"]')).to_have_text(str(position))
    expect(page.get_by_role("button", name="Real", exact=True)).to_be_enabled()


def answer(page, *, wait_hidden: bool = True) -> None:
    """Answer "Real" once the image was hidden (the exposure over), as a participant would."""
    if wait_hidden:
        expect(page.locator("#mask")).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/answer")) as sent:
        page.get_by_role("button", name="Real", exact=True).click()
    assert sent.value.status == 200


def displays(public_id: str) -> list[TrialDisplay]:
    return list(
        TrialDisplay.objects.filter(trial__participant__public_id=public_id).order_by(
            "trial__position"
        )
    )


def test_every_trial_is_measured_near_its_target(open_page, study, shoot):
    page = open_page()
    public_id = start(page, study)
    on_screen = []
    for position in range(1, 5):
        wait_shown(page, position)
        on_screen.append(page.eval_on_selector("#stimulus", "e => e.getBoundingClientRect().width"))
        answer(page)
    page.wait_for_url("**/done/")
    rows = displays(public_id)
    assert len(rows) == 4
    for row, width in zip(rows, on_screen, strict=True):
        assert row.status == TrialDisplay.Status.MEASURED and row.problems == ""
        assert 20 <= row.refresh_hz <= 250, row.frame_ms
        assert row.target_ms == EXPOSURE_MS
        assert row.target_frames == round(EXPOSURE_MS / row.frame_ms)
        print(  # the figures measured, for the report
            f"frame {row.frame_ms:.3f} ms, exposure {row.exposure_ms:.2f} ms "
            f"({row.target_frames} frames), error {row.exposure_ms - EXPOSURE_MS:+.2f} ms"
        )
        assert abs(row.exposure_ms - EXPOSURE_MS) <= 3 * row.frame_ms
        assert row.device_pixel_ratio == 1.0
        assert (row.window_width, row.window_height) == (1280, 800)
        assert row.image_width == pytest.approx(width, abs=0.1) and row.image_width > 0
        assert row.image_height > 0
        assert not row.answered_early and not row.hidden and not row.left_fullscreen


def test_focus_lost_hidden_page_and_held_up_frames_are_recorded_and_flagged(
    open_page, study, browser
):
    page = open_page(**PHONE)
    public_id = start(page, study)
    # 1: another page takes the focus during the trial (real focus, not emulated).
    page.context.new_cdp_session(page).send(
        "Emulation.setFocusEmulationEnabled", {"enabled": False}
    )
    wait_shown(page, 1)
    expect(page.locator("#mask")).to_be_visible()  # after the exposure, before the answer
    other = page.context.new_page()
    other.bring_to_front()
    page.wait_for_function("() => !document.hasFocus()")
    page.bring_to_front()
    other.close()
    answer(page)
    # 2: the page is hidden during the trial.
    wait_shown(page, 2)
    page.evaluate(
        """() => {
          const hidden = { value: "hidden", configurable: true };
          Object.defineProperty(document, "visibilityState", hidden);
          document.dispatchEvent(new Event("visibilitychange"));
          delete document.visibilityState;
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    answer(page)
    # 3: the main thread is held up for twice the exposure while the image is up: the
    # frame that should hide it comes late.
    wait_shown(page, 3)
    still_up = page.evaluate(
        f"""() => {{
          const up = document.getElementById("mask").hidden;
          const start = performance.now();
          while (performance.now() - start < {2 * EXPOSURE_MS}) {{}}
          return up;
        }}"""
    )
    assert still_up, "the image was hidden before the main thread was held up"
    answer(page)
    # 4: answered at once, while the image is still up.
    wait_shown(page, 4)
    answer(page, wait_hidden=False)
    page.wait_for_url("**/done/")

    first, second, third, fourth = displays(public_id)
    assert all(r.status == TrialDisplay.Status.MEASURED for r in (first, second, third, fourth))
    assert first.device_pixel_ratio == 2.0 and (first.window_width, first.window_height) == (
        390,
        844,
    )
    # A focus loss: recorded, not flagged.
    assert first.blurred and not first.hidden and not first.flagged, first.exposure_ms
    assert second.hidden and second.flagged and not second.missed_target
    # Held up for two exposures: measured from frame timestamps, to within a millisecond.
    assert third.exposure_ms >= 2 * EXPOSURE_MS - 1 and third.missed_target and third.flagged
    assert not third.hidden
    assert fourth.answered_early and fourth.exposure_ms is None and not fourth.flagged


def check(page, name: str, shoot) -> None:
    """Screenshot (full page), no sideways overflow, and axe-core: no violation of WCAG
    2.0/2.1 A or AA."""
    shoot(page, name)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (name, width)
    violations = axe_violations(page)
    assert not violations, (name, violations)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_display_report_reads_well_at_every_size(open_page, tmp_path, size):
    """The report of a study whose answers carried known measurements, reached from the
    analysis page."""
    ada = researcher_create(username="ada", password=PASSWORD)
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    study = open_study(
        [uploaded_run(dataset, tmp_path, name="warm", owner=ada)],
        owner=ada,
        images_per_participant=4,
        exposure_ms=200,
        drop_flagged_displays=True,
    )
    for i in range(3):
        participant = participant_start(study=study, rng=random.Random(i))
        for position in range(1, 5):
            display = {
                "exposure_ms": 200.0 + 17 * (position == 2) * i,
                "frame_ms": (16.667, 8.333, 6.944)[i],
                "device_pixel_ratio": (1, 2, 1.25)[i],
                "window_width": (1280, 390, 1536)[i],
                "window_height": (800, 844, 864)[i],
                "image_width": 512.0,
                "hidden": position == 4 and i == 1,
                "blurred": position == 3,
            }
            trial_answer(
                participant=participant,
                position=position,
                answer="ai",
                rt_ms=400,
                display=json.dumps(display),
            )
    page = open_page(**(PHONE if size == "phone" else {}))
    page.goto(reverse("login"))
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(reverse("study_analysis", args=[study.pk]))
    page.get_by_role("link", name="Display report", exact=True).click()
    expect(page.get_by_role("heading", name="Display report")).to_be_visible()
    expect(page.locator('[data-f="flagged"]')).to_have_text("3")
    expect(page.locator('[data-f="dropped"]')).to_have_text("3")
    check(page, f"display-report-{size}", _full_page_shoot)


def _full_page_shoot(page, name: str) -> None:
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
