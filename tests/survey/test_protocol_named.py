"""The analysis page names the study's protocol and its statistic (survey.protocols), for
the single-image protocol as for the paired one (whose fooling rate is P(chose the fake))."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Study
from survey.protocols import PROTOCOLS
from tests.survey.test_analysis_pages import ada, researcher, study  # noqa: F401 (fixtures)
from tests.survey.test_paired import study as paired_study  # noqa: F401 (fixture)
from tests.survey.test_paired_latex import _answer

pytestmark = pytest.mark.django_db


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_single_image_studys_page_names_its_protocol_and_statistic(researcher, study):  # noqa: F811
    html = researcher.get(reverse("study_analysis", args=[study.pk])).content.decode()
    info = PROTOCOLS[Study.Protocol.SINGLE]
    text = _visible_text(html)
    assert f"protocol: {info.title} (statistic: {info.statistic})" in text
    assert PROTOCOLS[Study.Protocol.PAIRED].title not in text


def test_a_paired_studys_page_names_its_protocol_and_its_fooling_rate(client, paired_study):  # noqa: F811
    _answer(paired_study, (1, 2, 4, 5))
    owner = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=paired_study.pk).update(owner=owner)
    client.force_login(owner)
    html = client.get(reverse("study_analysis", args=[paired_study.pk])).content.decode()
    info = PROTOCOLS[Study.Protocol.PAIRED]
    text = _visible_text(html)
    assert f"protocol: {info.title} (statistic: {info.statistic})" in text
    assert "Fooling rate: P(chose the fake) 50.00 %" in text
