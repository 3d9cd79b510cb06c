"""Pre-registration and the reproduction bundle (survey.preregistration, survey.bundle).

A real study (two uploaded runs, participants who answered through the services) is opened:
its pre-registration is frozen in the opening's transaction (never at a pilot opening),
holds the SHA-256 of every stimulus and uploaded file, never changes, and its hash is on
the study's page. The bundle is downloaded, extracted, and both of its scripts run on its
judgements.csv: ``python analysis.py`` must give the platform's numbers (its engine is a
copy of the platform's, so these compare the code with itself, to printed precision), and
``Rscript analysis.R`` (lme4's glmer) must agree with them within the issue's tolerances
(intercept 0.02 logit, its SE 5 %, random-effect SDs 0.05) and exactly on the pooled
numbers."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse

from studyplatform.researchers import researcher_create
from studyplatform.sharing import share_set
from survey.analysis.display import number, pct
from survey.inference import analyse_rows, read_rows
from survey.models import PreRegistration, Study
from survey.preregistration import (
    FOOLING_FORMULA,
    JOINT_FORMULA,
    SDT_FORMULA,
    canonical_bytes,
    document_sha256,
)
from survey.services.studies import study_create, study_open, study_open_pilot, study_update
from tests.survey.analysis_helpers import take_part
from tests.survey.study_helpers import tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passphrase-1"
PARTICIPANTS = 40  # per condition (between subjects)


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password=PASSWORD)
    client.force_login(user)
    return user


def _runs(tmp_path, owner, per_category: int):
    dataset = tiny_dataset("syn", per_category=per_category, size=32, owner=owner)
    return [
        uploaded_run(dataset, tmp_path, name="warm run", owner=owner),
        uploaded_run(dataset, tmp_path, name="cool run", style="cool", owner=owner),
    ]


@pytest.fixture
def runs(tmp_path, ada):
    """12 test scenes: 10 main ones per condition besides the practice and the check."""
    return _runs(tmp_path, ada, 20)


def _draft(runs, ada, **fields) -> Study:
    fields = {
        "images_per_participant": 8,
        "practice_trials": 1,
        "attention_checks": 1,
        "hypotheses": "H1: people cannot tell the warm run's images from photographs.\n"
        "H2: the cool run fools fewer people.",
        "equivalence_margin": 0.1,
        **fields,
    }
    return study_create(
        name="Bundle study", runs=runs, labels=["warm", "cool & co_1"], user=ada, **fields
    )


def _rule(seed: int = 5):
    """Answers from a crossed-random-effects model (a signal-detection one): each
    participant's bias towards "Real" and skill, and each image's realism, drawn once (a
    fixed seed); the answer drawn per judgement. The warm run's images look more real."""
    rng = np.random.default_rng(seed)
    people: dict[int, tuple[float, float]] = {}
    realism: dict[tuple[int, bool], float] = {}

    def rule(i: int, trial) -> str:
        s = trial.stimulus
        if i not in people:
            people[i] = (rng.normal(0, 0.5), rng.normal(0.6, 0.9))
        key = (s.scene_id, s.is_real)
        if key not in realism:
            realism[key] = rng.normal(0, 0.6)
        bias, skill = people[i]
        shift = 0.0 if s.is_real else (0.5 if s.condition.label == "warm" else -0.2)
        eta = bias + realism[key] + shift + skill * (0.5 if s.is_real else -0.5)
        return "real" if rng.random() < 1 / (1 + math.exp(-eta)) else "ai"

    return rule


@pytest.fixture
def answered(tmp_path, ada):
    """24 test scenes (22 main ones per condition), 40 participants per condition."""
    study = study_open(study=_draft(_runs(tmp_path, ada, 40), ada))
    rule = _rule()
    for i in range(2 * PARTICIPANTS):
        take_part(study, i, rule=rule)
    take_part(study, 999, attention="real")  # excluded: failed the attention check
    return study


# --------------------------------------------------------------------------------------------
# The pre-registration
# --------------------------------------------------------------------------------------------


