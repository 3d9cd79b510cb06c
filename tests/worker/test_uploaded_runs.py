"""Uploading a run made elsewhere: a zip of colourised test images and a CSV manifest.

Good uploads are stored under generated names and evaluated like a trained run; every bad
one is refused with a message naming the line and file, and leaves nothing behind: no
run row, no stored file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from colourmodels.data.dataset import resize_square
from colourmodels.data.images import load_rgb
from tests.colourmodels.test_data import png_claiming
from tests.worker.runs_helpers import tiny_dataset
from worker.models import ColourisedImage, Dataset, DatasetImage, ModelRun
from worker.services.evaluation import METRIC_KEYS
from worker.services.uploads import UploadError, uploaded_run_create, uploaded_run_evaluate

pytestmark = pytest.mark.django_db

COLUMNS = ("file", "image_id", "category", "model")


@pytest.fixture
def dataset() -> Dataset:
    return tiny_dataset("syn", per_category=10, size=32)


def _tests(dataset: Dataset) -> list[DatasetImage]:
    return list(dataset.images.filter(split="test").order_by("id"))


def _truth(image: DatasetImage) -> Image.Image:
    with default_storage.open(image.file, "rb") as f:
        return load_rgb(f)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _gray(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


def _csv(rows: list[dict], columns=COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _zip(path: Path, files: dict[str, bytes], manifest: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if manifest is not None:
            zf.writestr("manifest.csv", manifest)
    return path


def _base(dataset: Dataset, colourise=lambda image: image):
    """Files (one per test image, colourised by ``colourise``) and manifest rows."""
    files, rows = {}, []
    for i, image in enumerate(_tests(dataset)):
        name = f"img{i:02d}.png"
        files[name] = _png(colourise(_truth(image)))
        rows.append(
            {"file": name, "image_id": str(image.pk), "category": image.category, "model": "m"}
        )
    return files, rows


def _run_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "runs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_nothing_left(settings) -> None:
    assert not ModelRun.objects.exists()
    assert not ColourisedImage.objects.exists()
    assert _run_files(settings) == []


# --------------------------------------------------------------------------------------
# Good uploads
# --------------------------------------------------------------------------------------


def test_the_ground_truth_itself_scores_perfectly(dataset, tmp_path, settings):
    files, rows = _base(dataset)
    files["extra.png"] = files["img00.png"]  # not in the manifest: ignored with a note
    files["README.txt"] = b"made on another machine"
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))

    run = uploaded_run_create(name="truth", dataset=dataset, archive=archive, colour_space="lab")

    assert (run.kind, run.status, run.colour_space) == ("uploaded", "done", "lab")
    assert run.finished_at is not None and run.failure_reason == ""
    assert run.config["model"] == "m"
    manifest = run.config["manifest"]
    assert manifest["source"] == "manifest.csv" and manifest["archive"] == "run.zip"
    assert manifest["rows"] == 6 and manifest["test_images"] == 6
    assert manifest["ignored_files"] == 2
    assert any("README.txt" in n and "extra.png" in n for n in manifest["notes"])
    outputs = list(run.outputs.select_related("source"))
    assert len(outputs) == 6
    assert {o.source_id for o in outputs} == {i.pk for i in _tests(dataset)}
    for output in outputs:
        assert output.file.startswith(f"runs/{run.uid.hex}/outputs/")
        assert "img" not in output.file  # a generated name, not the uploaded one
        assert default_storage.exists(output.file)
        assert output.routed_category == output.source.category
        assert set(output.metrics) == set(METRIC_KEYS)
        assert output.metrics["l1"] == 0.0 and output.metrics["chroma_mae"] == 0.0
        assert output.metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
        assert output.metrics["psnr"] is None  # +inf for identical images
        assert output.metrics["colourfulness_difference"] == 0.0
    assert len(_run_files(settings)) == 6
    test = run.metrics["test"]
    assert test["n"] == 6 and test["l1"] == 0.0 and test["psnr"] is None
    assert test["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert set(run.metrics["per_category"]) == set(dataset.categories)
    assert all(s["n"] == 1 for s in run.metrics["per_category"].values())


def test_grayscale_images_in_a_folder_by_original_name_in_yuv(dataset, tmp_path):
    files, rows = _base(dataset, colourise=_gray)
    by_id = {str(i.pk): i for i in _tests(dataset)}
    for row in rows:  # name the ground truth by original name; category left out
        row["original_name"] = by_id[row.pop("image_id")].original_name
    # A zipped folder: paths in the manifest relative to it, the manifest inside it.
    wrapped = {f"outputs/{name}": data for name, data in files.items()}
    wrapped["outputs/manifest.csv"] = _csv(rows, ("file", "original_name")).encode()
    archive = _zip(tmp_path / "gray.zip", wrapped)

    run = uploaded_run_create(name="gray", dataset=dataset, archive=archive, colour_space="yuv")

    assert run.status == "done" and run.config["model"] is None
    assert run.config["manifest"]["id_column"] == "original_name"
    assert run.config["manifest"]["ignored_files"] == 0
    test = run.metrics["test"]
    assert test["l1"] > 1.0 and test["chroma_mae"] > 0.0
    assert test["colourfulness"] == pytest.approx(0.0, abs=1e-3)
    assert test["colourfulness_truth"] > 1.0
    assert test["colourfulness_difference"] == pytest.approx(-test["colourfulness_truth"])
    assert 0.0 < test["ssim"] < 1.0 and test["psnr"] > 0.0
    assert all(o.routed_category == "" for o in run.outputs.all())
    # The summary is the mean of the per-image values, per category by the ground truth.
    l1 = [o.metrics["l1"] for o in run.outputs.all()]
    assert test["l1"] == pytest.approx(sum(l1) / len(l1))
    assert set(run.metrics["per_category"]) == set(dataset.categories)


def test_yuv_and_lab_l1_differ_for_the_same_images(dataset, tmp_path):
    files, rows = _base(dataset, colourise=_gray)
    archive = _zip(tmp_path / "gray.zip", files, _csv(rows))
    lab = uploaded_run_create(name="a", dataset=dataset, archive=archive, colour_space="lab")
    yuv = uploaded_run_create(name="b", dataset=dataset, archive=archive, colour_space="yuv")
    assert lab.metrics["test"]["l1"] != pytest.approx(yuv.metrics["test"]["l1"])
    assert lab.metrics["test"]["ssim"] == pytest.approx(yuv.metrics["test"]["ssim"])


def test_a_square_output_of_another_size_is_compared_with_the_resized_truth(dataset, tmp_path):
    files, rows = _base(dataset, colourise=lambda image: resize_square(image, 64))
    archive = _zip(tmp_path / "big.zip", files, _csv(rows))
    run = uploaded_run_create(name="64", dataset=dataset, archive=archive, colour_space="lab")
    assert run.metrics["test"]["l1"] == 0.0
    with default_storage.open(run.outputs.first().file, "rb") as f:
        assert Image.open(f).size == (64, 64)


def test_a_separate_manifest_wins_over_the_zips(dataset, tmp_path):
    files, rows = _base(dataset)
    archive = _zip(tmp_path / "run.zip", files, "file,image_id\nnope.png,1\n")
    separate = tmp_path / "fixed.csv"
    separate.write_text(_csv(rows[:3]), encoding="utf-8-sig")  # with a BOM, as Excel writes
    run = uploaded_run_create(
        name="sep", dataset=dataset, archive=archive, colour_space="lab", manifest=separate
    )
    assert run.outputs.count() == 3
    manifest = run.config["manifest"]
    assert manifest["source"] == "fixed.csv" and manifest["ignored_files"] == 3
    assert any("manifest.csv was ignored" in n for n in manifest["notes"])
    assert any("covers 3 of the data set's 6 test images" in n for n in manifest["notes"])


def test_an_uploaded_file_object_and_semicolons(dataset, tmp_path):
    files, rows = _base(dataset)
    text = _csv(rows).replace(",", ";")
    data = _zip(tmp_path / "run.zip", files, text).read_bytes()
    upload = io.BytesIO(data)
    upload.name = "from-browser.zip"
    run = uploaded_run_create(name="f", dataset=dataset, archive=upload, colour_space="lab")
    assert run.outputs.count() == 6 and run.config["manifest"]["archive"] == "from-browser.zip"


def test_evaluation_can_be_left_to_a_task(dataset, tmp_path):
    files, rows = _base(dataset, colourise=_gray)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))
    run = uploaded_run_create(
        name="later", dataset=dataset, archive=archive, colour_space="lab", evaluate=False
    )
    assert run.status == "evaluating" and run.heartbeat_at is not None
    assert run.metrics == {} and all(o.metrics == {} for o in run.outputs.all())
    uploaded_run_evaluate(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "done" and run.metrics["test"]["n"] == 6
    assert all(o.metrics["l1"] > 0 for o in run.outputs.all())
    finished = run.finished_at
    uploaded_run_evaluate(run_id=run.pk)  # a re-delivered task leaves a done run alone
    run.refresh_from_db()
    assert run.finished_at == finished


def test_the_command_prints_a_summary(dataset, tmp_path, capsys):
    files, rows = _base(dataset, colourise=_gray)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))
    call_command("upload_run", str(archive), "--dataset", "syn", "--name", "cmd", "--space", "yuv")
    out = capsys.readouterr().out
    run = ModelRun.objects.get(name="cmd")
    assert run.colour_space == "yuv" and run.status == "done"
    assert "6 images" in out and "model: m" in out and "ssim" in out
    assert f"{run.metrics['test']['l1']:.4f}" in out
    for category in dataset.categories:
        assert category in out
    call_command("upload_run", str(archive), "--dataset", str(dataset.pk), "--name", "by id")
    assert ModelRun.objects.get(name="by id").colour_space == "lab"


def test_the_command_gives_the_run_an_owner(dataset, tmp_path, capsys):
    """--owner, as the commands that make data sets, runs and studies have it."""
    from django.contrib.auth.models import User

    from studyplatform.researchers import researcher_create

    owner = researcher_create(username="ada", password="a long passphrase 42")
    files, rows = _base(dataset)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))
    call_command("upload_run", str(archive), "--dataset", "syn", "--name", "hers", "--owner", "ada")
    run = ModelRun.objects.get(name="hers")
    assert run.owner == owner and run.created_by == owner
    assert "owner: ada" in capsys.readouterr().out
    call_command("upload_run", str(archive), "--dataset", "syn", "--name", "nobody's")
    assert ModelRun.objects.get(name="nobody's").owner is None
    assert "owner: nobody" in capsys.readouterr().out
    User.objects.create_user(username="visitor", password="x")
    with pytest.raises(CommandError, match="not a researcher account"):
        call_command(
            "upload_run", str(archive), "--dataset", "syn", "--name", "x", "--owner", "visitor"
        )
    with pytest.raises(CommandError, match="no account named 'ghost'"):
        call_command(
            "upload_run", str(archive), "--dataset", "syn", "--name", "x", "--owner", "ghost"
        )
    assert not ModelRun.objects.filter(name="x").exists()


def test_the_command_reports_errors_clearly(dataset, tmp_path, settings):
    files, rows = _base(dataset)
    rows[2]["image_id"] = "999999"
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))
    with pytest.raises(CommandError, match="line 4 \\(file 'img02.png'\\): image 999999 is not in"):
        call_command("upload_run", str(archive), "--dataset", "syn", "--name", "x")
    with pytest.raises(CommandError, match="no data set named"):
        call_command("upload_run", str(archive), "--dataset", "nope", "--name", "x")
    with pytest.raises(CommandError, match="no such file"):
        call_command("upload_run", str(tmp_path / "no.zip"), "--dataset", "syn", "--name", "x")
    _assert_nothing_left(settings)


# --------------------------------------------------------------------------------------
# Bad uploads: a clear error, and nothing left behind
# --------------------------------------------------------------------------------------


def _truncated(files, rows):
    data = files[rows[-1]["file"]]
    files[rows[-1]["file"]] = data[: len(data) // 2]


def _another_dataset_image(files, rows):
    other = tiny_dataset("other", per_category=2, size=32)
    rows[0]["image_id"] = str(other.images.first().pk)


def _train_image(files, rows):
    dataset = Dataset.objects.get(name="syn")
    rows[1]["image_id"] = str(dataset.images.filter(split="train").first().pk)


BAD = {
    "no file column": (lambda f, r: {"columns": ("image", "image_id")}, "no 'file' column"),
    "no id column": (
        lambda f, r: {"columns": ("file", "category")},
        "no 'image_id' or 'original_name' column",
    ),
    "empty manifest": (lambda f, r: r.clear(), "no rows"),
    "unknown id": (
        lambda f, r: r[1].update(image_id="999999"),
        "line 3 (file 'img01.png'): image 999999 is not in data set 'syn'",
    ),
    "id not a number": (lambda f, r: r[0].update(image_id="x1"), "is not a whole number"),
    "no id in a row": (lambda f, r: r[0].update(image_id=""), "no image_id or original_name"),
    "unknown original name": (
        lambda f, r: {"columns": ("file", "original_name"), "original_name": "nope.png"},
        "line 2 (file 'img00.png'): data set 'syn' has no image named 'nope.png'",
    ),
    "image of another data set": (_another_dataset_image, "is not in data set 'syn'"),
    "training image": (_train_image, "is in the train split; only test images"),
    "ground truth twice": (
        lambda f, r: r[3].update(image_id=r[0]["image_id"]),
        "line 5 (file 'img03.png'): ground truth",
    ),
    "file twice": (
        lambda f, r: r[3].update(file=r[0]["file"]),
        "line 5 (file 'img00.png'): the file is listed twice (also line 2)",
    ),
    "file missing from the zip": (
        lambda f, r: f.pop(r[-1]["file"]),
        "line 7 (file 'img05.png'): no such file in the zip",
    ),
    "file not an image": (
        lambda f, r: (f.update({"a.txt": b"text"}), r[0].update(file="a.txt")),
        "line 2 (file 'a.txt'): not an image file",
    ),
    "truncated image": (_truncated, "line 7 (file 'img05.png'): truncated image data"),
    "not image data": (
        lambda f, r: f.update({r[0]["file"]: b"not a png at all"}),
        "line 2 (file 'img00.png'): not an image",
    ),
    "oversized image": (
        lambda f, r: f.update({r[0]["file"]: png_claiming(20000, 20000)}),
        "line 2 (file 'img00.png'): image too large",
    ),
    "neither the truth's size nor square": (
        lambda f, r: f.update({r[0]["file"]: _png(Image.new("RGB", (40, 30)))}),
        "40x30 pixels, but its ground truth",
    ),
    "smaller than the SSIM window": (
        lambda f, r: f.update({r[0]["file"]: _png(Image.new("RGB", (5, 5)))}),
        "at least 7x7",
    ),
    "two models": (lambda f, r: r[2].update(model="other"), "one model per upload"),
    "unknown category": (lambda f, r: r[0].update(category="cars"), "category 'cars' is not"),
    "no manifest": (lambda f, r: {"manifest": None}, "no manifest.csv"),
    "extra fields": (
        lambda f, r: {"manifest_suffix": "img09.png,1,x,y,z\n"},
        "5 fields, but the header has 4",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_upload_is_refused_and_leaves_nothing(case, dataset, tmp_path, settings):
    mutate, expected = BAD[case]
    files, rows = _base(dataset)
    options = mutate(files, rows)
    options = options if isinstance(options, dict) else {}
    columns = options.get("columns", COLUMNS)
    if "original_name" in options:
        for row in rows:
            row["original_name"] = options["original_name"]
    manifest = options.get("manifest", _csv(rows, columns) + options.get("manifest_suffix", ""))
    archive = _zip(tmp_path / "bad.zip", files, manifest)
    with pytest.raises(UploadError) as caught:
        uploaded_run_create(name="bad", dataset=dataset, archive=archive, colour_space="lab")
    assert expected in str(caught.value)
    _assert_nothing_left(settings)


def test_another_data_sets_image_reads_as_one_that_does_not_exist(dataset, tmp_path, settings):
    """An id of another data set's image is refused in the same words as an id no image
    has: the manifest cannot be used to find out which ids exist, nor other data sets'
    names."""
    other = tiny_dataset("someone-elses", per_category=2, size=32)
    foreign = other.images.order_by("id").first().pk
    absent = DatasetImage.objects.order_by("-id").first().pk + 1000
    files, rows = _base(dataset)
    rows[0]["image_id"], rows[1]["image_id"] = str(foreign), str(absent)
    archive = _zip(tmp_path / "bad.zip", files, _csv(rows))
    with pytest.raises(UploadError) as caught:
        uploaded_run_create(name="bad", dataset=dataset, archive=archive, colour_space="lab")
    assert caught.value.problems == [
        f"manifest.csv line 2 (file 'img00.png'): image {foreign} is not in data set 'syn'",
        f"manifest.csv line 3 (file 'img01.png'): image {absent} is not in data set 'syn'",
    ]
    assert "someone-elses" not in str(caught.value)
    _assert_nothing_left(settings)


def test_names_and_categories_that_start_like_a_formula_read_back(dataset, tmp_path, settings):
    """A manifest written spreadsheet-safe (by ``python -m colourmodels ensemble
    colourise``: '=... cells) uploads: the checker reads each cell without the apostrophe
    (file names, original names and categories alike)."""
    from colourmodels.cli import manifest_text

    renamed = dataset.categories[0]
    DatasetImage.objects.filter(dataset=dataset, category=renamed).update(category="=2+3")
    dataset.categories = ["=2+3" if c == renamed else c for c in dataset.categories]
    dataset.save(update_fields=["categories"])
    files, rows = {}, []
    for i, image in enumerate(_tests(dataset)):
        image.original_name = f"=HYPERLINK(x){i}.jpg"
        image.save(update_fields=["original_name"])
        name = f"@{i:02d}.png"
        files[name] = _png(_truth(image))
        rows.append((name, image.original_name, image.category, image.category, "-m"))
    manifest = manifest_text(rows)
    assert "\n'@00.png,'=HYPERLINK(x)0.jpg," in manifest
    archive = _zip(tmp_path / "run.zip", files, manifest)
    run = uploaded_run_create(name="safe", dataset=dataset, archive=archive, colour_space="lab")
    assert run.status == "done" and run.config["model"] == "-m"
    assert run.config["manifest"]["rows"] == len(rows) and run.config["manifest"]["notes"] == []
    routed = dict(run.outputs.values_list("source__original_name", "routed_category"))
    assert routed == {name: category for _, name, category, _, _ in rows}
    assert "=2+3" in routed.values()


def test_every_problem_is_listed_at_once(dataset, tmp_path, settings):
    files, rows = _base(dataset)
    rows[0]["image_id"] = "999999"
    rows[1]["file"] = "missing.png"
    rows[2]["category"] = "cars"
    archive = _zip(tmp_path / "bad.zip", files, _csv(rows))
    with pytest.raises(UploadError) as caught:
        uploaded_run_create(name="bad", dataset=dataset, archive=archive, colour_space="lab")
    assert len(caught.value.problems) == 3
    message = str(caught.value)
    assert message.startswith("3 problems:")
    assert "line 2" in message and "line 3" in message and "line 4" in message
    _assert_nothing_left(settings)


@pytest.mark.parametrize(
    "member, reason",
    [
        ("../x.png", "'..' in path"),
        ("/abs/x.png", "absolute path"),
        ("outputs/../../x.png", "'..' in path"),
    ],
)
def test_a_hostile_zip_is_refused(member, reason, dataset, tmp_path, settings):
    files, rows = _base(dataset)
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(zipfile.ZipInfo(member), files["img00.png"])
        zf.writestr("manifest.csv", _csv(rows))
    with pytest.raises(UploadError, match="the zip was refused") as caught:
        uploaded_run_create(name="evil", dataset=dataset, archive=path, colour_space="lab")
    assert reason in str(caught.value)
    assert not (tmp_path / "x.png").exists() and not Path("/abs/x.png").exists()
    _assert_nothing_left(settings)


def test_not_a_zip_and_bad_arguments(dataset, tmp_path, settings):
    not_zip = tmp_path / "run.zip"
    not_zip.write_bytes(b"hello")
    with pytest.raises(UploadError, match="the zip was refused: .*not a valid zip"):
        uploaded_run_create(name="x", dataset=dataset, archive=not_zip, colour_space="lab")
    files, rows = _base(dataset)
    archive = _zip(tmp_path / "ok.zip", files, _csv(rows))
    with pytest.raises(UploadError, match="colour space must be lab or yuv"):
        uploaded_run_create(name="x", dataset=dataset, archive=archive, colour_space="rgb")
    with pytest.raises(UploadError, match="needs a name"):
        uploaded_run_create(name=" ", dataset=dataset, archive=archive, colour_space="lab")
    _assert_nothing_left(settings)


def test_a_failed_evaluation_leaves_nothing(dataset, tmp_path, settings, monkeypatch):
    from worker.services import uploads

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(uploads, "image_metrics", broken)
    files, rows = _base(dataset)
    archive = _zip(tmp_path / "run.zip", files, _csv(rows))
    with pytest.raises(RuntimeError, match="out of memory"):
        uploaded_run_create(name="x", dataset=dataset, archive=archive, colour_space="lab")
    _assert_nothing_left(settings)
