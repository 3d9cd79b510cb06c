"""A Content-Security-Policy on every response, and nothing in the pages that it would
block: no inline script, no inline event handler, no javascript: URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from django.urls import get_resolver, reverse

from studyplatform.researchers import researcher_create
from tests.studyplatform.access_helpers import _patterns
from tests.studyplatform.test_security import _example_path

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"(href|src|action)\s*=\s*[\"']\s*javascript:", re.I)


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()
    }


def _inline_code(html: str) -> list[str]:
    return [m.group(0) for p in (INLINE_SCRIPT, EVENT_HANDLER, JS_URL) for m in p.finditer(html)]


def test_no_template_holds_inline_script():
    found = {
        str(t.relative_to(ROOT)): _inline_code(t.read_text())
        for t in (ROOT / "templates").rglob("*.html")
    }
    assert {name: code for name, code in found.items() if code} == {}


def test_the_policy_allows_scripts_from_this_site_only():
    from django.conf import settings

    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "researcher"])
def test_every_page_carries_the_policy(logged_in):
    client = Client()
    if logged_in:
        client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    paths = {_example_path(route) for _, route in _patterns(get_resolver())}
    paths |= {reverse("home"), reverse("login"), "/admin/login/", "/no-such-page/"}
    assert len(paths) >= 30
    for path in sorted(paths):
        response = client.get(path)
        policy = _policy(response)
        assert policy["script-src"] == "'self'", path
        assert policy["default-src"] == "'self'", path
        if "html" in response.get("Content-Type", "") and hasattr(response, "content"):
            assert _inline_code(response.content.decode(errors="replace")) == [], path


def test_the_error_page_holds_no_script():
    from studyplatform.views import server_error

    response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert _inline_code(html) == []
    assert "Try again" in html
