"""Read a folder of photographs, optionally one subfolder per category.

Layout rules (:func:`read_folder`):

- If the root holds at least one visible subfolder, every such subfolder is a category
  named after it, and every image below it (at any depth) belongs to it. Files lying
  loose in the root are then skipped ("outside the category folders").
- Otherwise the images in the root (and none below it, since there are no subfolders)
  form one uncategorised set: ``category`` is ``None``.
- Hidden files and folders (name starting with ``.``) and ``__MACOSX`` are ignored
  silently; files whose extension is not in
  :data:`~colourmodels.data.images.IMAGE_EXTENSIONS` are skipped with a reason, and so
  are images that fail the check (header only by default, full decoding with
  ``decode=True``) or, with ``drop_grayscale=True``, carry no colour.
- Records come sorted by their path relative to the root (POSIX form), so the order
  does not depend on the file system.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .images import (
    GRAYSCALE_THRESHOLD,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageError,
    chroma_magnitude,
    is_grayscale,
    load_rgb,
    probe_image,
)

__all__ = ["FolderScan", "ImageRecord", "Skipped", "read_folder"]

_IGNORED_DIRS = frozenset({"__MACOSX"})


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image: its file and its category name (``None`` when uncategorised)."""

    path: Path
    category: str | None = None


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """How many of ``reasons`` there are of each kind (the text before the first ``:``)."""
    return dict(Counter(reason.split(":")[0] for reason in reasons))


@dataclass(frozen=True)
class Skipped:
    """A file left out of a scan, and why."""

    path: Path
    reason: str


@dataclass
class FolderScan:
    """What :func:`read_folder` found."""

    root: Path
    records: list[ImageRecord]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        """Sorted names of the categories that kept at least one image."""
        return sorted({r.category for r in self.records if r.category is not None})

    def counts(self) -> dict[str | None, int]:
        """Images kept per category (``None`` for uncategorised)."""
        return dict(sorted(Counter(r.category for r in self.records).items(), key=_cat_key))

    def skip_reasons(self) -> dict[str, int]:
        """How many files were skipped for each kind of reason (text before ``:``)."""
        return count_reasons(s.reason for s in self.skipped)


def _cat_key(item: tuple[str | None, int]) -> tuple[bool, str]:
    return (item[0] is not None, item[0] or "")


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_files(folder: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not _hidden(d) and d not in _IGNORED_DIRS]
        for filename in filenames:
            if not _hidden(filename):
                yield Path(dirpath) / filename


def read_folder(
    root: str | os.PathLike[str],
    *,
    decode: bool = False,
    drop_grayscale: bool = False,
    grayscale_threshold: float = GRAYSCALE_THRESHOLD,
    max_pixels: int = MAX_PIXELS,
    workers: int | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> FolderScan:
    """Scan ``root`` into image records (see the module docstring for the layout).

    ``decode=False`` checks each image's header only (format, size, pixel limit): fast,
    but a truncated file passes and fails later when read. ``decode=True`` decodes each
    image fully; ``drop_grayscale=True`` implies it and also leaves out images with no
    colour (:func:`~colourmodels.data.images.is_grayscale` at ``grayscale_threshold``).
    Decoding runs on ``workers`` threads (Pillow releases the GIL while decoding);
    ``on_file`` is called once per checked file, e.g. to move a progress bar.

    Raises ``NotADirectoryError`` if ``root`` is not a folder.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise NotADirectoryError(f"{root_path}: not a folder")

    subdirs = sorted(
        p
        for p in root_path.iterdir()
        if p.is_dir() and not _hidden(p.name) and p.name not in _IGNORED_DIRS
    )
    candidates: list[tuple[Path, str | None]] = []
    skipped: list[Skipped] = []
    for entry in sorted(root_path.iterdir()):
        if entry.is_file() and not _hidden(entry.name):
            if subdirs:
                skipped.append(Skipped(entry, "outside the category folders"))
            else:
                candidates.append((entry, None))
    for sub in subdirs:
        candidates.extend((path, sub.name) for path in _walk_files(sub))

    def rel(path: Path) -> str:
        return path.relative_to(root_path).as_posix()

    candidates.sort(key=lambda item: rel(item[0]))
    images: list[tuple[Path, str | None]] = []
    for path, category in candidates:
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append((path, category))
        else:
            skipped.append(Skipped(path, f"not an image file: extension {path.suffix!r}"))

    full = decode or drop_grayscale

    def check(item: tuple[Path, str | None]) -> str | None:
        path = item[0]
        try:
            if not full:
                probe_image(path, max_pixels=max_pixels)
                return None
            image = load_rgb(path, max_pixels=max_pixels)
            if drop_grayscale and is_grayscale(image, grayscale_threshold):
                chroma = chroma_magnitude(image)
                return (
                    f"grayscale: mean chroma {chroma:.2f} < {grayscale_threshold:g} "
                    "(CIE a*b* units)"
                )
            return None
        except ImageError as exc:
            return f"unreadable: {exc.reason}"
        finally:
            if on_file is not None:
                on_file(path)

    if full and len(images) > 1:
        n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
            verdicts = list(pool.map(check, images))
    else:
        verdicts = [check(item) for item in images]

    records: list[ImageRecord] = []
    for (path, category), verdict in zip(images, verdicts):
        if verdict is None:
            records.append(ImageRecord(path, category))
        else:
            skipped.append(Skipped(path, verdict))
    skipped.sort(key=lambda s: rel(s.path))
    return FolderScan(root=root_path, records=records, skipped=skipped)
