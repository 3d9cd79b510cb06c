"""A world for the access tests: two researchers (alice owns everything, bob and erin own nothing),
a non-researcher (carol) and a staff account outside the researchers group (dora); alice's
data set, a finished run with colourised images, an active run, an open study with stimuli
and a participant, and an import. Also: what no refused request may change (a snapshot of
the database), and every researcher route filled with the real objects' ids."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver

from studyplatform.researchers import researcher_create
from survey.models import Participant, Stimulus, Study, StudyShare, Trial, Withdrawal
from survey.services.assignment import participant_start
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from tests.worker.runs_helpers import queued_run
from worker.forms import RunLaunchForm
from worker.models import (
    ColourisedImage,
    Dataset,
    DatasetImage,
    DatasetShare,
    ImportJob,
    ModelRun,
    RunShare,
    SubModel,
)

PASSWORD = "a-long-Passphrase-1"
#: Every name of alice's objects starts with this: a page that shows it to bob leaks.
MARK = "alice-"

#: The only pages open without a login: the participants' (reached by unguessable ids),
#: the health check, the favicon (browsers ask for it on every page) and the login page
#: itself. Anything else added to the URLs must require a researcher's login, or this list
#: must say why not.
PUBLIC = {
    "study_landing",
    "participant_page",
    "participant_answer",
    "participant_image",
    "participant_done",
    "participant_stop",
    "participant_pair_image",
    "participant_screen",
    "participant_screen_plate",
    "participant_mask",
    "healthz",
    "favicon",
    "login",
    "logout",
}
#: Pages of one's own account, open to every logged-in account (a researcher's or not):
#: changing one's own password shows nothing of anyone's work.
ACCOUNT = {"password_change", "password_change_done"}

#: Which of the world's objects fills a route's ``<int:pk>``, by the route's start (None:
#: the route's parameters name no object).
OBJECT_BY_PREFIX = [
    ("datasets/images/", "image"),
    ("datasets/imports/", "job"),
    ("datasets/", "dataset"),
    ("runs/outputs/", "output"),
    ("runs/<int:pk>/cancel/", "active"),
    ("runs/<int:pk>/figures/", "active"),
    ("runs/", "run"),
    ("studies/stimuli/", "stimulus"),
    ("studies/plan/", None),  # the sample-size planner: of no study, open to every researcher
    ("studies/", "study"),
]

#: The figure each figure download's route is walked with.
FIGURE_NAMES = {"study_figure": "rates", "run_figure": "l1"}

#: Imports are seen by whoever started them only: sharing the data set does not share them.
NEVER_SHARED = {"import_job", "import_job_status", "import_job_delete"}

#: The POSTs that change an object, or build on it (duplicating a study), refused below the
#: edit level (sharing: owner only).
CHANGING = {
    "dataset_archive",
    "run_archive",
    "study_archive",
    "study_duplicate",
    "study_edit",
    "study_open",
    "study_prepare",
    "study_close",
    "study_pilot",
    "study_pilot_remove",
    "study_withdraw",
    "study_sharing",
    "run_cancel",
    "run_sharing",
    "dataset_sharing",
}
SHARING = {"study_sharing", "run_sharing", "dataset_sharing"}
#: Pages that show a form to change an object: below the edit level, 403 even to look.
EDIT_FORMS = {"study_edit"}
#: Pages for the owner only, even to look: deleting (the walk's POSTs do not confirm, so
#: they show the confirmation page; the deletions themselves are tested apart).
OWNER_PAGES = {"dataset_delete", "run_delete", "study_delete"}


@dataclass
class World:
    alice: object
    bob: object
    erin: object
    carol: object
    dora: object
    dataset: Dataset
    image: DatasetImage
    run: ModelRun
    active: ModelRun
    output: ColourisedImage
    study: Study
    stimulus: Stimulus
    participant: Participant
    job: ImportJob
    #: Studies of the protocols whose exports are theirs alone (a single-image study's
    #: ratings.csv or bradley-terry.json are not found).
    rating_study: Study
    preference_study: Study


def build_world(tmp_path: Path) -> World:
    alice = researcher_create(username="alice", password=PASSWORD)
    bob = researcher_create(username="bob", password=PASSWORD)
    erin = researcher_create(username="erin", password=PASSWORD)
    users = get_user_model().objects
    carol = users.create_user("carol", password=PASSWORD)
    dora = users.create_user("dora", password=PASSWORD, is_staff=True)
    dataset = tiny_dataset(f"{MARK}data", per_category=10, size=32, owner=alice)
    run = uploaded_run(dataset, tmp_path, name=f"{MARK}run", owner=alice)
    active = queued_run(dataset, name=f"{MARK}active", owner=alice)
    # With the colour-vision screen: its preview's plates are pages of the study too.
    study = open_study([run], owner=alice, images_per_participant=2, colour_screen=True)
    study.name = f"{MARK}study"
    study.save(update_fields=["name"])
    rating_study = open_study(
        [run],
        owner=alice,
        protocol=Study.Protocol.RATING,
        images_per_participant=2,
        practice_trials=0,
        attention_checks=0,
    )
    cool = uploaded_run(dataset, tmp_path, name=f"{MARK}run2", style="cool", owner=alice)
    preference_study = open_study(
        [run, cool],
        owner=alice,
        protocol=Study.Protocol.PREFERENCE,
        design=Study.Design.WITHIN,
        images_per_participant=2,
        practice_trials=0,
        attention_checks=0,
    )
    job = ImportJob.objects.create(
        name=f"{MARK}import",
        upload="uploads/x.zip",
        original_filename="x.zip",
        status=ImportJob.Status.DONE,
        dataset=dataset,
        created_by=alice,
    )
    return World(
        alice=alice,
        bob=bob,
        erin=erin,
        carol=carol,
        dora=dora,
        dataset=dataset,
        image=dataset.images.order_by("pk").first(),
        run=run,
        active=active,
        output=run.outputs.order_by("pk").first(),
        study=study,
        stimulus=study.stimuli.order_by("pk").first(),
        participant=participant_start(study=study, prolific_pid="p1"),
        job=job,
        rating_study=rating_study,
        preference_study=preference_study,
    )


def share_all(world: World, user, level: str) -> None:
    """Share alice's data set, runs and study with ``user`` at ``level``."""
    DatasetShare.objects.create(dataset=world.dataset, user=user, level=level)
    for run in (world.run, world.active):
        RunShare.objects.create(run=run, user=user, level=level)
    for study in (world.study, world.rating_study, world.preference_study):
        StudyShare.objects.create(study=study, user=user, level=level)


