"""Safe reading of a zip of photographs (optionally one subfolder per category).

:func:`read_zip` checks the archive's whole central directory *before* writing
anything, extracts the image members into a fresh folder ``dest`` (which the caller
owns, typically a temporary folder; a Django importer then reads, validates and
stores each extracted file), and returns a :class:`ZipScan`: the same shape as
:func:`~colourmodels.data.folders.read_folder`'s
:class:`~colourmodels.data.folders.FolderScan`, whose records are
:class:`ZipRecord` items pointing at the extracted files and naming their member.
Extracting (rather than reading members in place) lets every later step work on
ordinary files (:class:`~colourmodels.data.dataset.ColourisationDataset` included),
and bounds what it costs: at most ``max_total_size`` bytes of disk, never the
uncompressed size in memory.

The whole archive is **rejected** with an :class:`ArchiveError` (a ``ValueError``)
naming the member for: an absolute path (``/x``, ``\\x``, ``C:x``), a ``..``
component, a symlink (Unix mode bits in the external attributes), an encrypted
member, an unsupported compression method, two members with the same path, a
compression ratio over ``max_ratio`` for a member larger than ``ratio_min_size`` (a
zip bomb), or a member that yields more bytes than its header declares; and naming
the archive for: not a zip file, more than ``max_members`` members, or a declared
total uncompressed size over :meth:`ZipLimits.expansion_limit` (``max_total_ratio``
times the archive's own size, and never over ``max_total_size``), checked before
anything is extracted.

Left out without failing: ``__MACOSX`` folders and hidden files (any path component
starting with ``.``) silently; nested archives (``.zip``, ``.tar``, ``.gz``, ...) and
members whose extension is not an image extension, listed in
:attr:`ZipScan.skipped` with the reason (their ``path`` is the member name, not
extracted).

Layout: if every kept member lies under one top-level folder (a zipped folder), that
folder is a wrapper and is removed; what remains follows
:func:`~colourmodels.data.folders.read_folder`'s rules (subfolders are categories,
else one uncategorised set). So ``photos/cats/a.jpg`` gives category ``cats``, and
``photos/a.jpg`` as well as ``a.jpg`` give no category. (A zip whose only content is
``cats/...`` therefore reads as uncategorised: a single category is no categorisation.)

Extraction writes each file with exclusive creation under ``dest`` at a path built
from the checked components only, verifies that it resolves inside ``dest``, streams
it in chunks while counting bytes, and stops as soon as a member yields more than
declared or the running total passes ``max_total_size``.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .folders import FolderScan, ImageRecord, Skipped, read_folder
from .images import GRAYSCALE_THRESHOLD, IMAGE_EXTENSIONS, MAX_PIXELS

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "ArchiveError",
    "ZipLimits",
    "ZipRecord",
    "ZipScan",
    "read_zip",
]

#: Extensions of nested archives, which are left out with a reason.
ARCHIVE_EXTENSIONS = frozenset(
    {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar"}
)

_CHUNK = 1 << 20
_IGNORED_DIRS = frozenset({"__MACOSX"})


class ArchiveError(ValueError):
    """An archive that is refused; ``member`` names the entry at fault (``None`` when
    the archive as a whole is), ``archive`` the archive."""

    def __init__(self, archive: object, reason: str, member: str | None = None) -> None:
        self.archive = str(archive)
        self.member = member
        self.reason = reason
        where = f"{self.archive}: member {member!r}" if member is not None else self.archive
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class ZipLimits:
    """What :func:`read_zip` accepts. ``max_ratio`` applies to members whose declared
    size is at least ``ratio_min_size`` (small files are harmless whatever their ratio;
    photographs compress by 1-2x, BMPs and PNGs of flat drawings by up to ~20x)."""

    max_members: int = 50_000
    max_total_size: int = 4 * 2**30
    max_ratio: float = 100.0
    ratio_min_size: int = 1 * 2**20
    #: The whole archive may expand to at most ``max_total_ratio`` times its own size
    #: (or ``total_ratio_floor`` bytes, whichever is more): hundreds of small members,
    #: each under ``ratio_min_size``, must not add up to a bomb.
    max_total_ratio: float = 20.0
    total_ratio_floor: int = 64 * 2**20

    def expansion_limit(self, archive_size: int) -> int:
        """The most bytes an archive of ``archive_size`` bytes may expand to."""
        by_ratio = max(self.total_ratio_floor, int(archive_size * self.max_total_ratio))
        return min(self.max_total_size, by_ratio)


@dataclass(frozen=True, order=True)
class ZipRecord(ImageRecord):
    """An extracted image: ``path`` (under ``dest``), ``category``, and the ``member``
    name in the archive it came from."""

    member: str = ""


@dataclass
class ZipScan(FolderScan):
    """What :func:`read_zip` found: :class:`FolderScan` (``root`` is ``dest``; records are
    :class:`ZipRecord`; a skipped member that was not extracted has its member name as
    ``path``) plus the ``archive`` and its ``wrapper`` folder if one was removed."""

    archive: str = ""
    wrapper: str | None = None
    extracted_bytes: int = 0
    members: dict[Path, str] = field(default_factory=dict)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return mode != 0 and stat.S_ISLNK(mode)


def _components(archive: str, name: str) -> list[str]:
    """Checked path components of a member name; :class:`ArchiveError` if unsafe."""
    if "\x00" in name:
        raise ArchiveError(archive, "NUL byte in member name", name)
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) >= 2 and normal[1] == ":"):
        raise ArchiveError(archive, "absolute path", name)
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(archive, "'..' in path (would escape the target folder)", name)
    if any(":" in p for p in parts):
        raise ArchiveError(archive, "':' in a path component", name)
    return parts


def _ignored(parts: list[str]) -> bool:
    return any(p.startswith(".") or p in _IGNORED_DIRS for p in parts)


def _open_zip(source: str | os.PathLike[str] | BinaryIO, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(label, f"not a valid zip file ({exc})") from None
    except FileNotFoundError:
        raise ArchiveError(label, "file not found") from None
    except OSError as exc:
        raise ArchiveError(label, f"cannot read: {exc}") from None


def _label(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<zip>"))


def _archive_size(source: str | os.PathLike[str] | BinaryIO) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.stat(source).st_size
    position = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(position)
    return size


def _plan(
    zf: zipfile.ZipFile, label: str, limits: ZipLimits, max_total: int
) -> tuple[list[tuple[zipfile.ZipInfo, list[str]]], list[Skipped]]:
    """Check every member; the image members to extract and the skipped ones."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(
            label, f"too many members: {len(infos):,} (limit {limits.max_members:,})"
        )
    keep: list[tuple[zipfile.ZipInfo, list[str]]] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        parts = _components(label, name)
        if _is_symlink(info):
            raise ArchiveError(label, "symbolic link", name)
        if info.flag_bits & 0x1:
            raise ArchiveError(label, "encrypted member", name)
        if info.is_dir() or not parts:
            continue
        key = "/".join(parts).lower()
        if key in seen:
            raise ArchiveError(label, f"duplicate path (also {seen[key]!r})", name)
        seen[key] = name
        if _ignored(parts):
            continue
        if info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ):
            raise ArchiveError(label, f"unsupported compression method {info.compress_type}", name)
        total += info.file_size
        if total > max_total:
            raise ArchiveError(
                label,
                f"total uncompressed size over the limit of {max_total:,} bytes "
                f"(reached at member {name!r}; an archive may expand to "
                f"{limits.max_total_ratio:g} times its size, at most "
                f"{limits.max_total_size:,} bytes)",
            )
        if info.file_size >= limits.ratio_min_size:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise ArchiveError(
                    label,
                    f"compression ratio {ratio:,.0f}:1 over the limit of "
                    f"{limits.max_ratio:g}:1 ({info.file_size:,} bytes declared; zip bomb?)",
                    name,
                )
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix in ARCHIVE_EXTENSIONS:
            skipped.append(Skipped(Path(name), "nested archive: ignored"))
        elif suffix not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(Path(name), f"not an image file: extension {suffix!r}"))
        else:
            keep.append((info, parts))
    return keep, skipped


