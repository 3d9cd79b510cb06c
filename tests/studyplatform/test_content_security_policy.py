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


def _headers_through(middleware_class, response_setup, *, path="/p/x/image/1", nonce=False):
    from django.http import HttpResponse

    request = RequestFactory().get(path)
    middleware = middleware_class(lambda r: None)
    middleware.process_request(request)
    if nonce:
        str(request.csp_nonce)  # a template that asked for one
    response = HttpResponse(b"x")
    response_setup(response)
    middleware.process_response(request, response)
    return {
        name: response.get(name)
        for name in ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
    }, request


RESPONSES = {
    "plain": lambda r: None,
    "update": lambda r: setattr(r, "_csp_update", {"img-src": ["https://example.org"]}),
    "replace": lambda r: setattr(r, "_csp_replace", {"script-src": ["'none'"]}),
    "config": lambda r: setattr(r, "_csp_config", {"default-src": ["'none'"]}),
    "exempt": lambda r: setattr(r, "_csp_exempt", True),
    "not found": lambda r: setattr(r, "status_code", 404),
    "header set": lambda r: r.__setitem__("Content-Security-Policy", "default-src 'none'"),
}


@pytest.mark.parametrize("case", list(RESPONSES))
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_the_stored_policy_is_what_django_csp_builds(case, debug, settings):
    """studyplatform.csp_policy builds the policy once: every response gets the header
    django-csp itself would give it, under the same conditions."""
    from csp.middleware import CSPMiddleware as Stock

    from studyplatform.csp_policy import CSPMiddleware as Stored

    settings.DEBUG = debug
    for nonce in (False, True):
        stock, _ = _headers_through(Stock, RESPONSES[case], nonce=nonce)
        stored, request = _headers_through(Stored, RESPONSES[case], nonce=nonce)
        assert stored == stock, (case, nonce)
        if not nonce and stock["Content-Security-Policy"]:  # asked too late: refused
            with pytest.raises(Exception, match="not available after"):
                str(request.csp_nonce)


def test_the_stored_policy_follows_the_settings(settings):
    from csp.middleware import CSPMiddleware as Stock

    from studyplatform.csp_policy import CSPMiddleware as Stored

    assert "studyplatform.csp_policy.CSPMiddleware" in settings.MIDDLEWARE
    before, _ = _headers_through(Stored, RESPONSES["plain"])
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": ["'self'"]},
        "EXCLUDE_URL_PREFIXES": ["/admin/"],
    }
    after, _ = _headers_through(Stored, RESPONSES["plain"])
    assert after != before
    assert after == _headers_through(Stock, RESPONSES["plain"])[0]
    assert after["Content-Security-Policy-Report-Only"] == "default-src 'self'"
    for middleware in (Stock, Stored):
        admin, _ = _headers_through(middleware, RESPONSES["plain"], path="/admin/x")
        assert admin == {
            "Content-Security-Policy": "default-src 'none'",
            "Content-Security-Policy-Report-Only": None,
        }
