"""The researcher's participant list in a real browser, at desktop and phone widths: the
page fits the screen (the wide table scrolls inside its own focusable region), each row
shows the participant number of the downloads first, in sight, and an absurd bonus amount
comes back with its message."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Participant
from tests.e2e.conftest import PHONE, log_in
from tests.survey.analysis_helpers import make_study, take_part

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def study(tmp_path):
    ada = researcher_create(username="ada", password=PASSWORD)
    study = make_study(tmp_path, owner=ada)
    for i, attention in enumerate(("ai", "real", "ai")):
        p = take_part(study, i, attention=attention, stop_after=None if i < 2 else 1)
        Participant.objects.filter(pk=p.pk).update(
            prolific_pid=f"5f{i:022x}", prolific_study_id="6a" + "0" * 22
        )
    return study


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_list_fits_the_screen_and_refuses_an_absurd_bonus(open_page, study, shoot, size):
    page = open_page(**(PHONE if size == "phone" else {}))
    log_in(page, password=PASSWORD)
    page.goto(reverse("study_participants", args=[study.pk]))
    assert page.locator("tbody tr").count() == 3
    assert page.locator("tbody .status-excluded").count() == 1
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    numbers = page.locator("tbody td[data-f=number]")
    people = study.participants.order_by("started_at", "pk")
    assert numbers.all_inner_texts() == [str(p.pk) for p in people]
    assert numbers.first.evaluate("td => getComputedStyle(td).textAlign") == "right"
    # The table is wider than even 1280 px and scrolls in its region: the number, first,
    # is in sight without scrolling.
    in_sight = """td => td.getBoundingClientRect().right
                        <= td.closest('.scroll-x').getBoundingClientRect().right"""
    assert numbers.first.evaluate(in_sight)
    if size == "desktop":  # what an approval rests on is in sight at 1280 px too
        for name in ("Status", "Accuracy", "Inverted-image checks passed / failed"):
            assert page.get_by_role("columnheader", name=name).evaluate(in_sight), name
    shoot(page, f"participants-{size}")
    page.fill("#per_correct", "-1")
    with page.expect_response(lambda r: "bonuses.csv" in r.url and r.status == 400):
        page.click("text=Bonuses (CSV)")
    page.problems.items.clear()  # the 400 is the answer asked for
    assert "cannot be negative" in page.locator("[role=alert]").inner_text()
    shoot(page, f"participants-bonus-refused-{size}")
