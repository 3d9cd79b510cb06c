"""Owners and sharing, page by page: lists and form choices show only what the user may
see, downloads, polls and images answer 404 to others, sharing a study does not share its
runs, the Sharing section (add, change, remove; owner only; clear refusals), superusers and
unowned objects, the data migration's rule, and ``--owner`` on the commands."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from studyplatform import demo
from studyplatform.ownership import give_unowned_rows
from survey.models import Study, StudyShare
from tests.studyplatform.access_helpers import MARK, build_world, launch_data
from worker.models import Dataset, DatasetShare, ModelRun, RunShare

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path):
    return build_world(tmp_path)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(client: Client, name: str, *args) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200, (name, response.status_code)
    return response.content.decode()


def test_lists_show_only_what_the_user_may_see(world):
    alice, bob = _as(world.alice), _as(world.bob)
    for name in ("studies", "datasets", "runs"):
        assert MARK in _page(alice, name), name
        assert MARK not in _page(bob, name), name
    StudyShare.objects.create(study=world.study, user=world.bob, level="view")
    assert f"{MARK}study" in _page(bob, "studies")
    assert MARK not in _page(bob, "runs")  # sharing a study does not share its runs


def test_a_shared_study_shows_its_analysis_but_not_its_runs(world):
    bob = _as(world.bob)
    StudyShare.objects.create(study=world.study, user=world.bob, level="view")
    assert f"{MARK}run" in _page(bob, "study_analysis", world.study.pk)
    assert bob.get(reverse("export_runs_tex", args=[world.study.pk])).status_code == 200
    assert bob.get(reverse("run_detail", args=[world.run.pk])).status_code == 404
    assert bob.get(reverse("dataset_detail", args=[world.dataset.pk])).status_code == 404


def test_form_choices_offer_only_what_the_user_may_see(world):
    bob = _as(world.bob)
    runs = bob.get(reverse("study_new")).context["form"].fields["runs"].queryset
    assert world.run not in runs
    for name in ("run_launch", "run_upload"):
        datasets = bob.get(reverse(name)).context["form"].fields["dataset"].queryset
        assert world.dataset not in datasets, name
    compare = bob.get(reverse("runs_compare") + f"?a={world.run.pk}&b={world.active.pk}")
    assert MARK not in compare.content.decode() and compare.context["a"] is None
    assert not compare.context["runs"]
    # With view access to the run and the data set, bob builds on them (as their owner).
    RunShare.objects.create(run=world.run, user=world.bob, level="view")
    DatasetShare.objects.create(dataset=world.dataset, user=world.bob, level="view")
    assert world.run in bob.get(reverse("study_new")).context["form"].fields["runs"].queryset
    launched = bob.post(reverse("run_launch"), launch_data(world, name="bob's run"))
    assert launched.status_code == 302, launched.context["form"].errors
    assert ModelRun.objects.get(name="bob's run").owner == world.bob


def test_a_colleague_with_edit_access_keeps_the_studys_runs_on_offer(world):
    StudyShare.objects.create(study=world.study, user=world.bob, level="edit")
    Study.objects.filter(pk=world.study.pk).update(status=Study.Status.DRAFT)
    form = _as(world.bob).get(reverse("study_edit", args=[world.study.pk])).context["form"]
    assert list(form.fields["runs"].queryset) == [world.run]


@pytest.mark.parametrize(
    "name",
    [
        "export_tables_csv",
        "export_tables_json",
        "export_tables_tex",
        "export_judgements_csv",
        "export_runs_tex",
        "study_analysis_json",
        "study_monitor",
    ],
)
def test_downloads_and_polls_of_a_study_are_not_found_for_others(world, name):
    url = reverse(name, args=[world.study.pk])
    assert _as(world.alice).get(url).status_code == 200
    assert _as(world.bob).get(url).status_code == 404


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_figure_downloads_are_not_found_for_others(world, fmt):
    generator = world.active.submodels.filter(role="generator").first()
    for url in (
        reverse("study_figure", args=[world.study.pk, "rates", fmt]),
        reverse("run_figure", args=[world.active.pk, generator.pk, "l1", fmt]),
    ):
        assert _as(world.alice).get(url).status_code == 200, url
        assert _as(world.bob).get(url).status_code == 404, url
    RunShare.objects.create(run=world.active, user=world.bob, level="view")
    assert _as(world.bob).get(url).status_code == 200


def test_other_downloads_polls_and_images_are_not_found_for_others(world):
    bob, alice = _as(world.bob), _as(world.alice)
    urls = [
        reverse("dataset_manifest", args=[world.dataset.pk]),
        reverse("dataset_test_zip", args=[world.dataset.pk]),
        reverse("run_outputs_zip", args=[world.run.pk]),
        reverse("dataset_image_thumbnail", args=[world.image.pk]),
        reverse("import_job_status", args=[world.job.pk]),
        reverse("run_status", args=[world.run.pk]),
        reverse("run_output_image", args=[world.output.pk]),
        reverse("run_output_truth", args=[world.output.pk]),
        reverse("study_stimulus_image", args=[world.stimulus.pk]),
        reverse("stimulus_analysis_thumbnail", args=[world.stimulus.pk]),
    ]
    for url in urls:
        assert alice.get(url).status_code == 200, url
        assert bob.get(url).status_code == 404, url
    ids = f"?ids={world.run.pk},{world.active.pk}"
    assert bob.get(reverse("runs_status") + ids).json()["runs"] == []
    assert len(alice.get(reverse("runs_status") + ids).json()["runs"]) == 2


def _sharing(client: Client, world, username: str, level: str) -> list[str]:
    response = client.post(
        reverse("study_sharing", args=[world.study.pk]),
        {"username": username, "level": level},
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


def _shares(world) -> list[tuple[str, str]]:
    return sorted(world.study.shares.values_list("user__username", "level"))


def test_the_owner_adds_changes_and_removes_a_colleague(world):
    alice = _as(world.alice)
    assert _sharing(alice, world, "bob", "view") == ["Shared with “bob”: view."]
    assert _shares(world) == [("bob", "view")]
    page = _page(alice, "study_detail", world.study.pk)
    assert "Sharing" in page and ">bob<" in page
    assert _sharing(alice, world, "bob", "edit") == ["Changed the access of “bob”: edit."]
    assert _shares(world) == [("bob", "edit")]
    assert _sharing(alice, world, "bob", "remove") == ["“bob” no longer has access."]
    assert _shares(world) == []
    assert _as(world.bob).get(reverse("study_detail", args=[world.study.pk])).status_code == 404


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("nobody", "There is no account named “nobody”."),
        ("alice", "You cannot share with yourself."),
        ("carol", "“carol” is not a researcher account"),
        ("dora", "“dora” is not a researcher account"),
    ],
)
def test_sharing_refusals_say_why(world, username, message):
    messages = _sharing(_as(world.alice), world, username, "view")
    assert len(messages) == 1 and messages[0].startswith("Sharing unchanged: ")
    assert message in messages[0]
    assert _shares(world) == []


def test_only_the_owner_manages_sharing(world):
    StudyShare.objects.create(study=world.study, user=world.bob, level="edit")
    bob = _as(world.bob)
    page = _page(bob, "study_detail", world.study.pk)
    assert "Sharing" in page and '<span class="status">edit</span>' in page
    assert 'name="username"' not in page  # no management forms for a colleague
    assert reverse("study_edit", args=[world.study.pk]) in page  # edit: the study's buttons
    StudyShare.objects.filter(user=world.bob).update(level="view")
    page = _page(bob, "study_detail", world.study.pk)
    for name in ("study_edit", "study_close", "study_withdraw"):
        assert reverse(name, args=[world.study.pk]) not in page, name  # view only
    StudyShare.objects.filter(user=world.bob).update(level="edit")
    url = reverse("study_sharing", args=[world.study.pk])
    assert bob.post(url, {"username": "erin", "level": "edit"}).status_code == 403
    assert bob.post(url, {"username": "bob", "level": "remove"}).status_code == 403
    assert _shares(world) == [("bob", "edit")]


def test_each_detail_page_has_its_sharing_section(world):
    alice = _as(world.alice)
    for name, obj in [("dataset", world.dataset), ("run", world.run)]:
        page = _page(alice, f"{name}_detail", obj.pk)
        assert reverse(f"{name}_sharing", args=[obj.pk]) in page, name
        response = alice.post(
            reverse(f"{name}_sharing", args=[obj.pk]), {"username": "bob", "level": "view"}
        )
        assert response.status_code == 302 and obj.shares.get().user == world.bob


def test_superusers_see_everything(world):
    root = get_user_model().objects.create_superuser("root", password="a-long-Passphrase-1")
    client = _as(root)  # not in the researchers group: superusers pass anyway
    assert f"{MARK}study" in _page(client, "studies")
    assert client.get(reverse("study_edit", args=[world.study.pk])).status_code == 200


def test_unowned_objects_are_for_staff_researchers_only(world):
    Dataset.objects.filter(pk=world.dataset.pk).update(owner=None)
    url = reverse("dataset_detail", args=[world.dataset.pk])
    assert _as(world.alice).get(url).status_code == 404
    world.bob.is_staff = True
    world.bob.save()
    assert _as(world.bob).get(url).status_code == 200


def test_the_migration_gives_old_rows_to_their_researcher_creator_else_the_oldest(world):
    Dataset.objects.update(owner=None, created_by=world.carol)  # not a researcher
    ModelRun.objects.filter(pk=world.run.pk).update(owner=None, created_by=world.bob)
    ModelRun.objects.filter(pk=world.active.pk).update(owner=None, created_by=None)
    give_unowned_rows(apps, "worker", "Dataset")
    give_unowned_rows(apps, "worker", "ModelRun")
    assert Dataset.objects.get().owner == world.alice  # the oldest researcher
    assert ModelRun.objects.get(pk=world.run.pk).owner == world.bob
    assert ModelRun.objects.get(pk=world.active.pk).owner == world.alice


def test_the_migration_leaves_rows_unowned_without_researchers():
    get_user_model().objects.create_user("carol")
    dataset = Dataset.objects.create(name="old", source="zip")
    give_unowned_rows(apps, "worker", "Dataset")
    dataset.refresh_from_db()
    assert dataset.owner is None


def test_commands_take_an_owner(world):
    args = ["--per-category", "2", "--size", "16"]
    call_command("make_synthetic", *args, "--name", "bobs", "--owner", "bob")
    assert Dataset.objects.get(name="bobs").owner == world.bob
    for who, error in [("carol", "not a researcher account"), ("zed", "no account named")]:
        with pytest.raises(CommandError, match=error):
            call_command("make_synthetic", *args, "--name", "x", "--owner", who)
    assert not Dataset.objects.filter(name="x").exists()
    call_command("run_launch", "--dataset", f"{MARK}data", "--name", "cmd", "--owner", "bob")
    assert ModelRun.objects.get(name="cmd").owner == world.bob


def test_the_demo_belongs_to_the_demo_researcher():
    # No worker here: the runs are launched (their tasks would go on commit) and not trained.
    researcher = get_user_model().objects.create_user("researcher")
    state = demo.demo_advance(config=demo.TINY)
    assert state.dataset.owner == researcher and state.study.owner == researcher
    assert {run.owner for run in state.runs} == {researcher}


@pytest.mark.parametrize(
    "action, words",
    [
        ("study_prepare", "you cannot see 1 of its runs"),
        ("study_open", "you cannot see 1 of its runs"),
        ("study_pilot", "Not opened as a pilot: you cannot see 1 of its runs"),
    ],
)
def test_a_colleague_whose_share_of_a_run_is_taken_back_cannot_make_stimuli_of_it(
    world, action, words
):
    """bob made a draft of alice's run while it was shared with him; once alice takes the
    share back, bob's draft may not prepare (then download) stimuli of it, open or pilot."""
    from survey.services.studies import study_create

    RunShare.objects.create(run=world.run, user=world.bob, level="view")
    draft = study_create(name="bob-draft", runs=[world.run], user=world.bob)
    RunShare.objects.filter(run=world.run, user=world.bob).delete()
    response = _as(world.bob).post(reverse(action, args=[draft.pk]), follow=True)
    assert words in " ".join(str(m) for m in response.context["messages"])
    # A colleague bob gave edit access acts for him: it is bob's access that counts.
    StudyShare.objects.create(study=draft, user=world.erin, level="edit")
    response = _as(world.erin).post(reverse(action, args=[draft.pk]), follow=True)
    told = " ".join(str(m) for m in response.context["messages"])
    assert "its owner can no longer see 1 of its runs" in told
    draft.refresh_from_db()
    assert draft.status == Study.Status.DRAFT and not draft.stimuli.exists()
