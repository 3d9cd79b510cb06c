"""Security, walked over the whole URL configuration: every researcher page and download
needs a login; with real objects of one researcher, another researcher without a share gets
404 and changes nothing, one with a view share looks but changes nothing, one with an edit
share changes but cannot share, and accounts outside the researchers group get 403; every
form needs its CSRF token, and the repository holds no secrets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from survey.models import Study, Withdrawal
from tests.studyplatform.access_helpers import (
    CHANGING,
    EDIT_FORMS,
    MARK,
    NEVER_SHARED,
    OBJECT_BY_NAME,
    OWNER_PAGES,
    SHARING,
    build_world,
    object_of,
    path_of,
    post_data,
    researcher_routes,
    share_all,
    snapshot,
)
from worker.models import ModelRun

ROOT = Path(__file__).resolve().parents[2]


def _example_path(route: str) -> str:
    """A concrete path for a route: every converter filled with a plausible value."""
    path = re.sub(r"<int:[^>]+>", "1", route)
    path = re.sub(r"<(str:)?[^>]+>", "abc", path)
    return "/" + path.lstrip("^").rstrip("$")


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


# --- Two researchers and a non-researcher, with real objects -------------------------------


@pytest.fixture
def world(tmp_path):
    return build_world(tmp_path)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _request(client: Client, world, name: str, route: str, method: str):
    path = path_of(world, name, route)
    if method == "get":
        return client.get(path)
    return client.post(path, post_data(world, name))


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _statuses(client: Client, world, method: str) -> dict[str, int]:
    return {
        name: _request(client, world, name, route, method).status_code
        for name, route in researcher_routes()
    }


def test_every_route_with_a_parameter_is_filled_with_a_real_object():
    filled = {name: object_of(route) for name, route in researcher_routes()}
    assert {"study", "run", "active", "dataset", "image", "output", "stimulus", "job"} <= set(
        filled.values()
    )
    assert filled["study_withdraw"] == "study" and filled["run_cancel"] == "active"


@pytest.mark.django_db
def test_without_a_share_another_researcher_sees_and_changes_nothing(world):
    alice, bob = _as(world.alice), _as(world.bob)
    alice_get = _statuses(alice, world, "get")
    before = snapshot(world)
    bob_status = {}
    for name, route in researcher_routes():
        for method in ("get", "post"):
            response = _request(bob, world, name, route, method)
            bob_status[name, method] = response.status_code
            assert snapshot(world) == before, (name, method)
            assert MARK.encode() not in _body(response), (name, method)
    alice_post = _statuses(alice, world, "post")  # last: alice's posts do change things
    alice_status = {**{(n, "get"): s for n, s in alice_get.items()}}
    alice_status |= {(n, "post"): s for n, s in alice_post.items()}
    for name, route in researcher_routes():
        for method in ("get", "post"):
            mine, theirs = alice_status[name, method], bob_status[name, method]
            assert mine not in (403, 404) and mine < 500, (name, method, mine)
            if object_of(route) is None:
                assert theirs not in (403, 404) and theirs < 500, (name, method, theirs)
            else:  # not found, as for an object that does not exist (405: method first)
                assert theirs == (405 if mine == 405 else 404), (name, method, theirs)
    acted = {n for n, r in researcher_routes() if object_of(r) and alice_post[n] == 302}
    assert acted == CHANGING


ABSENT = 987654321  # no object has this id


def _absent_path(world, name: str, route: str) -> str:
    """The route's path with an id no object has in place of the world's object's."""
    pk = getattr(world, OBJECT_BY_NAME.get(name, object_of(route))).pk
    path = path_of(world, name, route)
    return re.sub(rf"/{pk}(?=[/.?]|$)", f"/{ABSENT}", path, count=1)


@pytest.mark.django_db
def test_with_debug_on_not_yours_and_not_there_answer_the_same_404(world, settings):
    """Django's debug 404 page shows the exception's message: the 404 for another
    researcher's object must be word for word the 404 for an id no object has (paths made
    equal), else walking ids with DEBUG on tells which exist."""
    settings.DEBUG = True
    bob = _as(world.bob)
    walked = 0
    for name, route in researcher_routes():
        if object_of(route) is None:
            continue
        for method in ("get", "post"):
            theirs = _request(bob, world, name, route, method)
            absent = _absent_path(world, name, route)
            nothing = bob.get(absent) if method == "get" else bob.post(absent)
            assert (theirs.status_code, nothing.status_code) in ((404, 404), (405, 405)), (
                name,
                method,
                theirs.status_code,
                nothing.status_code,
            )
            if theirs.status_code != 404:
                continue
            mine = path_of(world, name, route).split("?")[0]
            body = theirs.content.decode().replace(mine.lstrip("/"), "PATH")
            other = nothing.content.decode().replace(absent.split("?")[0].lstrip("/"), "PATH")
            assert body == other, (name, method)
            assert "matches the given query." in body, (name, method)
            walked += 1
    assert walked >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["carol", "dora"])
def test_accounts_outside_the_researchers_group_get_403_everywhere(world, who):
    client = _as(getattr(world, who))  # dora is staff: the same rule
    before = snapshot(world)
    for name, route in researcher_routes():
        for method in ("get", "post"):
            response = _request(client, world, name, route, method)
            assert response.status_code == 403, (name, method, response.status_code)
            assert b"not a researcher account" in response.content, (name, method)
            assert snapshot(world) == before, (name, method)


@pytest.mark.django_db
def test_a_view_share_lets_a_colleague_look_but_change_nothing(world):
    share_all(world, world.bob, "view")
    alice_get = _statuses(_as(world.alice), world, "get")
    bob = _as(world.bob)
    before = snapshot(world)
    for name, route in researcher_routes():
        if object_of(route) is None:
            continue
        seen = _request(bob, world, name, route, "get").status_code
        expected = (
            404
            if name in NEVER_SHARED
            else 403
            if name in EDIT_FORMS | OWNER_PAGES
            else alice_get[name]
        )
        assert seen == expected, (name, seen)
        changed = _request(bob, world, name, route, "post").status_code
        assert snapshot(world) == before, name
        if name in CHANGING:
            assert changed == 403, (name, changed)


@pytest.mark.django_db
def test_an_edit_share_lets_a_colleague_change_but_not_share(world):
    share_all(world, world.bob, "edit")
    bob = _as(world.bob)
    for name, route in researcher_routes():
        if name not in CHANGING:
            continue
        before = snapshot(world)["shares"]
        status = _request(bob, world, name, route, "post").status_code
        if name in SHARING:
            assert status == 403 and snapshot(world)["shares"] == before, name
        else:
            assert status == 302, (name, status)
    study = Study.objects.get(pk=world.study.pk)
    assert (study.name, study.redirect_url) == ("hijacked", "https://evil.example/")
    assert Withdrawal.objects.filter(study=study).count() == 1
    assert ModelRun.objects.get(pk=world.active.pk).cancel_requested


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
