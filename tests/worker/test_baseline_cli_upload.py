"""A baseline trained and applied by the command line (python -m colourmodels train,
colourise --zip) uploads to the site as a run with no hand work: the site's import of the
same folder with the same seed has the same test split, ``colourise`` without an input
colourises that test split, and ``upload_run --owner`` accepts its zip unchanged. The
photographs (64 px) are larger than the model (32 px), as a user's were: the site scores the
upload at the images' own size, and ``python -m colourmodels evaluate`` on the same images
gives the site's numbers, as the README says."""

from __future__ import annotations

import json
import shutil

import pytest
from django.core.management import call_command

from colourmodels.cli import main
from colourmodels.data.synthetic import write_synthetic
from studyplatform.researchers import researcher_create
from worker.models import Dataset, ModelRun

pytestmark = pytest.mark.django_db

CATEGORIES = ["city", "others", "people"]
TINY = ["--size", "32", "--width", "8", "--epochs", "2", "--batch", "4", "--device", "cpu"]
TINY += ["--workers", "0", "--quiet"]


@pytest.mark.slow
def test_the_baseline_commands_output_uploads_as_a_run(tmp_path, capsys):
    data = tmp_path / "photos"
    write_synthetic(data, per_category=6, size=64)
    for folder in data.iterdir():
        if folder.name not in CATEGORIES:
            shutil.rmtree(folder)
    call_command(
        "import_images", str(data), "--categories-from-folders", "--name", "cli", "--seed", "3"
    )
    dataset = Dataset.objects.get(name="cli")
    owner = researcher_create(username="ada", password="a long passphrase 42")

    run_dir = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run_dir), "--split-seed", "3", *TINY]) == 0
    split = json.loads((run_dir / "split.json").read_text())
    for part in ("train", "val", "test"):  # the site's split of the same folder and seed
        site = set(dataset.images.filter(split=part).values_list("original_name", flat=True))
        assert site == {item["path"] for item in split[part]}, part

    coloured, upload = tmp_path / "col", tmp_path / "baseline.zip"
    args = ["colourise", str(run_dir), "--out", str(coloured), "--zip", str(upload)]
    assert main([*args, "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()

    call_command("upload_run", str(upload), "--dataset", "cli", "--name", "base", "--owner", "ada")
    run = ModelRun.objects.get(name="base")
    assert run.status == ModelRun.Status.DONE and run.owner == owner
    assert run.config["model"] == "colourmodels baseline run (lab)"
    assert run.config["manifest"]["rows"] == run.config["manifest"]["test_images"] == 3
    assert {image.source.width for image in run.outputs.select_related("source")} == {64}

    # The site's scores of the upload are those of `evaluate` on the same images.
    capsys.readouterr()
    assert main(["evaluate", str(coloured), str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 3 and report["truth_without_generated"] == 15
    for site_key, cli_key in [
        ("l1", "l1_distance"),
        ("ssim", "ssim"),
        ("psnr", "psnr"),
        ("colourfulness", "colourfulness"),
        ("colourfulness_difference", "colourfulness_difference"),
    ]:
        assert run.metrics["test"][site_key] == pytest.approx(
            report["mean"][cli_key], rel=1e-5, abs=1e-6
        ), site_key