def _extract(
    zf: zipfile.ZipFile,
    label: str,
    info: zipfile.ZipInfo,
    parts: list[str],
    dest: Path,
    budget: int,
) -> tuple[Path, int]:
    name = info.filename
    target = dest.joinpath(*parts)
    resolved_parent = target.parent.resolve()
    if resolved_parent != dest and dest not in resolved_parent.parents:
        raise ArchiveError(label, "path resolves outside the target folder", name)
    written = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as source, open(target, "xb") as sink:
            while True:
                chunk = source.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > info.file_size:
                    raise ArchiveError(
                        label,
                        f"yields more than the {info.file_size:,} bytes its header declares",
                        name,
                    )
                if written > budget:
                    raise ArchiveError(label, "total uncompressed size over the limit", name)
                sink.write(chunk)
    except ArchiveError:
        target.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        target.unlink(missing_ok=True)
        raise ArchiveError(label, f"corrupt data ({exc})", name) from None
    except OSError as exc:
        raise ArchiveError(label, f"cannot extract: {exc}", name) from None
    if written != info.file_size:
        target.unlink(missing_ok=True)
        raise ArchiveError(
            label, f"yields {written:,} bytes, its header declares {info.file_size:,}", name
        )
    return target, written


def read_zip(
    source: str | os.PathLike[str] | BinaryIO,
    dest: str | os.PathLike[str],
    *,
    limits: ZipLimits | None = None,
    decode: bool = False,
    drop_grayscale: bool = False,
    grayscale_threshold: float = GRAYSCALE_THRESHOLD,
    max_pixels: int = MAX_PIXELS,
    workers: int | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> ZipScan:
    """Check and extract the zip ``source`` (a path, or a seekable binary file such as
    an upload) into ``dest``, then scan it like
    :func:`~colourmodels.data.folders.read_folder` (``decode``, ``drop_grayscale``,
    ``grayscale_threshold``, ``max_pixels``, ``workers``, ``on_file`` as there).

    ``limits``: :class:`ZipLimits` (its defaults when ``None``). ``dest`` must not exist
    or be an empty folder; it is created. On an :class:`ArchiveError` nothing is left
    in it (what was extracted is removed).
    """
    limits = limits if limits is not None else ZipLimits()
    label = _label(source)
    dest_path = Path(dest)
    if dest_path.exists() and (not dest_path.is_dir() or any(dest_path.iterdir())):
        raise ValueError(f"{dest_path}: the target must be a new or empty folder")
    with _open_zip(source, label) as zf:
        max_total = limits.expansion_limit(_archive_size(source))
        keep, skipped = _plan(zf, label, limits, max_total)
        tops = {parts[0] for _, parts in keep}
        wrapper = None
        if len(tops) == 1 and all(len(parts) > 1 for _, parts in keep):
            wrapper = next(iter(tops))
            keep = [(info, parts[1:]) for info, parts in keep]
        dest_path.mkdir(parents=True, exist_ok=True)
        root = dest_path.resolve()
        members: dict[Path, str] = {}
        total = 0
        try:
            for info, parts in keep:
                target, written = _extract(zf, label, info, parts, root, max_total - total)
                total += written
                members[target] = info.filename
        except BaseException:
            for child in list(root.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            raise

    scan = read_folder(
        root,
        decode=decode,
        drop_grayscale=drop_grayscale,
        grayscale_threshold=grayscale_threshold,
        max_pixels=max_pixels,
        workers=workers,
        on_file=on_file,
    )
    records = [ZipRecord(r.path, r.category, members.get(r.path, "")) for r in scan.records]
    for item in scan.skipped:
        member = members.get(item.path)
        skipped.append(Skipped(Path(member) if member else item.path, item.reason))
    skipped.sort(key=lambda s: s.path.as_posix())
    return ZipScan(
        root=root,
        records=records,
        skipped=skipped,
        archive=label,
        wrapper=wrapper,
        extracted_bytes=total,
        members=members,
    )
