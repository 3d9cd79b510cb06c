"""A form field's hint and errors are what its input's ``aria-describedby`` names: Django
points every input with a help text or an error at ``<id>_helptext`` and ``<id>_error``,
and a screen reader reads nothing where the page has no element of that id."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.described: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if attrs.get("aria-describedby"):
            self.described[attrs.get("name") or tag] = attrs["aria-describedby"].split()


def _dangling(page: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    parser = _Ids()
    parser.feed(page)
    dangling = {
        name: [i for i in ids if i not in parser.ids] for name, ids in parser.described.items()
    }
    return parser.described, {name: ids for name, ids in dangling.items() if ids}


@pytest.fixture
def researcher(client, db):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return client


@pytest.mark.parametrize(
    "method, url, data",
    [
        ("get", "study_plan", {"goal": "difference", "rate": "1.5", "pool": "0"}),
        ("post", "run_launch", {"epochs": "-3"}),
        ("post", "dataset_upload", {"name": ""}),
        ("post", "run_upload", {"name": ""}),
        ("post", "study_new", {"name": ""}),
        ("post", "password_change", {"old_password": "wrong", "new_password1": "x"}),
    ],
)
def test_every_hint_and_error_an_input_names_is_on_the_page(researcher, method, url, data):
    response = getattr(researcher, method)(reverse(url), data)
    assert response.status_code == 200
    described, dangling = _dangling(response.content.decode())
    assert any(i.endswith("_error") for ids in described.values() for i in ids), (
        "the bad input shows an error the input names"
    )
    assert dangling == {}


@pytest.mark.parametrize("url", ["run_upload", "run_launch", "dataset_upload", "study_new"])
def test_forms_say_data_set_as_every_page_does(researcher, url):
    page = researcher.get(reverse(url)).content.decode()
    labels = re.findall(r"<label[^>]*>(.*?)</label>", page, flags=re.S)
    assert not [label for label in labels if "Dataset" in label]
