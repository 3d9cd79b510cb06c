"""Read MIRFLICKR-25000 as distributed: images, concept annotations, categories, split.

Layout (method section 1)::

    root/
      mirflickr/im1.jpg ... im25000.jpg          (also mirflickr/meta/..., ignored)
      mirflickr25k_annotations_v080/
        README.txt
        animals.txt  animals_r1.txt?  baby.txt  baby_r1.txt  ...   (1-based image numbers)

``root`` may be the folder holding ``mirflickr/`` or the ``mirflickr`` folder itself;
the annotations folder is looked for beside the images folder, inside it, and in
``root`` (or given explicitly with ``annotations=``).

**Which annotation files.** Each concept has ``{concept}.txt``, the images in which
the annotators saw the concept at all, and 14 of the 24 concepts also have
``{concept}_r1.txt``, the stricter subset where the concept is *relevant* (salient).
By default (``relevant_only=False``) the reader uses the plain ``{concept}.txt``
lists: the paper does not say which it used, the plain lists tag more images (so
fewer fall into "others"), and a concept merely visible in a photograph still shapes
its colours. With ``relevant_only=True`` it reads ``{concept}_r1.txt`` where one
exists and ``{concept}.txt`` for the concepts that have no ``_r1`` file;
:attr:`MirflickrScan.annotation_files` records the file read for each concept. Every
image found in the folder is kept, tagged or not: untagged images, and images whose
concepts no rule names (e.g. food, indoor), are "others".

**Categories** come from a :class:`~colourmodels.data.categories.CategoryMapping`
(:data:`~colourmodels.data.categories.DEFAULT_MAPPING` unless given).

**Grayscale removal** (``drop_grayscale=True``, the default) uses
:func:`~colourmodels.data.images.is_grayscale` at
:data:`~colourmodels.data.images.GRAYSCALE_THRESHOLD` (mean CIE a*b* chroma 2.0). To
read 25,000 JPEGs quickly, each is first decoded at a reduced scale (libjpeg's DCT
scaling through Pillow's draft mode: 1/4 of the side for MIRFLICKR's 500 px images,
about 4x fewer pixels to decode and convert). Averaging lowers chroma, so an image
whose reduced copy already has a chroma of at least ``1.5 x threshold`` is a colour
image at full size too; every other image (the grayscale ones and the borderline
ones) is decoded in full with :func:`~colourmodels.data.images.load_rgb` and judged by
:func:`~colourmodels.data.images.is_grayscale` exactly as documented there, so the
verdict is the documented one. Decoding errors (truncated, corrupt) are caught at
either scale and the file is skipped with the reason. Work runs on a thread pool
(Pillow and NumPy release the GIL).

**Absent images.** An image number listed in the annotations whose ``imN.jpg`` is not
in the folder is reported in :attr:`MirflickrScan.skipped` ("missing: ..."). If more
than ``max_missing_fraction`` (default 1 %) of the annotated image numbers are absent,
the copy is taken to be incomplete (an interrupted download or unzip) and the reader
raises :class:`DatasetError`; pass ``max_missing_fraction=1.0`` to import a subset on
purpose.

Errors are :class:`DatasetError` (a ``ValueError``) naming the path: no images folder,
no annotations folder or no concept files in it, an annotation line that is not a
positive integer (file and line number), too many absent images, and an empty result.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .categories import CATEGORIES, DEFAULT_MAPPING, CategoryMapping
from .folders import ImageRecord, Skipped, count_reasons
from .images import (
    GRAYSCALE_THRESHOLD,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageError,
    chroma_magnitude,
    is_grayscale,
    load_rgb,
    probe_image,
    to_rgb,
)
from .split import DEFAULT_FRACTIONS, Split, stratified_split

__all__ = [
    "ANNOTATIONS_DIRNAME",
    "IMAGES_DIRNAME",
    "MIRFLICKR_CONCEPTS",
    "DatasetError",
    "MirflickrRecord",
    "MirflickrScan",
    "grayscale_verdict",
    "locate",
    "read_annotations",
    "read_mirflickr",
]

IMAGES_DIRNAME = "mirflickr"
ANNOTATIONS_DIRNAME = "mirflickr25k_annotations_v080"

#: The 24 concepts of the v080 annotations.
MIRFLICKR_CONCEPTS: tuple[str, ...] = (
    "animals",
    "baby",
    "bird",
    "car",
    "clouds",
    "dog",
    "female",
    "flower",
    "food",
    "indoor",
    "lake",
    "male",
    "night",
    "people",
    "plant_life",
    "portrait",
    "river",
    "sea",
    "sky",
    "structures",
    "sunset",
    "transport",
    "tree",
    "water",
)

_IMAGE_NAME = re.compile(r"im([1-9][0-9]*)\.jpg", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")
_RELEVANT_SUFFIX = "_r1"
#: The reduced decode keeps the shorter side at least this long (1/4 scale at 500x375).
_DRAFT_MIN_SIDE = 64
#: A reduced copy with chroma >= this x threshold is a colour image without a full decode.
_FAST_MARGIN = 1.5
_SINGLE_CHANNEL = ("L", "1", "I", "F", "LA", "La")

Progress = Callable[[int, int], None]


class DatasetError(ValueError):
    """A data set that cannot be read; ``path`` names the file or folder at fault."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True, order=True)
