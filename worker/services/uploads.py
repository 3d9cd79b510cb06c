"""Runs made elsewhere: a zip of colourised images and a CSV manifest, validated, stored
and evaluated like a trained run (``ModelRun(kind="uploaded")``), then usable in studies.

**The manifest** is ``manifest.csv`` at the zip's root (or in its one top-level folder), or
a separate CSV file passed as ``manifest=`` (which then wins over one in the zip). UTF-8
(a byte-order mark is fine), a header row, comma-separated (``;`` or tab also recognised
from the header). Column names are matched case-insensitively:

``file``            the colourised image: its path inside the zip (``/`` or ``\\``); a path
                    relative to the manifest's folder, or to the zip's one top-level
                    folder, also matches
``image_id``        its ground truth: the id of a ``DatasetImage`` of the chosen data set;
``original_name``   or instead its original name in that data set (one of the two columns
                    is required; where a row gives both, they must name the same image)
``category``        optional: the category the model routed the image to (one of the data
                    set's categories), stored as ``ColourisedImage.routed_category``
``model``           optional: the model's name; one value for the whole upload (empty cells
                    allowed), stored as ``run.config["model"]``
``true_category``   optional, not read: the ground truth's category (the test split's zip,
                    :mod:`worker.downloads`, lists it)

Other columns are ignored (noted). Blank lines are skipped. Errors name the manifest's
line number (the header is line 1) and the file. A cell that starts with an apostrophe
before ``=``, ``+``, ``-`` or ``@`` (how a spreadsheet-safe CSV writes text that starts
like a formula: the test split's manifest, :func:`manifest_text`, does) is read without
that apostrophe; to give text that itself starts so, double the apostrophe.

**Refused**, with every problem found listed (so that one round of fixes is enough), and
nothing left behind (no run row, no stored file): a hostile or broken zip
(:func:`colourmodels.data.archives.read_zip`'s :class:`ArchiveError`), no manifest, a
missing column, an empty manifest, an image id or name that is not in the chosen data set
(an id of another data set's image reads the same as one that does not exist: nothing
names another data set), a ground truth that is **not in the test split** (refused, not
warned: the paper's metrics and the studies are over the test split, and a model's output
for a training image would flatter it), a ground truth or a file listed twice, a file
missing from the zip or not an image, an unreadable, corrupt or oversized image
(:func:`load_rgb`), an image smaller than the SSIM window (7 x 7), an image whose size is
neither its ground truth's nor square, two different model names, an unknown category.
Files in the zip that the manifest does not list are **ignored**, with a note in
``run.config["manifest"]["notes"]``. The upload need not cover the whole test split;
``config["manifest"]`` records how much it covers.

**Sizes.** Each colourised image is compared with its ground truth at the colourised
image's size: the ground truth as it is when the sizes match, else brought to the
colourised image's side by :func:`colourmodels.data.dataset.resize_square` (shorter side
scaled, bicubic, centred square), which is how a model trained here saw it; so a colourised
image of another size must be square.

**Metrics** (method.md §6), per image (:func:`image_metrics`, which is
:func:`colourmodels.evaluation.colourised_image_metrics`, the code ``python -m colourmodels
ensemble evaluate --at photo`` scores with) then summarised exactly as for a trained run
(:mod:`worker.services.evaluation`): L1 distance and chroma MAE on the normalised chroma of
:func:`colourmodels.colour.rgb_to_luma_chroma` in the run's colour space (the colourised
image's own chroma against the ground truth's), SSIM, PSNR and colourfulness on RGB in
[0, 1] (float32). One difference from a trained run: the colourised image keeps its own
luminance (a trained run's output is recombined with the true luminance). Non-finite values
(PSNR of an image identical to its ground truth is +inf) are stored as ``None`` (JSON, and
PostgreSQL's jsonb, have no infinity) and so left out of the means.

**API.** :func:`uploaded_run_create` validates and stores, then evaluates in the same call
(``evaluate=True``, the default) and returns the finished run; an evaluation failure then
deletes the run and its files too. With ``evaluate=False`` it returns the run in status
``evaluating`` for a Celery task (``cpu.evaluate_upload``; send it with
:func:`worker.services.recovery.work_send`) to finish by calling
:func:`uploaded_run_evaluate` with the run's id; that function claims the run as
``run_evaluate`` does (:mod:`worker.services.claims`): it does nothing unless the run is an
uploaded run in status ``evaluating`` that no living attempt holds, and on an error it
marks the run failed with the reason. The researcher's page calls none of this in its
request: it stores the zip (:func:`worker.services.imports.run_upload_job_create`) and the
task ``cpu.check_run_upload`` calls :func:`uploaded_run_create` under the job's claim.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from colourmodels.csv_cells import cell_text, csv_text
from colourmodels.data.archives import ArchiveError, ZipLimits, read_zip
from colourmodels.data.images import MAX_PIXELS, ImageError, load_rgb
from colourmodels.evaluation import colourised_image_metrics as image_metrics
from worker.models import ColourisedImage, Dataset, DatasetImage, ModelRun
from worker.services.claims import ClaimLost
from worker.services.datasets import encoded_for_storage
from worker.services.evaluation import (
    evaluation_claim,
    evaluation_failed,
    metrics_summary,
)
from worker.services.references import ReferenceScores, train_chroma_means
from worker.services.sources import upload_zip_limits

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "UploadError",
    "image_metrics",
    "uploaded_run_create",
    "uploaded_run_evaluate",
]

#: The manifest's name inside the zip.
MANIFEST_NAME = "manifest.csv"
#: A manifest longer than this is refused (about 200,000 rows of ordinary length).
MAX_MANIFEST_BYTES = 16 * 2**20
#: SSIM's 7 x 7 window needs at least this many pixels a side.
MIN_SIDE = 7
#: At most this many problems are spelled out in an error's message (all are in .problems).
_SHOWN_PROBLEMS = 20
#: Files in the zip that the manifest does not list: at most this many are named in notes.
_NAMED_IGNORED = 20
_ID_COLUMNS = ("image_id", "original_name")
_KNOWN_COLUMNS = ("file", *_ID_COLUMNS, "category", "model", "true_category")
_DELIMITERS = (",", ";", "\t")
#: Each column the manifest may have, and what it holds (the upload page shows these).
MANIFEST_COLUMNS = (
    ("file", "the colourised image's path inside the zip"),
    ("image_id", "its ground truth's id in the data set (from the test split's manifest)"),
    ("original_name", "or instead the ground truth's original file name in the data set"),
    ("category", "optional: the category the model routed the image to"),
    ("model", "optional: the model's name, the same on every row"),
    ("true_category", "optional, not read: the ground truth's category (the test split's)"),
)
assert tuple(name for name, _ in MANIFEST_COLUMNS) == _KNOWN_COLUMNS
#: The columns of a manifest this platform writes (the test split's, an example).
WRITTEN_COLUMNS = ("file", "image_id", "true_category")


def manifest_text(rows) -> str:
    """A manifest this module accepts: the header ``WRITTEN_COLUMNS`` and one row per
    ``(file, image_id, true category)``. Spreadsheet-safe: text that starts like a formula
    (a category named ``=2+3``) is written with a leading apostrophe
    (:func:`colourmodels.csv_cells.text_cell`), which the reader takes off again."""
    return csv_text(WRITTEN_COLUMNS, rows)


Progress = Callable[[int, int], None]
Source = str | os.PathLike[str] | BinaryIO


class UploadError(Exception):
    """An upload that is refused. ``problems`` lists every problem found (each naming the
    manifest line and file where there is one); the message shows the first few."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        shown = self.problems[:_SHOWN_PROBLEMS]
        if len(self.problems) == 1:
            message = shown[0]
        else:
            message = f"{len(self.problems)} problems:\n  " + "\n  ".join(shown)
            if len(self.problems) > len(shown):
                message += f"\n  … and {len(self.problems) - len(shown)} more"
        super().__init__(message)