def snapshot(world: World) -> dict:
    """What a refused request must leave as it was."""
    study = Study.objects.get(pk=world.study.pk)
    return {
        "study": (
            study.name,
            study.consent_text,
            study.instructions,
            study.redirect_url,
            study.status,
            study.target_participants_per_condition,
            study.owner_id,
        ),
        "studies": sorted(Study.objects.values_list("pk", "name", "status", "archived_at")),
        "runs": sorted(
            ModelRun.objects.values_list("pk", "name", "status", "cancel_requested", "archived_at")
        ),
        "submodels": sorted(SubModel.objects.values_list("pk", "status")),
        "datasets": sorted(Dataset.objects.values_list("pk", "name", "owner_id", "archived_at")),
        "jobs": sorted(ImportJob.objects.values_list("pk", "status")),
        "participants": sorted(Participant.objects.values_list("pk", "withdrawn_at")),
        "trials": Trial.objects.count(),
        "withdrawals": Withdrawal.objects.count(),
        "stimuli": Stimulus.objects.count(),
        "shares": sorted(
            [("d", *s) for s in DatasetShare.objects.values_list("dataset", "user", "level")]
            + [("r", *s) for s in RunShare.objects.values_list("run", "user", "level")]
            + [("s", *s) for s in StudyShare.objects.values_list("study", "user", "level")]
        ),
    }


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry.name, prefix + str(entry.pattern)


def researcher_routes() -> list[tuple[str, str]]:
    return [
        (name, route) for name, route in _patterns(get_resolver()) if name not in PUBLIC | ACCOUNT
    ]