def _sha_of_stored(name: str) -> str:
    with default_storage.open(name, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_opening_freezes_the_preregistration_with_every_file_hashed(runs, ada):
    study = study_open(study=_draft(runs, ada))
    prereg = PreRegistration.objects.get(study=study)
    doc = json.loads(prereg.document)
    assert prereg.document.encode() == canonical_bytes(doc)
    assert prereg.sha256 == hashlib.sha256(prereg.document.encode()).hexdigest()
    assert prereg.sha256 == document_sha256(doc)
    assert doc["hypotheses"] == study.hypotheses
    assert doc["analysis_plan"]["equivalence"]["margin"] == 0.1
    assert doc["analysis_plan"]["equivalence"]["alpha"] == 0.05
    assert doc["planned_sample"]["participants_per_condition"] == 104
    assert doc["planned_sample"]["participants"] == 208
    assert doc["design"]["images_per_participant"] == 8
    assert doc["design"]["wording"]["question"]
    assert doc["exclusion"]["attention_checks"] == 1
    assert any("attention check" in rule.lower() for rule in doc["exclusion"]["rules"])
    stimuli = {s["stimulus"]: s for s in doc["stimuli"]}
    assert set(stimuli) == set(study.stimuli.values_list("pk", flat=True))
    for stimulus in study.stimuli.all():
        assert stimuli[stimulus.pk]["sha256"] == _sha_of_stored(stimulus.file)
    for run, record in zip(runs, doc["model_runs"], strict=True):
        uploaded = {u["image_id"]: u["sha256"] for u in record["uploaded_files"]}
        assert len(uploaded) == run.outputs.count()
        for output in run.outputs.all():
            assert uploaded[output.source_id] == _sha_of_stored(output.file)
    md = prereg.markdown
    assert "H2: the cool run fools fewer people." in md
    assert prereg.sha256 in md and FOOLING_FORMULA in md


def test_a_trained_runs_checkpoints_are_hashed_in_pieces(monkeypatch):
    """Each stored weight file of a trained run is hashed with its size, read a piece at
    a time (never whole); one missing from storage is said so, not hashed."""
    from django.core.files.base import ContentFile

    from survey import preregistration
    from worker.models import Dataset, ModelRun, SubModel

    dataset = Dataset.objects.create(name="d", source="synthetic", seed=3)
    run = ModelRun.objects.create(
        name="trained", kind="baseline", colour_space="lab", dataset=dataset, config={"seed": 7}
    )
    data = bytes(range(256)) * 12_289  # about 3 MiB
    best = default_storage.save("runs/t/best.pt", ContentFile(data))
    SubModel.objects.create(
        run=run, role="generator", artefacts={"best": best, "checkpoint": "runs/t/gone.pt"}
    )
    reads: list[int] = []
    opened = default_storage.open

    class Spy:
        def __init__(self, stream):
            self.stream = stream

        def read(self, size=-1):
            reads.append(size)
            return self.stream.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    def spying_open(name, mode="rb"):
        return Spy(opened(name, mode))

    monkeypatch.setattr(default_storage, "open", spying_open)
    record = preregistration._run(run)
    assert record["config"] == {"seed": 7} and record["dataset"]["seed"] == 3
    by_kind = {c["artefact"]: c for c in record["checkpoints"]}
    assert by_kind["best"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_kind["best"]["bytes"] == len(data)
    assert by_kind["checkpoint"]["sha256"] is None
    assert by_kind["checkpoint"]["note"] == "missing from storage"
    assert reads and all(0 < size <= preregistration.HASH_CHUNK for size in reads)


def test_the_formulas_are_those_the_inference_fits():
    """The plan names the models survey.inference fits, word for word."""
    lines = ["participant,image,condition,truth,answer"]
    for p in range(6):
        for image in range(4):
            for truth in ("real", "ai"):
                for condition in ("a", "b"):
                    answer = "real" if (p + image + (truth == "ai")) % 3 else "ai"
                    lines.append(f"p{p},{image},{condition},{truth},{answer}")
    result = analyse_rows(read_rows(lines))
    assert result.conditions[0].glmm.formula == FOOLING_FORMULA
    assert result.conditions[0].sdt.formula == SDT_FORMULA
    assert result.joint.formula == JOINT_FORMULA


def test_the_preregistration_never_changes(runs, ada):
    study = study_open(study=_draft(runs, ada))
    prereg = PreRegistration.objects.get(study=study)
    before = (prereg.document, prereg.markdown, prereg.sha256)
    prereg.markdown = "edited"
    with pytest.raises(ValidationError, match="never changes"):
        prereg.save()
    with pytest.raises(ValidationError, match="never changes"):
        PreRegistration.objects.filter(pk=prereg.pk).update(markdown="edited")
    # The study's own analysis plan cannot change once open either (its fields are frozen).
    from survey.services.errors import StudyError

    with pytest.raises(StudyError, match="cannot change"):
        study_update(study=study, fields={"equivalence_margin": 0.2})
    # Closing and reopening keeps the pre-registration.
    study.status = Study.Status.CLOSED
    study.save(update_fields=["status"])
    study_open(study=study)
    again = PreRegistration.objects.get(study=study)
    assert (again.document, again.markdown, again.sha256) == before
    assert PreRegistration.objects.filter(study=study).count() == 1


def test_a_pilot_opening_does_not_freeze_opening_for_real_does(runs, ada):
    study = _draft(runs, ada)
    from survey.services.stimuli import study_prepare_stimuli

    study_prepare_stimuli(study=study)
    study = study_open_pilot(study=study)
    assert not PreRegistration.objects.filter(study=study).exists()
    study = study_open(study=study)
    assert PreRegistration.objects.filter(study=study).exists()


@pytest.mark.django_db(transaction=True)
def test_a_study_opened_by_the_worker_freezes_in_that_transaction(runs, ada):
    from survey.services.stimuli import study_request_open
    from tests.worker.worker_processes import purge_queues, thread_worker, wait_for

    purge_queues()
    study = _draft(runs, ada)
    study_request_open(study=study)
    assert Study.objects.get(pk=study.pk).status == Study.Status.PREPARING
    assert not PreRegistration.objects.filter(study=study).exists()
    with thread_worker():
        wait_for(
            lambda: Study.objects.get(pk=study.pk).status == Study.Status.OPEN,
            "the study opened",
        )
    prereg = PreRegistration.objects.get(study=study)
    assert len(json.loads(prereg.document)["stimuli"]) == study.stimuli.count() > 0


def test_the_study_page_shows_the_hash_and_the_downloads(client, runs, ada):
    draft = _draft(runs, ada)
    page = client.get(reverse("study_detail", args=[draft.pk])).content.decode()
    assert "frozen when the study opens for real" in page
    study = study_open(study=draft)
    prereg = PreRegistration.objects.get(study=study)
    page = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert prereg.sha256 in page
    json_url = reverse("study_preregistration_json", args=[study.pk])
    md_url = reverse("study_preregistration_md", args=[study.pk])
    assert json_url in page and md_url in page and reverse("study_bundle", args=[study.pk]) in page
    body = client.get(json_url).content
    assert hashlib.sha256(body).hexdigest() == prereg.sha256  # sha256sum of the download
    assert client.get(md_url).content.decode() == prereg.markdown


def test_only_researchers_who_may_see_the_study_get_the_downloads(client, runs, ada):
    study = study_open(study=_draft(runs, ada))
    urls = [
        reverse(name, args=[study.pk])
        for name in ("study_preregistration_json", "study_preregistration_md", "study_bundle")
    ]
    bob = researcher_create(username="bob", password=PASSWORD)
    client.force_login(bob)
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    share_set(obj=study, username="bob", level="view", by=ada)
    assert [client.get(url).status_code for url in urls[:2]] == [200, 200]
    # A colleague with view access gets the bundle too; with no judgements yet it still
    # holds the pre-registration, the empty tables and the scripts, and says so.
    response = client.get(urls[2])
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        names = set(zf.namelist())
        tables = json.loads(zf.read(f"study-{study.pk}/tables/tables.json"))
    assert {f"study-{study.pk}/{n}" for n in ("preregistration.json", "analysis.R")} <= names
    assert tables["mixed_models"] == {
        "computed": False,
        "reason": "no judgements are counted yet",
    }
    client.logout()
    assert client.get(urls[2])["Location"].startswith(reverse("login"))


def test_a_draft_has_no_preregistration_to_download(client, runs, ada):
    draft = _draft(runs, ada)
    response = client.get(reverse("study_preregistration_json", args=[draft.pk]))
    assert response.status_code == 404


# --------------------------------------------------------------------------------------------
# The bundle and its scripts
# --------------------------------------------------------------------------------------------


def _extract(client, study: Study, folder: Path) -> Path:
    response = client.get(reverse("study_bundle", args=[study.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="study-{study.pk}-bundle.zip"' in response["Content-Disposition"]
    assert response.streaming  # sent from a temporary file
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        zf.extractall(folder)
    return folder / f"study-{study.pk}"


def _run(command: list[str], cwd: Path) -> dict:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _rscript() -> str:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript with lme4 is needed: install it with scripts/ensure-r.sh.")
    return rscript


def _by(items, key):
    return {item[key]: item for item in items}


def _close(a, b, tol=1e-9):
    assert a is not None and b is not None, (a, b)
    assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), (a, b)


GLMM_KEYS = ("intercept", "intercept_se", "participant_sd", "image_sd", "fooling_rate")
POOLED = ("fooling_rate", "ai_judged_real_rate", "real_judged_ai_rate", "accuracy")


def _same_pooled(mine: dict, page: dict) -> None:
    """The pooled numbers of one condition: cells exactly, the rest to 1e-9."""
    assert mine["cells"] == page["cells"]
    t, p = mine["table"], page["table"]
    assert t["n"] == p["n"]
    for key in ("chi2_pearson", "p_pearson", "chi2_yates", "p_yates", "fisher_p"):
        _close(t[key], p[key])
    for rate in POOLED:
        _close(t[rate], p[rate])
        for kind in ("wilson", "exact"):
            for a, b in zip(t["intervals"][rate][kind], p["intervals"][rate][kind], strict=True):
                _close(a, b)
    for name, test in t["binomial_tests"].items():
        _close(test["p_value"], p["binomial_tests"][name]["p_value"])
    s, q = mine["sdt"], page["sdt"]
    assert s["n_participants"] == q["n_participants"]
    for key in ("mean_d_prime", "mean_criterion"):
        _close(s[key], q[key])
    for key in ("d_prime_interval", "criterion_interval"):
        _close(s[key]["low"], q[key]["low"])
        _close(s[key]["high"], q[key]["high"])


def _same_tost(mine: dict, page: dict) -> None:
    for key in ("p", "p_low", "p_high", "p_two_sided"):
        _close(mine[key], page[key])
    assert mine["equivalent"] == page["equivalent"]
    assert mine["verdict"] == page["verdict"]


def _check_failures(root: Path) -> None:
    """Both scripts say in words when a model cannot be fitted (a condition whose every
    answer is right) and refuse a file without an ``answer`` column, naming it."""
    with (root / "data" / "judgements.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    for r in rows:
        if r["condition"] == "warm":
            r["answer"] = r["truth"]
    constant, broken = root / "constant.csv", root / "broken.csv"
    for path, columns in (
        (constant, list(rows[0])),
        (broken, [c for c in rows[0] if c != "answer"]),
    ):
        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    for command in ([sys.executable, "analysis.py"], [_rscript(), "analysis.R"]):
        result = _by(
            _run([*command, str(constant)], root)["mixed_models"]["conditions"], "condition"
        )
        warm = result["warm"]
        assert warm["glmm"]["converged"] is False
        assert any("could not be fitted" in w for w in warm["glmm"]["warnings"]), warm["glmm"]
        assert warm["verdict"] == warm["tost"]["verdict"]  # the exact test carries it
        refused = subprocess.run([*command, str(broken)], cwd=root, capture_output=True, text=True)
        assert refused.returncode != 0 and "answer" in refused.stderr, refused.stderr


def _check_bundle(client, study: Study, tmp_path: Path, labels: set[str], *, glmer: bool):
    """Download and extract the bundle, check its contents, run both scripts and compare
    their numbers with tables.json and the dashboard's printed ones; ``glmer``: compare
    R's glmer estimates with the page's too (within the issue's tolerances)."""
    root = _extract(client, study, tmp_path)
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    expected = {
        "README.txt",
        "preregistration.md",
        "preregistration.json",
        "data/judgements.csv",
        "tables/tables.csv",
        "tables/tables.json",
        "tables/tables.tex",
        "tables/runs.tex",
        "tables/participants.csv",
        "tables/images.csv",
        "tables/image-realism.csv",
        "analysis.R",
        "analysis.py",
        "figures/rates.svg",
        "figures/rates.pdf",
    }
    assert expected <= names, expected - names
    readme = (root / "README.txt").read_text()
    for name in names - {"README.txt"}:
        assert name in readme, name
    prereg = PreRegistration.objects.get(study=study)
    assert hashlib.sha256((root / "preregistration.json").read_bytes()).hexdigest() == (
        prereg.sha256
    )
    assert prereg.sha256 in readme
    assert "from survey" not in (root / "analysis.py").read_text()  # standalone

    page = json.loads((root / "tables" / "tables.json").read_text())
    mixed_page = page["mixed_models"]
    assert mixed_page["computed"], mixed_page
    # The numbers as the dashboard prints them (the live data the page polls).
    fields = json.loads(client.get(reverse("study_analysis_json", args=[study.pk])).content)[
        "fields"
    ]

    env_python = _run([sys.executable, "analysis.py"], root)
    env_r = _run([_rscript(), "analysis.R"], root)
    pages = _by(page["conditions"], "label")
    for result in (env_python, env_r):
        assert result["mixed_models"]["margin"] == 0.1  # the study's δ, from the plan
        mine = _by(result["conditions"], "label")
        assert set(mine) == set(pages) == labels
        for label, c in pages.items():
            _same_pooled(mine[label], c)
            t, key = mine[label]["table"], f"c{c['condition_id']}"
            assert fields[f"{key}-n"] == str(t["n"])
            assert fields[f"{key}-fooling_rate"] == pct(t["fooling_rate"])
            assert fields[f"{key}-chi2"] == number(t["chi2_pearson"], 4)
        models = _by(result["mixed_models"]["conditions"], "condition")
        for label, reference in _by(mixed_page["conditions"], "condition").items():
            m = models[label]
            for key in ("n_judgements", "n_participants", "n_images", "fooled"):
                assert m[key] == reference[key], key
            _close(m["fooling_rate"], reference["fooling_rate"])
            for a, b in zip(
                m["fooling_rate_wilson"], reference["fooling_rate_wilson"], strict=True
            ):
                _close(a, b)
            _same_tost(m["tost"], reference["tost"])

    # analysis.py: the platform's engine, so the platform's numbers (code against itself).
    models = _by(env_python["mixed_models"]["conditions"], "condition")
    for label, reference in _by(mixed_page["conditions"], "condition").items():
        for key in GLMM_KEYS:
            _close(models[label]["glmm"][key], reference["glmm"][key], 1e-6)
        for key in ("d_prime", "criterion", "d_prime_se"):
            _close(models[label]["sdt"][key], reference["sdt"][key], 1e-6)
        assert models[label]["verdict"] == reference["verdict"]
    for mine, ref in zip(
        env_python["mixed_models"]["contrasts"], mixed_page["contrasts"], strict=True
    ):
        assert (mine["a"], mine["b"]) == (ref["a"], ref["b"])
        for key in ("estimate", "se", "p", "p_holm"):
            _close(mine[key], ref[key], 1e-6)

    if not glmer:
        return
    _check_failures(root)
    # analysis.R: lme4's glmer, within the issue's tolerances.
    models = _by(env_r["mixed_models"]["conditions"], "condition")
    for label, reference in _by(mixed_page["conditions"], "condition").items():
        g, ref = models[label]["glmm"], reference["glmm"]
        print(label, {k: (round(g[k], 5), round(ref[k], 5)) for k in GLMM_KEYS}, "(R, page)")
        assert abs(g["intercept"] - ref["intercept"]) < 0.02, (label, g, ref)
        assert abs(g["intercept_se"] / ref["intercept_se"] - 1) < 0.05, (label, g, ref)
        assert abs(g["participant_sd"] - ref["participant_sd"]) < 0.05, (label, g, ref)
        assert abs(g["image_sd"] - ref["image_sd"]) < 0.05, (label, g, ref)
        assert abs(g["fooling_rate"] - ref["fooling_rate"]) < 0.005
        s, sref = models[label]["sdt"], reference["sdt"]
        assert abs(s["d_prime"] - sref["d_prime"]) < 0.02
        assert abs(s["criterion"] - sref["criterion"]) < 0.02
    for mine, ref in zip(env_r["mixed_models"]["contrasts"], mixed_page["contrasts"], strict=True):
        assert (mine["a"], mine["b"]) == (ref["a"], ref["b"])
        assert abs(mine["estimate"] - ref["estimate"]) < 0.02
        assert abs(mine["se"] / ref["se"] - 1) < 0.05


def test_the_bundle_holds_everything_and_both_scripts_give_the_pages_numbers(
    client, answered, tmp_path
):
    _check_bundle(client, answered, tmp_path, {"warm", "cool & co_1"}, glmer=True)


def test_within_subjects_the_scripts_share_the_real_photographs_as_the_page_does(
    client, runs, ada, tmp_path
):
    """Within subjects the real photographs have no condition: every condition's table and
    model include them, in the scripts as on the page."""
    study = study_open(study=_draft(runs, ada, design=Study.Design.WITHIN))
    rule = _rule(seed=8)
    for i in range(30):
        take_part(study, i, rule=rule)
    _check_bundle(client, study, tmp_path, {"warm", "cool & co_1"}, glmer=False)