@dataclass(frozen=True)
class _Row:
    line: int
    file: str
    source: DatasetImage
    category: str


@dataclass
class _Manifest:
    label: str
    folder: str  # the manifest's folder inside the zip ("" at the root or when separate)
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line, {column: value})
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Reading the zip and the manifest
# --------------------------------------------------------------------------------------


def _norm(path: str) -> str:
    """A path inside the zip in one spelling: ``/`` separators, no empty or ``.`` parts."""
    return "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


def _label(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", "") or "upload")).name


def _decode_manifest(data: bytes, label: str) -> str:
    if len(data) > MAX_MANIFEST_BYTES:
        raise UploadError(f"{label}: over the limit of {MAX_MANIFEST_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"{label}: not UTF-8 text ({exc})") from None


def _read_separate_manifest(manifest: Source) -> tuple[str, str]:
    label = _label(manifest)
    if isinstance(manifest, (str, os.PathLike)):
        try:
            with open(manifest, "rb") as f:
                data = f.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise UploadError(f"{label}: cannot read the manifest ({exc})") from None
    else:
        if hasattr(manifest, "seek"):
            manifest.seek(0)
        data = manifest.read(MAX_MANIFEST_BYTES + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    return label, _decode_manifest(data, label)


def _read_zip_manifest(archive: Source) -> tuple[str, str, str] | None:
    """(label, folder, text) of manifest.csv at the zip's root or in its one top-level
    folder; ``None`` when there is none. The zip was checked by read_zip already."""
    if not isinstance(archive, (str, os.PathLike)) and hasattr(archive, "seek"):
        archive.seek(0)
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir() and _norm(i.filename)]
        tops = {_norm(i.filename).split("/")[0] for i in infos}
        candidates = [MANIFEST_NAME]
        if len(tops) == 1:
            candidates.append(f"{next(iter(tops))}/{MANIFEST_NAME}")
        by_name = {_norm(i.filename).lower(): i for i in infos}
        for wanted in candidates:
            info = by_name.get(wanted.lower())
            if info is None:
                continue
            label = _norm(info.filename)
            if info.file_size > MAX_MANIFEST_BYTES:
                raise UploadError(f"{label}: over the limit of {MAX_MANIFEST_BYTES:,} bytes")
            try:
                with zf.open(info) as f:
                    data = f.read(MAX_MANIFEST_BYTES + 1)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                raise UploadError(f"{label}: cannot be read from the zip ({exc})") from None
            folder = str(PurePosixPath(label).parent)
            return label, "" if folder == "." else folder, _decode_manifest(data, label)
    return None


def _parse_manifest(label: str, folder: str, text: str) -> _Manifest:
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max(_DELIMITERS, key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise UploadError(f"{label}: empty (it needs a header row and one row per image)")
        columns = [cell.strip().lstrip("\ufeff").lower() for cell in header]
        problems = []
        repeated = sorted(c for c, n in Counter(columns).items() if n > 1 and c)
        if repeated:
            problems.append(f"{label}: column(s) {', '.join(map(repr, repeated))} appear twice")
        shown = ", ".join(repr(c) for c in columns if c) or "none"
        if "file" not in columns:
            problems.append(f"{label}: no 'file' column (its columns: {shown})")
        if not any(c in columns for c in _ID_COLUMNS):
            problems.append(
                f"{label}: no 'image_id' or 'original_name' column naming each image's ground "
                f"truth (its columns: {shown})"
            )
        if problems:
            raise UploadError(problems)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            line = reader.line_num
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
                problems.append(
                    f"{label} line {line}: {len(cells)} fields, but the header has {len(columns)}"
                )
                continue
            # A cell written spreadsheet-safe ('=2+3) holds the text after the apostrophe.
            values = {
                c: cell_text(cells[i]) if i < len(cells) else "" for i, c in enumerate(columns)
            }
            rows.append((line, values))
    except csv.Error as exc:
        raise UploadError(f"{label} line {reader.line_num}: not valid CSV ({exc})") from None
    if problems:
        raise UploadError(problems)
    if not rows:
        raise UploadError(f"{label}: no rows (it needs one row per colourised image)")
    manifest = _Manifest(label=label, folder=folder, columns=columns, rows=rows)
    extra = [c for c in columns if c and c not in _KNOWN_COLUMNS]
    if extra:
        manifest.notes.append(f"{label}: column(s) ignored: {', '.join(extra)}")
    return manifest


# --------------------------------------------------------------------------------------
# Checking the manifest's rows against the data set and the zip
# --------------------------------------------------------------------------------------


def _where(manifest: _Manifest, line: int, file: str) -> str:
    return f"{manifest.label} line {line}" + (f" (file {file!r})" if file else "")


def _resolve_sources(
    manifest: _Manifest, dataset: Dataset, problems: list[str]
) -> dict[int, DatasetImage]:
    """The ground truth of each row (by line), appending a problem for each one missing."""
    ids, names = set(), set()
    for _, values in manifest.rows:
        raw = values.get("image_id", "")
        if raw.isdigit():
            ids.add(int(raw))
        if values.get("original_name"):
            names.add(values["original_name"])
    # Only this data set's images: an id of another data set must read as one that does
    # not exist (the uploader may not see other data sets, not even their names).
    by_id = {i.pk: i for i in DatasetImage.objects.filter(dataset=dataset, pk__in=ids)}
    by_name = {
        i.original_name: i
        for i in DatasetImage.objects.filter(dataset=dataset, original_name__in=names)
    }
    found = {}
    for line, values in manifest.rows:
        where = _where(manifest, line, values["file"])
        raw_id, name = values.get("image_id", ""), values.get("original_name", "")
        image = None
        if raw_id:
            if not raw_id.isdigit():
                problems.append(f"{where}: image_id {raw_id!r} is not a whole number")
                continue
            image = by_id.get(int(raw_id))
            if image is None:
                problems.append(f"{where}: image {raw_id} is not in data set {dataset.name!r}")
                continue
            if name and name != image.original_name:
                problems.append(
                    f"{where}: image_id {raw_id} is {image.original_name!r}, but "
                    f"original_name says {name!r}"
                )
                continue
        elif name:
            image = by_name.get(name)
            if image is None:
                problems.append(f"{where}: data set {dataset.name!r} has no image named {name!r}")
                continue
        else:
            problems.append(f"{where}: no image_id or original_name for its ground truth")
            continue
        if image.split != DatasetImage.Split.TEST:
            problems.append(
                f"{where}: its ground truth {image.original_name!r} (id {image.pk}) is in the "
                f"{image.split} split; only test images can be uploaded"
            )
            continue
        found[line] = image
    return found


def _member_index(scan, manifest: _Manifest) -> tuple[dict[str, Path], dict[str, str]]:
    """Extracted image members by every path the manifest may use for them, and the
    reasons of the members read_zip left out (by normalised member name)."""
    index: dict[str, Path] = {}
    prefixes = [p for p in (manifest.folder, scan.wrapper) if p]
    for path, member in scan.members.items():
        name = _norm(member)
        index.setdefault(name, path)
    for path, member in scan.members.items():
        name = _norm(member)
        for prefix in prefixes:
            if name.startswith(prefix + "/"):
                index.setdefault(name[len(prefix) + 1 :], path)
    left_out = {}
    for item in scan.skipped:
        name = _norm(item.path.as_posix())
        left_out.setdefault(name, item.reason)
        for prefix in prefixes:
            if name.startswith(prefix + "/"):
                left_out.setdefault(name[len(prefix) + 1 :], item.reason)
    return index, left_out


def _check_rows(
    manifest: _Manifest,
    dataset: Dataset,
    index: dict[str, Path],
    left_out: dict[str, str],
    problems: list[str],
) -> tuple[list[_Row], str]:
    sources = _resolve_sources(manifest, dataset, problems)
    categories = list(dataset.categories)
    models: dict[str, int] = {}
    by_file: dict[str, int] = {}
    by_path: dict[Path, int] = {}
    by_source: dict[int, int] = {}
    rows = []
    for line, values in manifest.rows:
        file = _norm(values["file"])
        where = _where(manifest, line, values["file"])
        ok = True
        if not file:
            problems.append(f"{manifest.label} line {line}: no file named")
            ok = False
        elif file in by_file:
            problems.append(f"{where}: the file is listed twice (also line {by_file[file]})")
            ok = False
        else:
            by_file[file] = line
            path = index.get(file)
            if path is None:
                reason = left_out.get(file)
                problems.append(
                    f"{where}: {reason}" if reason else f"{where}: no such file in the zip"
                )
                ok = False
            elif path in by_path:
                problems.append(f"{where}: the file is listed twice (also line {by_path[path]})")
                ok = False
            else:
                by_path[path] = line
        category = values.get("category", "")
        if category and category not in categories:
            known = ", ".join(categories) if categories else "none: it is uncategorised"
            problems.append(
                f"{where}: category {category!r} is not one of the categories of data set "
                f"{dataset.name!r} ({known})"
            )
            ok = False
        model = values.get("model", "")
        if model:
            models.setdefault(model, line)
        source = sources.get(line)
        if source is None:
            continue
        if source.pk in by_source:
            problems.append(
                f"{where}: ground truth {source.original_name!r} (id {source.pk}) is listed "
                f"twice (also line {by_source[source.pk]})"
            )
            continue
        by_source[source.pk] = line
        if ok:
            rows.append(_Row(line=line, file=file, source=source, category=category))
    if len(models) > 1:
        named = ", ".join(f"{m!r} (line {line})" for m, line in models.items())
        problems.append(f"{manifest.label}: one model per upload, but it names {named}")
    return rows, next(iter(models), "")


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def _checked_image(path: Path, where: str, source: DatasetImage, max_pixels: int):
    """The decoded colourised image, or a problem (a string)."""
    try:
        image = load_rgb(path, name=where, max_pixels=max_pixels)
    except ImageError as exc:
        return f"{where}: {exc.reason}"
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        return (
            f"{where}: {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} are needed "
            "(the SSIM window)"
        )
    if (width, height) != (source.width, source.height) and width != height:
        return (
            f"{where}: {width}x{height} pixels, but its ground truth {source.original_name!r} "
            f"is {source.width}x{source.height}: give it the ground truth's size, or make it "
            "square (the ground truth's centred square is then compared)"
        )
    return image


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------


def _discard(run: ModelRun) -> None:
    names = list(ColourisedImage.objects.filter(run=run).values_list("file", flat=True))
    ModelRun.objects.filter(pk=run.pk).delete()
    for name in names:
        default_storage.delete(name)


def uploaded_run_create(
    *,
    name: str,
    dataset: Dataset,
    archive: Source,
    colour_space: str,
    manifest: Source | None = None,
    user=None,
    evaluate: bool = True,
    limits: ZipLimits | None = None,
    max_pixels: int = MAX_PIXELS,
    progress: Progress | None = None,
    uid: uuid.UUID | None = None,
    on_created: Callable[[ModelRun], None] | None = None,
) -> ModelRun:
    """Validate the zip ``archive`` (a path or a seekable binary file such as an upload)
    and its manifest (``manifest.csv`` in the zip, or ``manifest``: a path or a file),
    store the colourised images under ``runs/<uid>/outputs/`` and register them as a
    ``ModelRun(kind="uploaded")`` of ``dataset`` in ``colour_space`` ("lab" or "yuv").

    ``evaluate=True``: the metrics are computed now and the run returned ``done``.
    ``evaluate=False``: the run is returned ``evaluating``; call
    :func:`uploaded_run_evaluate` (from a task, after the commit) to finish it.
    ``progress(done, total)`` is called per image checked (and per image evaluated).
    ``uid``: the run's uid (its files go under ``runs/<uid>/``; new when ``None``).
    ``on_created(run)`` is called in the transaction that creates the run: a task records
    there that its upload is done, so that the run exists exactly when that is recorded.
    ``limits``: what the zip may be; by default :func:`upload_zip_limits`.

    Raises :class:`UploadError` (listing every problem found) for anything wrong with the
    upload; then nothing is left behind: no run, no stored file.
    """
    name = (name or "").strip()
    if not name:
        raise UploadError("an uploaded run needs a name")
    if len(name) > 200:
        raise UploadError("the run's name is over 200 characters")
    if colour_space not in ("lab", "yuv"):
        raise UploadError(f"colour space must be lab or yuv, not {colour_space!r}")
    archive_label = _label(archive)

    with tempfile.TemporaryDirectory(prefix="upload-run-") as tmp:
        try:
            scan = read_zip(
                archive,
                Path(tmp) / "files",
                limits=limits or upload_zip_limits(),
                max_pixels=max_pixels,
            )
        except ArchiveError as exc:
            raise UploadError(f"the zip was refused: {exc}") from None
        try:
            in_zip_manifest = _read_zip_manifest(archive)
        except UploadError:
            if manifest is None:
                raise
            in_zip_manifest = (MANIFEST_NAME, "", "")  # unreadable, but not needed
        zip_manifest = in_zip_manifest[0] if in_zip_manifest else ""
        if manifest is not None:
            label, text = _read_separate_manifest(manifest)
            parsed = _parse_manifest(label, "", text)
            if in_zip_manifest:
                parsed.notes.append(f"the zip's {zip_manifest} was ignored: {label} was given")
        elif in_zip_manifest is None:
            raise UploadError(
                f"{archive_label}: no {MANIFEST_NAME} at its root (or in its top-level "
                "folder), and no separate manifest was given"
            )
        else:
            label, folder, text = in_zip_manifest
            parsed = _parse_manifest(label, folder, text)
        index, left_out = _member_index(scan, parsed)
        problems: list[str] = []
        rows, model = _check_rows(parsed, dataset, index, left_out, problems)
        if problems:
            raise UploadError(problems)

        uid = uid or uuid.uuid4()
        folder_name = f"runs/{uid.hex}/outputs"
        stored: list[tuple[_Row, str]] = []
        try:
            for done, row in enumerate(rows, start=1):
                path = index[row.file]
                outcome = _checked_image(
                    path, _where(parsed, row.line, row.file), row.source, max_pixels
                )
                if isinstance(outcome, str):
                    problems.append(outcome)
                elif not problems:
                    data, ext = encoded_for_storage(path, outcome)
                    stored_name = default_storage.save(
                        f"{folder_name}/{uuid.uuid4().hex}{ext}", ContentFile(data)
                    )
                    stored.append((row, stored_name))
                if progress:
                    progress(done, len(rows))
            if problems:
                raise UploadError(problems)
            listed = {_norm(scan.members[index[row.file]]) for row in rows}
            in_zip = {_norm(m) for m in scan.members.values()}
            in_zip |= {_norm(item.path.as_posix()) for item in scan.skipped}
            ignored = sorted(in_zip - listed - {zip_manifest})
            notes = list(parsed.notes)
            if ignored:
                shown = ", ".join(ignored[:_NAMED_IGNORED])
                more = (
                    f" and {len(ignored) - _NAMED_IGNORED} more"
                    if len(ignored) > _NAMED_IGNORED
                    else ""
                )
                notes.append(
                    f"{len(ignored)} file(s) in the zip not in the manifest, ignored: {shown}{more}"
                )
            test_total = dataset.images.filter(split=DatasetImage.Split.TEST).count()
            if len(rows) < test_total:
                notes.append(f"covers {len(rows)} of the data set's {test_total} test images")
            config = {
                "model": model or None,
                "manifest": {
                    "archive": archive_label,
                    "source": label,
                    "columns": [c for c in parsed.columns if c],
                    "id_column": "image_id" if "image_id" in parsed.columns else "original_name",
                    "rows": len(rows),
                    "test_images": test_total,
                    "entries": [
                        {"file": row.file, "image_id": row.source.pk, "line": row.line}
                        for row in rows
                    ],
                    "ignored_files": len(ignored),
                    "notes": notes,
                },
            }
            now = timezone.now()
            with transaction.atomic():
                run = ModelRun.objects.create(
                    uid=uid,
                    name=name,
                    kind=ModelRun.Kind.UPLOADED,
                    colour_space=colour_space,
                    dataset=dataset,
                    config=config,
                    status=ModelRun.Status.EVALUATING,
                    created_by=user,
                    owner=user,
                    started_at=now,
                    heartbeat_at=now,
                )
                ColourisedImage.objects.bulk_create(
                    [
                        ColourisedImage(
                            run=run,
                            source=row.source,
                            file=stored_name,
                            routed_category=row.category,
                        )
                        for row, stored_name in stored
                    ],
                    batch_size=2000,
                )
                if on_created is not None:
                    on_created(run)
        except BaseException:
            for _, stored_name in stored:
                default_storage.delete(stored_name)
            raise

    if not evaluate:
        return run
    try:
        uploaded_run_evaluate(run_id=run.pk, progress=progress)
    except BaseException:
        _discard(run)
        raise
    run.refresh_from_db()
    return run


def _open_rgb(name: str):
    with default_storage.open(name, "rb") as f:
        return load_rgb(f, name=name)


def uploaded_run_evaluate(*, run_id: int, progress: Progress | None = None) -> None:
    """Compute the metrics of an uploaded run in status ``evaluating`` and mark it done
    (``metrics``: ``test`` and ``per_category`` summaries as for a trained run, by the
    ground truth's category). Anything else is left alone. A failure marks the run failed
    with the reason and is raised again. A run held by another living attempt (a duplicate
    delivery) is left alone too, and an attempt whose claim is taken over stops."""
    claimed = evaluation_claim(run_id, uploaded=True)
    if claimed is None:
        return
    run, attempt = claimed
    try:
        outputs = list(
            ColourisedImage.objects.filter(run=run).select_related("source").order_by("id")
        )
        per_image = []
        references = ReferenceScores(
            run.colour_space,
            train_chroma_means(
                dataset=run.dataset, space=run.colour_space, image_size=None, beat=attempt.beat
            ),
        )
        index = {name: i for i, name in enumerate(run.dataset.categories)}
        last_beat = timezone.now()
        for done, output in enumerate(outputs, start=1):
            category = output.source.category or ""
            output.metrics = image_metrics(
                _open_rgb(output.file),
                _open_rgb(output.source.file),
                run.colour_space,
                references=references,
                category=category,
                index=index.get(category, -1),
            )
            per_image.append((category, output.metrics))
            if (timezone.now() - last_beat).total_seconds() > 5:
                last_beat = timezone.now()
                attempt.beat()
            if progress:
                progress(done, len(outputs))
        metrics = {
            **metrics_summary(per_image),
            "training": {"generators": {}},
            "routing": None,
            "references": references.stored(),
        }
        with transaction.atomic():
            still_evaluating = attempt.hold().status == ModelRun.Status.EVALUATING
            ColourisedImage.objects.bulk_update(outputs, ["metrics"], batch_size=1000)
            if still_evaluating:
                attempt.finish(
                    metrics=metrics, status=ModelRun.Status.DONE, finished_at=timezone.now()
                )
            else:
                attempt.finish()  # cancelled meanwhile
    except ClaimLost:
        return
    except Exception as exc:
        evaluation_failed(attempt=attempt, exc=exc)
        raise