#: Routes of one protocol's study only: filled with the world's study of that protocol.
OBJECT_BY_NAME = {
    "export_ratings_csv": "rating_study",
    "export_mos_csv": "rating_study",
    "export_mos_json": "rating_study",
    "export_preference_judgements_csv": "preference_study",
    "export_preference_scores_json": "preference_study",
    "export_preference_scores_csv": "preference_study",
    "export_preference_scores_tex": "preference_study",
}


def object_of(route: str) -> str | None:
    """The world's attribute that fills ``route``'s parameter (None: it has none, or its
    parameters name no object)."""
    if "<" not in route:
        return None
    for prefix, attribute in OBJECT_BY_PREFIX:
        if route.startswith(prefix):
            return attribute
    raise AssertionError(f"{route}: say which object fills it in OBJECT_BY_PREFIX")


def path_of(world: World, name: str, route: str) -> str:
    """The route with the real object's id (and alice's ids in the query strings)."""
    attribute = object_of(route)
    path = "/" + route
    if "<int:submodel>" in path:  # a run's figure: of its first generator
        generator = world.active.submodels.filter(role="generator").order_by("pk").first()
        path = path.replace("<int:submodel>", str(generator.pk))
    path = path.replace("<slug:name>", FIGURE_NAMES.get(name, "")).replace("<slug:fmt>", "svg")
    path = path.replace("<int:position>.png", "1.png")  # a preview's first screen plate
    path = path.replace("<int:number>", str(world.participant.pk))  # the study's participant
    attribute = OBJECT_BY_NAME.get(name, attribute)
    if attribute is not None:
        path = re.sub(r"<int:\w+>", str(getattr(world, attribute).pk), path)
    assert "<" not in path, path
    if name == "runs_compare":
        path += f"?a={world.run.pk}&b={world.active.pk}"
    if name == "study_bonuses":
        path += "?per_correct=0.05"
    if name == "runs_status":
        path += f"?ids={world.run.pk},{world.active.pk}"
    if name == "study_plan_figure":  # a small plan: the figure of a filled-in planner
        path += (
            "?goal=equivalence&rate=0.5&margin=0.1&alpha=0.05&power=0.8&participant_sd=0"
            "&image_sd=0&images_per_participant=8&pool=20&simulations=5&seed=1"
        )
    return path


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return buffer.getvalue()


def launch_data(world: World, name: str = "launched") -> dict:
    """The launch form as a browser posts it with its defaults, on alice's data set."""
    form = RunLaunchForm()
    data = {}
    for field in form.fields:
        value = form[field].initial
        if isinstance(value, bool):
            if value:
                data[field] = "on"
        elif value is not None:
            data[field] = value
    return data | {"name": name, "dataset": world.dataset.pk, "kind": "baseline"}


def post_data(world: World, name: str) -> dict:
    """What each POST sends: real values that would change alice's objects if accepted
    (sharing: give erin, a third researcher, edit access)."""
    study_fields = {
        "name": "hijacked",
        "consent_text": "changed consent",
        "instructions": "changed",
        "redirect_url": "https://evil.example/",
        "target_participants_per_condition": 1,
    }
    data = {
        "study_new": study_fields
        | {
            "runs": [world.run.pk],
            "design": "between",
            "images_per_participant": 2,
            "practice_trials": 0,
            "attention_checks": 0,
            "exposure_ms": "",
        },
        "study_edit": study_fields,
        "study_pilot_remove": {"confirm": "yes"},
        "study_withdraw": {
            "who": world.participant.public_id,
            "reason": "by someone else",
            "confirm": "yes",
        },
        "study_sharing": {"username": world.erin.username, "level": "edit"},
        "study_archive": {"action": "archive"},
        "run_archive": {"action": "archive"},
        "dataset_archive": {"action": "archive"},
        "run_sharing": {"username": world.erin.username, "level": "edit"},
        "dataset_sharing": {"username": world.erin.username, "level": "edit"},
        "run_launch": launch_data(world),
        "run_upload": {
            "name": "uploaded",
            "dataset": world.dataset.pk,
            "colour_space": "lab",
            "archive": SimpleUploadedFile("run.zip", _zip({"manifest.csv": b"file,image_id\n"})),
        },
        "dataset_upload": {
            "name": "upload",
            "seed": 0,
            "archive": SimpleUploadedFile("photos.zip", b"not a zip"),
        },
    }
    return data.get(name, {})
