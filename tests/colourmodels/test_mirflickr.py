"""MIRFLICKR-25000 reader on a small folder of the real shape, built in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colourmodels.data.categories import CATEGORIES, CategoryMapping
from colourmodels.data.images import chroma_magnitude, load_rgb
from colourmodels.data.mirflickr import (
    ANNOTATIONS_DIRNAME,
    DatasetError,
    MirflickrRecord,
    grayscale_verdict,
    read_annotations,
    read_mirflickr,
)
from colourmodels.data.split import split_counts
from colourmodels.data.synthetic import make_scene

N_IMAGES = 48
GRAY_L, GRAY_EQUAL, GRAY_NEAR = 5, 6, 7
TRUNCATED = 8
SEPIA = 11  # low but real colour: kept
GRAYSCALE = {GRAY_L, GRAY_EQUAL, GRAY_NEAR}

# concept lists (1-based image numbers), as in mirflickr25k_annotations_v080
TAGS: dict[str, list[int]] = {
    "people": [1],
    "dog": [1, 2],
    "sky": [1, 2],
    "car": [3],
    "tree": [3],
    "food": [4],
}
CYCLE = ["people", "dog", "car", "tree", "sky", "food"]
for _n in range(10, N_IMAGES + 1):
    TAGS[CYCLE[_n % 6]].append(_n)
TAGS["people"].append(GRAY_L)  # a grayscale image that is tagged: removed all the same
RELEVANT = {"people": [12, 24], "dog": [2]}  # the stricter _r1 lists (no _r1 for sky)

EXPECTED = {1: "people", 2: "animals", 3: "city", 4: "others", 9: "others", 10: "scenery"}
EXPECTED.update({n: ["people", "animals", "city", "nature", "scenery", "others"][n % 6]
                 for n in range(12, N_IMAGES + 1)})  # fmt: skip
EXPECTED[10], EXPECTED[11] = "scenery", "others"  # 10 % 6 == 4 -> sky, 11 % 6 == 5 -> food


def _jpeg(path: Path, image: Image.Image) -> None:
    image.save(path, format="JPEG", quality=92)


def _build(root: Path) -> Path:
    images = root / "mirflickr"
    (images / "meta" / "tags").mkdir(parents=True)
    (images / "meta" / "tags" / "tags1.txt").write_text("dog\nbeach\n")
    rng = np.random.default_rng(7)
    categories = ["animals", "city", "nature", "people", "scenery", "others"]
    for n in range(1, N_IMAGES + 1):
        path = images / f"im{n}.jpg"
        if n == GRAY_L:
            _jpeg(path, Image.fromarray(rng.integers(0, 256, (40, 56), dtype=np.uint8), "L"))
        elif n == GRAY_EQUAL:
            gray = np.tile(np.linspace(0, 255, 56, dtype=np.uint8), (40, 1))
            _jpeg(path, Image.fromarray(np.stack([gray] * 3, -1), "RGB"))
        elif n == GRAY_NEAR:
            base = np.tile(np.linspace(40, 220, 56), (40, 1))
            rgb = np.stack([base + 1.0, base, base - 0.5], -1)  # a faint warm cast
            _jpeg(path, Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"))
        elif n == SEPIA:
            base = np.tile(np.linspace(60, 200, 56), (40, 1))
            rgb = np.stack([base + 8, base + 2, base - 8], -1)
            _jpeg(path, Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"))
        else:
            _jpeg(path, make_scene(categories[n % 6], 48, np.random.default_rng(n)))
    data = (images / f"im{TRUNCATED}.jpg").read_bytes()
    (images / f"im{TRUNCATED}.jpg").write_bytes(data[: len(data) // 2])
    (images / "license.txt").write_text("CC\n")

    annotations = root / ANNOTATIONS_DIRNAME
    annotations.mkdir()
    (annotations / "README.txt").write_text("MIRFLICKR-25000 annotations v080\n")
    for concept, numbers in TAGS.items():
        (annotations / f"{concept}.txt").write_text("".join(f"{n}\n" for n in sorted(numbers)))
    for concept, numbers in RELEVANT.items():
        (annotations / f"{concept}_r1.txt").write_text("".join(f"{n}\n" for n in numbers))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("mirflickr_src"))


@pytest.fixture
def root(built, tmp_path) -> Path:
    """A private copy that a test may damage."""
    return Path(shutil.copytree(built, tmp_path / "data"))


@pytest.fixture(scope="module")
def scan(built):
    return read_mirflickr(built, seed=3)


def test_fixture_images_are_what_they_claim(built):
    images = built / "mirflickr"
    assert Image.open(images / f"im{GRAY_L}.jpg").mode == "L"
    equal = np.asarray(load_rgb(images / f"im{GRAY_EQUAL}.jpg")).astype(int)
    assert (equal[..., 0] == equal[..., 1]).all() and (equal[..., 1] == equal[..., 2]).all()
    near = load_rgb(images / f"im{GRAY_NEAR}.jpg")
    near_rgb = np.asarray(near).astype(int)
    assert (near_rgb[..., 0] != near_rgb[..., 2]).any()  # not equal channels...
    assert 0 < chroma_magnitude(near) < 2.0  # ...but below the threshold
    assert chroma_magnitude(load_rgb(images / f"im{SEPIA}.jpg")) > 3.0


def test_grayscale_removed_and_counted(scan):
    assert scan.grayscale_removed == 3
    reasons = {int(s.path.stem[2:]): s.reason for s in scan.skipped}
    assert set(reasons) == GRAYSCALE | {TRUNCATED}
    assert "mode L" in reasons[GRAY_L]
    assert reasons[GRAY_EQUAL].startswith("grayscale: mean chroma 0.00")
    assert reasons[GRAY_NEAR].startswith("grayscale")
    assert reasons[TRUNCATED].startswith("unreadable: truncated")
    assert scan.skip_reasons() == {"grayscale": 3, "unreadable": 1}
    ids = [r.image_id for r in scan.records]
    assert ids == sorted(set(range(1, N_IMAGES + 1)) - GRAYSCALE - {TRUNCATED})
    assert SEPIA in ids


def test_records_concepts_and_categories(scan, built):
    by_id = {r.image_id: r for r in scan.records}
    first = by_id[1]
    assert isinstance(first, MirflickrRecord)
    assert first.path == built / "mirflickr" / "im1.jpg"
    assert first.concepts == ("dog", "people", "sky")
    assert first.category == "people"  # dog + people -> people (priority)
    assert by_id[9].concepts == () and by_id[9].category == "others"  # untagged
    for number, category in EXPECTED.items():
        if number in by_id:
            assert by_id[number].category == category, number
    counts = scan.counts()
    assert list(counts) == list(CATEGORIES)
    assert sum(counts.values()) == len(scan.records)
    assert counts == {c: sum(r.category == c for r in scan.records) for c in CATEGORIES}
    assert scan.annotation_files["people"] == "people.txt"
    assert scan.unmatched_concepts  # the default mapping names concepts this copy lacks
    assert "per category" in scan.summary()


def test_relevant_only_reads_the_r1_lists(built):
    tags, files = read_annotations(built / ANNOTATIONS_DIRNAME, relevant_only=True)
    assert files["people"] == "people_r1.txt" and files["dog"] == "dog_r1.txt"
    assert files["sky"] == "sky.txt"  # no sky_r1.txt: the plain list is all there is
    assert tags[1] == ("sky",)  # image 1 is in neither people_r1 nor dog_r1
    scan = read_mirflickr(built, relevant_only=True)
    by_id = {r.image_id: r for r in scan.records}
    assert by_id[1].category == "scenery"
    assert by_id[12].category == "people"
    assert by_id[18].category == "others"  # in people.txt but not in people_r1.txt


def test_split_is_stratified_and_deterministic(scan, built):
    split = scan.split
    assert split is not None
    everything = split.train + split.val + split.test
    assert sorted(r.image_id for r in everything) == [r.image_id for r in scan.records]
    per_part = scan.split_counts()
    for category, total in scan.counts().items():
        expected = split_counts(total, (0.75, 0.15, 0.10))
        got = [per_part[p][category] for p in ("train", "val", "test")]
        assert got == expected, category
    assert len(split.train) == pytest.approx(0.75 * len(everything), abs=6)
    again = read_mirflickr(built, seed=3)
    assert [r.image_id for r in again.split.test] == [r.image_id for r in split.test]
    other = read_mirflickr(built, seed=4)
    assert [r.image_id for r in other.split.train] != [r.image_id for r in split.train]
    assert read_mirflickr(built).split is None


def test_root_may_be_the_images_folder(built):
    scan = read_mirflickr(built / "mirflickr", drop_grayscale=False)
    assert len(scan.records) == N_IMAGES  # header check only: grayscale and truncated kept
    assert scan.grayscale_removed == 0


def test_custom_mapping(built):
    mapping = CategoryMapping([("animals", ["dog"]), ("people", ["people"])])
    scan = read_mirflickr(built, mapping=mapping)
    assert {r.image_id: r.category for r in scan.records}[1] == "animals"


def test_progress_callback(built):
    calls = []
    read_mirflickr(built, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, N_IMAGES) and calls[-1] == (N_IMAGES, N_IMAGES)
    assert [d for d, _ in calls] == list(range(N_IMAGES + 1))


def test_fast_check_agrees_with_the_exact_one(built, tmp_path):
    # a large near-grey photograph with fine colour noise: the borderline path
    rng = np.random.default_rng(1)
    base = np.tile(np.linspace(30, 220, 500), (375, 1))[..., None]
    noisy = np.clip(base + rng.normal(0, 2.5, (375, 500, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.jpg", quality=95)
    paths = sorted((built / "mirflickr").glob("im*.jpg")) + [tmp_path / "noisy.jpg"]
    for path in paths:
        fast = grayscale_verdict(path, fast=True)
        exact = grayscale_verdict(path, fast=False)
        assert (fast is None) == (exact is None), path.name
        assert (fast or "").split(":")[0] == (exact or "").split(":")[0], path.name


def test_missing_annotations_folder(root):
    shutil.rmtree(root / ANNOTATIONS_DIRNAME)
    with pytest.raises(DatasetError, match=ANNOTATIONS_DIRNAME):
        read_mirflickr(root)


def test_no_images_folder(tmp_path):
    (tmp_path / ANNOTATIONS_DIRNAME).mkdir()
    with pytest.raises(DatasetError, match="no MIRFLICKR images folder") as info:
        read_mirflickr(tmp_path)
    assert info.value.path == str(tmp_path)
    (tmp_path / "mirflickr").mkdir()
    with pytest.raises(DatasetError, match="no MIRFLICKR images"):
        read_mirflickr(tmp_path)


def test_annotation_line_that_is_not_a_number(root):
    path = root / ANNOTATIONS_DIRNAME / "sky.txt"
    path.write_text("1\n2\n\nim3\n")
    with pytest.raises(DatasetError, match=r"line 4: not an image number: 'im3'") as info:
        read_mirflickr(root)
    assert info.value.path == str(path)
    path.write_text("0\n")
    with pytest.raises(DatasetError, match="line 1: image numbers start at 1"):
        read_mirflickr(root)


def test_ids_of_absent_images(root):
    with (root / ANNOTATIONS_DIRNAME / "dog.txt").open("a") as f:
        f.write("99\n")
    with pytest.raises(DatasetError, match=r"1 of the 45 annotated images are missing"):
        read_mirflickr(root)  # 1/46 > 1 %: an incomplete copy
    scan = read_mirflickr(root, max_missing_fraction=0.05)
    missing = [s for s in scan.skipped if s.reason.startswith("missing")]
    assert [s.path.name for s in missing] == ["im99.jpg"]
    assert "(dog)" in missing[0].reason
    assert len(scan.records) == N_IMAGES - 4


def test_empty_result(root):
    images = root / "mirflickr"
    for path in images.glob("im*.jpg"):
        path.unlink()
    gray = Image.fromarray(np.full((20, 20), 128, np.uint8), "L")
    gray.save(images / "im1.jpg")
    with pytest.raises(DatasetError, match=r"no usable images \(1 grayscale, 43 missing\)"):
        read_mirflickr(root, max_missing_fraction=1.0)


def test_records_feed_the_torch_dataset(scan):
    from colourmodels.data.dataset import ColourisationDataset

    dataset = ColourisationDataset(scan.split.train, "lab", 32, categories=CATEGORIES)
    luma, chroma, index = dataset[0]
    assert luma.shape == (1, 32, 32) and chroma.shape == (2, 32, 32)
    assert CATEGORIES[index] == scan.split.train[0].category
