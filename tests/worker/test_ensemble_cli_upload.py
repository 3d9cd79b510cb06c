"""An ensemble trained and applied by the command line (python -m colourmodels ensemble)
uploads to the site as a run, unchanged: the site's import of the same folder with the same
seed has the same test split, and the upload checker accepts the zip ``ensemble colourise
--zip`` writes and scores it as the command's own evaluation does."""

from __future__ import annotations

import csv
import json

import pytest
from django.core.management import call_command

from colourmodels.cli import main
from tests.colourmodels.test_ensemble_cli import CATEGORIES, TINY, photos
from worker.models import ColourisedImage, Dataset, ModelRun
from worker.services.uploads import uploaded_run_create

pytestmark = pytest.mark.django_db


@pytest.mark.slow
def test_the_ensemble_commands_output_uploads_as_a_run(tmp_path, capsys):
    data = photos(tmp_path / "photos", size=64)  # larger than the model (32 px)
    call_command(
        "import_images", str(data), "--categories-from-folders", "--name", "cli", "--seed", "3"
    )
    dataset = Dataset.objects.get(name="cli")
    assert sorted(dataset.categories) == CATEGORIES

    run_dir = tmp_path / "run"
    train = ["ensemble", "train", str(data), "--out", str(run_dir), "--split-seed", "3"]
    assert main([*train, *TINY]) == 0
    split = json.loads((run_dir / "split.json").read_text())
    assert split["seed"] == 3
    for part in ("train", "val", "test"):  # the site's split of the same folder and seed
        site = set(dataset.images.filter(split=part).values_list("original_name", flat=True))
        assert site == {item["path"] for item in split[part]}, part

    upload = tmp_path / "upload.zip"
    code = main(
        ["ensemble", "colourise", str(run_dir), "--out", str(tmp_path / "col"), "--zip",
         str(upload), "--device", "cpu", "--quiet"]
    )  # fmt: skip
    assert code == 0
    capsys.readouterr()
    evaluate = ["ensemble", "evaluate", str(run_dir), "--device", "cpu", "--json"]
    assert main(evaluate) == 0
    report = json.loads(capsys.readouterr().out)
    assert main([*evaluate, "--at", "photo"]) == 0
    photo_report = json.loads(capsys.readouterr().out)
    assert report["scored_at"]["at"] == "model" and report["scored_at"]["size"] == 32
    assert photo_report["scored_at"]["at"] == "photo"
    assert photo_report["scored_at"]["test_image_sizes"] == [[64, 64]]

    run = uploaded_run_create(name="from the command line", dataset=dataset, archive=upload,
                              colour_space="lab")  # fmt: skip
    assert run.status == ModelRun.Status.DONE and run.kind == ModelRun.Kind.UPLOADED
    assert run.config["model"] == "colourmodels ensemble run (lab, predicted routing)"
    assert run.config["manifest"]["rows"] == run.config["manifest"]["test_images"] == 3
    with (tmp_path / "col" / "manifest.csv").open(newline="") as f:
        routed = {row["original_name"]: row["category"] for row in csv.DictReader(f)}
    stored = ColourisedImage.objects.filter(run=run).select_related("source")
    assert {image.source.original_name: image.routed_category for image in stored} == routed

    # `ensemble evaluate --at photo` gives the site's scores of the upload: each metric,
    # overall and per category, and the references.
    predicted = photo_report["routings"]["predicted"]
    assert run.metrics["test"]["n"] == predicted["test"]["n"] == 3
    keys = ["l1", "chroma_mae", "ssim", "psnr", "colourfulness", "colourfulness_difference"]

    def same(site: dict, cli: dict, where: str) -> None:
        for key in keys:
            assert site[key] == pytest.approx(cli[key], rel=1e-6, abs=1e-9), (where, key)

    same(run.metrics["test"], predicted["test"], "test")
    for category in CATEGORIES:
        same(run.metrics["per_category"][category], predicted["per_category"][category], category)
    for name in ("no_colour", "category_mean_chroma"):
        same(run.metrics["references"][name]["test"], predicted["references"][name]["test"], name)
    # At the model's size (as the site scores a run it trained) the numbers are others.
    model_size = report["routings"]["predicted"]
    assert model_size["test"]["ssim"] != pytest.approx(run.metrics["test"]["ssim"], rel=1e-3)
    assert model_size["classifier"] == predicted["classifier"]  # the same routing
