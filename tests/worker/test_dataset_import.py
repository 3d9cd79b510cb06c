"""Importing data sets from the command line: folders, zips, MIRFLICKR, synthetic scenes.

Every bad input is named in a clear message, and a failed import leaves nothing behind:
no Dataset row, no stored file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from colourmodels.data.synthetic import make_scene
from tests.colourmodels.test_data import png_claiming
from tests.colourmodels.test_mirflickr import N_IMAGES, _build
from worker.models import Dataset, DatasetImage

pytestmark = pytest.mark.django_db


def _scene(category: str, seed: int, size: int = 40) -> Image.Image:
    return make_scene(category, size, np.random.default_rng(seed))


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()]


def _photo_folder(root: Path, per_category: int = 8) -> Path:
    for category in ("animals", "city"):
        (root / category).mkdir(parents=True)
        for i in range(per_category):
            _scene(category, i).save(root / category / f"{i:02d}.jpg", quality=92)
    return root


def test_make_synthetic_imports_six_categories_split_by_category(capsys, settings):
    call_command("make_synthetic", "--per-category", "10", "--size", "32", "--name", "syn")
    dataset = Dataset.objects.get(name="syn")
    assert dataset.source == "synthetic"
    assert dataset.categories == ["animals", "city", "nature", "people", "scenery", "others"]
    assert dataset.counts["people"] == {"train": 8, "val": 1, "test": 1}
    assert dataset.total == 60 == DatasetImage.objects.filter(dataset=dataset).count()
    image = dataset.images.first()
    assert (image.width, image.height) == (32, 32)
    assert default_storage.exists(image.file)
    # Stored under a generated name, not the original one.
    assert Path(image.original_name).stem not in image.file
    out = capsys.readouterr().out
    assert "imported: 60" in out and "people" in out


def test_synthetic_is_deterministic_from_the_seed():
    call_command("make_synthetic", "--per-category", "3", "--size", "32", "--name", "a")
    call_command("make_synthetic", "--per-category", "3", "--size", "32", "--name", "b")
    a, b = (
        [
            default_storage.open(i.file).read()
            for i in Dataset.objects.get(name=n).images.order_by("original_name")
        ]
        for n in ("a", "b")
    )
    assert a == b


def test_folder_with_category_subfolders(tmp_path):
    _photo_folder(tmp_path / "photos")
    call_command("import_images", str(tmp_path / "photos"), "--categories-from-folders")
    dataset = Dataset.objects.get(name="photos")
    assert dataset.source == "folder"
    assert dataset.categories == ["animals", "city"]
    assert dataset.counts == {
        "animals": {"train": 6, "val": 1, "test": 1},
        "city": {"train": 6, "val": 1, "test": 1},
    }


def test_folder_without_the_flag_is_uncategorised(tmp_path):
    _photo_folder(tmp_path / "photos")
    call_command("import_images", str(tmp_path / "photos"), "--name", "flat")
    dataset = Dataset.objects.get(name="flat")
    assert dataset.categories == [] and list(dataset.counts) == [""]
    assert dataset.total == 16


def test_bad_images_are_skipped_with_reasons_naming_the_file(tmp_path, capsys):
    folder = _photo_folder(tmp_path / "mixed", per_category=4)
    bad = folder / "animals"
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = io.BytesIO()
    _scene("animals", 99, 64).save(good, format="JPEG")
    (bad / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (bad / "notes.jpg").write_text("this is text")
    (bad / "bomb.png").write_bytes(png_claiming(30000, 30000))
    Image.fromarray(np.full((20, 20), 128, np.uint8), "L").save(bad / "gray.png")
    # Converted, not rejected: CMYK, 16-bit, alpha and palette images.
    _scene("animals", 5).convert("CMYK").save(bad / "cmyk.jpg")
    Image.fromarray((np.arange(400).reshape(20, 20) * 100).astype(np.uint16)).save(
        bad / "sixteen.png"
    )
    _scene("animals", 6).convert("RGBA").save(bad / "alpha.png")
    _scene("animals", 7).convert("P").save(bad / "palette.png")

    call_command("import_images", str(folder), "--categories-from-folders")
    dataset = Dataset.objects.get(name="mixed")
    names = set(dataset.images.values_list("original_name", flat=True))
    assert {"animals/cmyk.jpg", "animals/alpha.png", "animals/palette.png"} <= names
    skipped = dict(dataset.summary["skipped_examples"])
    assert "truncated" in skipped["animals/truncated.jpg"].lower()
    assert "animals/corrupt.jpg" in skipped and "animals/notes.jpg" in skipped
    assert "too large" in skipped["animals/bomb.png"]
    assert skipped["animals/gray.png"].startswith("grayscale")
    # 16-bit gray carries no colour either: skipped as grayscale, after a clean conversion.
    assert skipped["animals/sixteen.png"].startswith("grayscale")
    out = capsys.readouterr().out
    assert "animals/truncated.jpg" in out


def test_non_rgb_images_are_stored_as_rgb_png(tmp_path):
    folder = tmp_path / "odd" / "animals"
    folder.mkdir(parents=True)
    _scene("animals", 5).convert("CMYK").save(folder / "cmyk.jpg")
    _scene("animals", 1).save(folder / "plain.jpg")
    call_command("import_images", str(tmp_path / "odd"), "--categories-from-folders")
    stored = {i.original_name: i.file for i in DatasetImage.objects.all()}
    assert stored["animals/cmyk.jpg"].endswith(".png")
    with default_storage.open(stored["animals/cmyk.jpg"]) as f, Image.open(f) as image:
        assert image.mode == "RGB"
    assert stored["animals/plain.jpg"].endswith(".jpg")
    original = (folder / "plain.jpg").read_bytes()
    assert default_storage.open(stored["animals/plain.jpg"]).read() == original


@pytest.mark.parametrize("seed", ["-1", str(2**31)])
def test_a_seed_the_split_cannot_use_is_refused_before_anything_is_stored(tmp_path, settings, seed):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_jpeg_bytes("city", 1))
    with pytest.raises(CommandError, match="the seed must be a whole number from 0 to 2147483647"):
        call_command("import_images", str(folder), "--seed", seed)
    assert not Dataset.objects.exists() and _stored_files(settings) == []


def test_failed_import_leaves_nothing_behind(tmp_path, settings):
    folder = tmp_path / "hopeless"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"garbage")
    Image.fromarray(np.full((20, 20), 90, np.uint8), "L").save(folder / "b.png")
    with pytest.raises(CommandError, match="no usable images") as refused:
        call_command("import_images", str(folder))
    assert "{" not in str(refused.value) and "1 grayscale" in str(refused.value)
    assert not Dataset.objects.exists() and not DatasetImage.objects.exists()
    assert _stored_files(settings) == []


def test_failure_while_writing_rows_removes_stored_files(tmp_path, settings, monkeypatch):
    _photo_folder(tmp_path / "photos", per_category=3)

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(DatasetImage.objects, "bulk_create", explode)
    with pytest.raises(RuntimeError):
        call_command("import_images", str(tmp_path / "photos"))
    assert not Dataset.objects.exists()
    assert _stored_files(settings) == []


def test_duplicate_name_is_refused_before_anything_is_stored(tmp_path, settings):
    _photo_folder(tmp_path / "photos", per_category=2)
    call_command("import_images", str(tmp_path / "photos"))
    before = len(_stored_files(settings))
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_images", str(tmp_path / "photos"))
    assert len(_stored_files(settings)) == before


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def _jpeg_bytes(category: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    _scene(category, seed).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_zip_with_category_folders(tmp_path):
    members = [
        (f"set/{c}/{i}.jpg", _jpeg_bytes(c, i)) for c in ("city", "people") for i in range(4)
    ]
    archive = _zip(tmp_path / "upload.zip", members + [("set/readme.txt", b"hello")])
    call_command("import_images", str(archive), "--categories-from-folders")
    dataset = Dataset.objects.get(name="upload")
    assert dataset.source == "zip" and dataset.categories == ["city", "people"]
    assert dataset.total == 8


@pytest.mark.parametrize(
    "member, message",
    [("../evil.jpg", ".."), ("/abs.jpg", "absolute"), ("ok/../../evil.jpg", "..")],
)
def test_hostile_zip_is_refused_naming_the_member(tmp_path, settings, member, message):
    archive = _zip(tmp_path / "bad.zip", [("fine.jpg", _jpeg_bytes("city", 1)), (member, b"x")])
    with pytest.raises(CommandError, match=message):
        call_command("import_images", str(archive))
    assert not Dataset.objects.exists() and _stored_files(settings) == []


def test_zip_with_a_symlink_is_refused(tmp_path):
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = 0o120777 << 16
    archive = _zip(
        tmp_path / "links.zip", [("a.jpg", _jpeg_bytes("city", 1)), (link, b"/etc/passwd")]
    )
    with pytest.raises(CommandError, match="link"):
        call_command("import_images", str(archive))
    assert not Dataset.objects.exists()


def test_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.jpg", _jpeg_bytes("city", 1))
        z.writestr("huge.jpg", b"\0" * (20 * 2**20))
    with pytest.raises(CommandError, match="huge.jpg"):
        call_command("import_images", str(archive))
    assert not Dataset.objects.exists()


def test_not_a_folder_nor_a_zip(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CommandError, match="neither a folder nor a zip"):
        call_command("import_images", str(tmp_path / "x.txt"))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_images", str(tmp_path / "missing"))


def test_import_mirflickr_filters_maps_and_splits(tmp_path, capsys):
    root = _build(tmp_path)
    call_command("import_mirflickr", str(root), "--name", "mir", "--seed", "3")
    dataset = Dataset.objects.get(name="mir")
    assert dataset.source == "mirflickr"
    assert dataset.summary["grayscale_removed"] == 3
    assert dataset.categories == ["animals", "city", "nature", "people", "scenery", "others"]
    # Every kept image is registered with its category and split, none twice.
    assert dataset.total == dataset.images.count() < N_IMAGES
    assert set(dataset.images.values_list("split", flat=True)) == {"train", "val", "test"}
    out = capsys.readouterr().out
    assert "grayscale removed by the reader: 3" in out


def test_import_mirflickr_without_annotations_is_a_clear_error(tmp_path):
    root = _build(tmp_path)
    for f in (root / "mirflickr25k_annotations_v080").iterdir():
        f.unlink()
    (root / "mirflickr25k_annotations_v080").rmdir()
    with pytest.raises(CommandError, match="annotations"):
        call_command("import_mirflickr", str(root))
    assert not Dataset.objects.exists()