class MirflickrRecord(ImageRecord):
    """One MIRFLICKR image: ``path``, ``category`` (as :class:`ImageRecord`, so it feeds
    :class:`~colourmodels.data.dataset.ColourisationDataset` and
    :func:`~colourmodels.data.split.stratified_split` directly), its 1-based
    ``image_id`` and its sorted ``concepts``."""

    image_id: int = 0
    concepts: tuple[str, ...] = ()


@dataclass
class MirflickrScan:
    """What :func:`read_mirflickr` found."""

    images_dir: Path
    annotations_dir: Path
    records: list[MirflickrRecord]
    skipped: list[Skipped] = field(default_factory=list)
    grayscale_removed: int = 0
    mapping: CategoryMapping = DEFAULT_MAPPING
    relevant_only: bool = False
    #: concept -> annotation file name read for it
    annotation_files: dict[str, str] = field(default_factory=dict)
    #: concepts the mapping names that have no annotation file (they never match)
    unmatched_concepts: tuple[str, ...] = ()
    seed: int | None = None
    split: Split[MirflickrRecord] | None = None

    @property
    def categories(self) -> tuple[str, ...]:
        return CATEGORIES

    def counts(self) -> dict[str, int]:
        """Images kept per category, all six in :data:`CATEGORIES` order (zeros too)."""
        found = Counter(r.category for r in self.records)
        return {name: found.get(name, 0) for name in CATEGORIES}

    def split_counts(self) -> dict[str, dict[str, int]]:
        """``{"train": {category: n}, "val": ..., "test": ...}``; empty without a split."""
        if self.split is None:
            return {}
        result = {}
        for part, items in self.split.parts().items():
            found = Counter(r.category for r in items)
            result[part] = {name: found.get(name, 0) for name in CATEGORIES}
        return result

    def skip_reasons(self) -> dict[str, int]:
        """How many files were skipped for each kind of reason (text before ``:``)."""
        return count_reasons(s.reason for s in self.skipped)

    def summary(self) -> str:
        """A few lines for a log or a command line."""
        lines = [
            f"MIRFLICKR: {len(self.records)} images kept from {self.images_dir}",
            f"  grayscale removed: {self.grayscale_removed}",
            f"  annotations: {'_r1 (relevant)' if self.relevant_only else 'plain'} lists",
            "  per category: " + ", ".join(f"{k} {v}" for k, v in self.counts().items()),
        ]
        other = {k: v for k, v in self.skip_reasons().items() if k != "grayscale"}
        if other:
            lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))
        for part, counts in self.split_counts().items():
            total = sum(counts.values())
            lines.append(f"  {part} ({total}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return "\n".join(lines)


# --------------------------------------------------------------------------- layout


def _has_images(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(_IMAGE_NAME.fullmatch(e.name) and e.is_file() for e in entries)
    except OSError:
        return False


def locate(
    root: str | os.PathLike[str], annotations: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """``(images_dir, annotations_dir)`` for a MIRFLICKR copy at ``root`` (see the module
    docstring); :class:`DatasetError` if either is missing."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise DatasetError(root_path, "not a folder")
    nested = root_path / IMAGES_DIRNAME
    if nested.is_dir():
        images_dir = nested
        if not _has_images(images_dir):
            raise DatasetError(
                images_dir, "no MIRFLICKR images (im1.jpg ... im25000.jpg) in this folder"
            )
    elif _has_images(root_path):
        images_dir = root_path
    else:
        raise DatasetError(
            root_path,
            f"no MIRFLICKR images folder: expected {IMAGES_DIRNAME}/im1.jpg ... im25000.jpg "
            "here, or this folder to be that images folder",
        )

    if annotations is not None:
        annotations_dir = Path(annotations)
        if not annotations_dir.is_dir():
            raise DatasetError(annotations_dir, "annotations folder not found")
        return images_dir, annotations_dir
    searched: list[Path] = []
    for base in (images_dir.parent, images_dir, root_path):
        candidate = base / ANNOTATIONS_DIRNAME
        if candidate not in searched:
            searched.append(candidate)
        if candidate.is_dir():
            return images_dir, candidate
    raise DatasetError(
        root_path,
        f"no annotations folder {ANNOTATIONS_DIRNAME!r} (looked for "
        + ", ".join(str(p) for p in searched)
        + ")",
    )


def _read_numbers(path: Path) -> list[int]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not a text file of image numbers ({exc.reason})") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from None
    numbers = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value:
            continue
        if not _NUMBER.fullmatch(value):
            raise DatasetError(path, f"line {lineno}: not an image number: {value[:40]!r}")
        number = int(value)
        if number < 1:
            raise DatasetError(path, f"line {lineno}: image numbers start at 1, got {number}")
        numbers.append(number)
    return numbers


def read_annotations(
    annotations_dir: str | os.PathLike[str], *, relevant_only: bool = False
) -> tuple[dict[int, tuple[str, ...]], dict[str, str]]:
    """Read the concept lists: ``({image_id: sorted concepts}, {concept: file read})``.

    Every ``*.txt`` file but ``README.txt`` is a concept list; ``{concept}_r1.txt`` is
    the concept's "relevant" list (see the module docstring for which is read).
    """
    folder = Path(annotations_dir)
    plain: dict[str, Path] = {}
    relevant: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or entry.suffix.lower() != ".txt" or entry.name.startswith("."):
            continue
        stem = entry.stem
        if stem.lower() == "readme":
            continue
        if stem.endswith(_RELEVANT_SUFFIX):
            relevant[stem[: -len(_RELEVANT_SUFFIX)]] = entry
        else:
            plain[stem] = entry
    if not plain and not relevant:
        raise DatasetError(folder, "no concept files ({concept}.txt) in the annotations folder")

    chosen: dict[str, Path] = {}
    for concept in sorted(set(plain) | set(relevant)):
        if relevant_only and concept in relevant:
            chosen[concept] = relevant[concept]
        elif concept in plain:
            chosen[concept] = plain[concept]
        else:  # only an _r1 list exists: it is all there is
            chosen[concept] = relevant[concept]

    tags: dict[int, set[str]] = {}
    for concept, path in chosen.items():
        for number in _read_numbers(path):
            tags.setdefault(number, set()).add(concept)
    return (
        {number: tuple(sorted(concepts)) for number, concepts in sorted(tags.items())},
        {concept: path.name for concept, path in chosen.items()},
    )


def _list_images(images_dir: Path) -> tuple[dict[int, Path], list[Skipped]]:
    found: dict[int, Path] = {}
    skipped: list[Skipped] = []
    with os.scandir(images_dir) as entries:
        names = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    for name in names:
        match = _IMAGE_NAME.fullmatch(name)
        path = images_dir / name
        if match is None:
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                skipped.append(Skipped(path, "not a MIRFLICKR image name (imN.jpg)"))
            continue
        number = int(match.group(1))
        if number in found:
            skipped.append(Skipped(path, f"duplicate image number: {found[number].name}"))
            continue
        found[number] = path
    return found, skipped


# ------------------------------------------------------------------ grayscale check


def _load_reduced(path: Path, max_pixels: int) -> Image.Image:
    """Decode at a reduced scale (JPEG draft mode); other formats decode in full.
    Single-channel images keep their mode; everything else becomes RGB."""
    probe_image(path, max_pixels=max_pixels)  # format whitelist and pixel limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format in ("JPEG", "MPO"):
                    image.draft(None, (_DRAFT_MIN_SIDE, _DRAFT_MIN_SIDE))
                image.load()
                if image.mode in _SINGLE_CHANNEL:
                    return image.copy()
                return to_rgb(image, name=str(path))
    except ImageError:
        raise
    except Exception as exc:
        reason = str(exc)
        kind = "truncated" if "truncated" in reason.lower() else "corrupt"
        raise ImageError(path, f"{kind} image data ({reason})") from None


def grayscale_verdict(
    path: str | os.PathLike[str],
    *,
    threshold: float = GRAYSCALE_THRESHOLD,
    max_pixels: int = MAX_PIXELS,
    fast: bool = True,
) -> str | None:
    """``None`` for a readable colour image, else the reason to leave it out
    (``"grayscale: ..."`` or ``"unreadable: ..."``). ``fast=True`` takes the reduced-scale
    shortcut described in the module docstring; ``fast=False`` always decodes in full."""
    path = Path(path)
    try:
        if fast:
            small = _load_reduced(path, max_pixels)
            if small.mode in _SINGLE_CHANNEL:
                return f"grayscale: single-channel image (mode {small.mode})"
            if chroma_magnitude(small) >= _FAST_MARGIN * threshold:
                return None
        image = load_rgb(path, max_pixels=max_pixels)
        if is_grayscale(image, threshold):
            chroma = chroma_magnitude(image)
            return f"grayscale: mean chroma {chroma:.2f} < {threshold:g} (CIE a*b* units)"
        return None
    except ImageError as exc:
        return f"unreadable: {exc.reason}"


# ------------------------------------------------------------------------- reader


def read_mirflickr(
    root: str | os.PathLike[str],
    *,
    annotations: str | os.PathLike[str] | None = None,
    mapping: CategoryMapping = DEFAULT_MAPPING,
    relevant_only: bool = False,
    drop_grayscale: bool = True,
    grayscale_threshold: float = GRAYSCALE_THRESHOLD,
    seed: int | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    max_missing_fraction: float = 0.01,
    max_pixels: int = MAX_PIXELS,
    workers: int | None = None,
    progress: Progress | None = None,
) -> MirflickrScan:
    """Read a MIRFLICKR-25000 copy (see the module docstring).

    ``drop_grayscale=False`` keeps grayscale images and checks headers only (fast, but
    a truncated file is not noticed). With a ``seed``, :attr:`MirflickrScan.split` is
    the stratified train / validation / test split (by category, ``fractions``
    0.75 / 0.15 / 0.10 by default, keyed on the image number so it does not depend on
    where the files lie). ``progress(done, total)`` is called from the calling thread
    after each image is checked. ``workers`` threads decode (default ``min(8, cpus)``).
    """
    if not 0.0 <= max_missing_fraction <= 1.0:
        raise ValueError("max_missing_fraction must lie in [0, 1]")
    images_dir, annotations_dir = locate(root, annotations)
    tags, annotation_files = read_annotations(annotations_dir, relevant_only=relevant_only)
    present, skipped = _list_images(images_dir)

    missing = sorted(set(tags) - set(present))
    if tags and len(missing) > max_missing_fraction * len(tags):
        examples = ", ".join(f"im{n}.jpg" for n in missing[:5])
        raise DatasetError(
            images_dir,
            f"{len(missing)} of the {len(tags)} annotated images are missing "
            f"(e.g. {examples}; more than {max_missing_fraction:.0%} allowed): an incomplete "
            "copy? Pass max_missing_fraction=1.0 to import a subset on purpose",
        )
    for number in missing:
        skipped.append(
            Skipped(
                images_dir / f"im{number}.jpg",
                f"missing: listed in the annotations ({', '.join(tags[number])}) "
                "but the file is absent",
            )
        )

    numbers = sorted(present)
    total = len(numbers)

    def check(number: int) -> str | None:
        path = present[number]
        if drop_grayscale:
            return grayscale_verdict(path, threshold=grayscale_threshold, max_pixels=max_pixels)
        try:
            probe_image(path, max_pixels=max_pixels)
        except ImageError as exc:
            return f"unreadable: {exc.reason}"
        return None

    verdicts: list[str | None] = []
    if progress is not None:
        progress(0, total)
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if drop_grayscale and n_workers > 1 and total > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for verdict in pool.map(check, numbers):
                verdicts.append(verdict)
                if progress is not None:
                    progress(len(verdicts), total)
    else:
        for number in numbers:
            verdicts.append(check(number))
            if progress is not None:
                progress(len(verdicts), total)

    records: list[MirflickrRecord] = []
    grayscale_removed = 0
    for number, verdict in zip(numbers, verdicts):
        if verdict is None:
            concepts = tags.get(number, ())
            records.append(
                MirflickrRecord(
                    path=present[number],
                    category=mapping.category_of(concepts),
                    image_id=number,
                    concepts=concepts,
                )
            )
        else:
            if verdict.startswith("grayscale"):
                grayscale_removed += 1
            skipped.append(Skipped(present[number], verdict))
    skipped.sort(key=lambda s: (_number_of(s.path), s.path.name))

    if not records:
        reasons = count_reasons(s.reason for s in skipped)
        detail = ", ".join(f"{n} {k}" for k, n in sorted(reasons.items())) or "none found"
        raise DatasetError(images_dir, f"no usable images ({detail})")

    split = None
    if seed is not None:
        split = stratified_split(
            records, seed=seed, fractions=fractions, key=lambda r: f"{r.image_id:09d}"
        )
    return MirflickrScan(
        images_dir=images_dir,
        annotations_dir=annotations_dir,
        records=records,
        skipped=skipped,
        grayscale_removed=grayscale_removed,
        mapping=mapping,
        relevant_only=relevant_only,
        annotation_files=annotation_files,
        unmatched_concepts=tuple(sorted(mapping.concepts - set(annotation_files))),
        seed=seed,
        split=split,
    )


def _number_of(path: Path) -> int:
    match = _IMAGE_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else 0
