"""Security, walked over the whole URL configuration: every researcher page and download
needs a login, every form needs its CSRF token, and the repository holds no secrets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

ROOT = Path(__file__).resolve().parents[2]

#: The only pages open without a login: the participants' (reached by unguessable ids),
#: the health check, and the login page itself. Anything else added to the URLs must
#: require a login, or this list must say why not.
PUBLIC = {
    "study_landing",
    "participant_page",
    "participant_answer",
    "participant_image",
    "participant_done",
    "healthz",
    "login",
    "logout",
}


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's admin has its own (staff) login; tested below
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry.name, prefix + str(entry.pattern)


def _example_path(route: str) -> str:
    """A concrete path for a route: every converter filled with a plausible value."""
    path = re.sub(r"<int:[^>]+>", "1", route)
    path = re.sub(r"<(str:)?[^>]+>", "abc", path)
    return "/" + path.lstrip("^").rstrip("$")


def researcher_routes():
    return [(name, route) for name, route in _patterns(get_resolver()) if name not in PUBLIC]


def test_the_walk_finds_the_researcher_pages():
    names = {name for name, _ in researcher_routes()}
    assert {"home", "datasets", "runs", "studies", "study_detail", "study_withdraw"} <= names
    assert len(names) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "route"), researcher_routes())
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_researcher_url_requires_login(client, name, route, method):
    path = _example_path(route)
    response = getattr(client, method)(path)
    assert response.status_code == 302, (name, path, response.status_code)
    assert response["Location"].startswith(reverse("login")), (name, path)


@pytest.mark.django_db
def test_admin_requires_a_staff_login(client):
    response = client.get("/admin/survey/trial/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _templates_with_post_forms():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for form in re.findall(r"<form[^>]*>.*?</form>", text, flags=re.S | re.I):
            if re.search(r'method="post"', form, flags=re.I):
                yield template.relative_to(ROOT), form


def test_every_post_form_in_the_templates_carries_a_csrf_token():
    forms = list(_templates_with_post_forms())
    assert len(forms) >= 10
    for template, form in forms:
        assert "{% csrf_token %}" in form, template


@pytest.mark.django_db
def test_posts_without_a_csrf_token_are_refused(tmp_path):
    from studyplatform.researchers import researcher_create
    from survey.models import Participant
    from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

    dataset = tiny_dataset("syn", per_category=10, size=32)
    study = open_study([uploaded_run(dataset, tmp_path, name="warm")], images_per_participant=4)
    strict = Client(enforce_csrf_checks=True)
    landing = reverse("study_landing", args=[study.slug])
    assert strict.post(landing, {"consent": "yes"}).status_code == 403
    assert not Participant.objects.exists()
    lenient = Client()
    started = lenient.post(landing, {"consent": "yes"})
    public_id = started["Location"].split("/")[2]
    strict.cookies = lenient.cookies
    answer = strict.post(
        reverse("participant_answer", args=[public_id]),
        {"position": 1, "answer": "ai", "rt_ms": 500},
        HTTP_ACCEPT="application/json",
    )
    assert answer.status_code == 403
    strict.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    for name, args in [
        ("study_close", [study.pk]),
        ("study_withdraw", [study.pk]),
        ("study_new", []),
        ("run_launch", []),
        ("dataset_upload", []),
        ("logout", []),
    ]:
        assert strict.post(reverse(name, args=args)).status_code == 403, name
    study.refresh_from_db()
    assert study.status == "open"


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "GitHub token": re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),
    "hard-coded secret key": re.compile(r"SECRET_KEY\s*=\s*['\"][^'\"]{20,}['\"]"),
    "password in a URL": re.compile(r"://[^/\s:@'\"]+:[^/\s@'\"]{6,}@"),
}


def test_the_repository_holds_no_secrets():
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert files
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if name.startswith("tests/") and "test" in match.group(0).lower():
                    continue  # the test settings' key is labelled as such
                found.append((name, what, match.group(0)[:40]))
    assert not found
    ignored = (ROOT / ".gitignore").read_text()
    for private in ("var/", ".venv", ".env"):
        assert private in ignored, private
