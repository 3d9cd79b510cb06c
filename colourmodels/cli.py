"""Command line: ``python -m colourmodels train|colourise|evaluate|describe|ensemble``
(the ensemble's commands are in :mod:`colourmodels.ensemble_cli`).

argparse stays here, at the edge: each command turns its arguments into the library's
dataclass configurations and calls the library. Expected failures (an unreadable image,
a missing or mismatched checkpoint, an empty folder, mismatched image sizes) end with
exit status 2 and one line ``colourmodels <command>: error: ...`` on stderr, no
traceback; argparse's own usage errors also exit with 2.

Files written:

- ``train``: everything :func:`colourmodels.training.pix2pix.train_pix2pix` writes
  (``checkpoint.pt``, ``best_generator.pt``, ``last_generator.pt``), plus
  ``split.json`` (the data, the split and the skipped files), ``history.json`` (one
  record per epoch) and ``summary.json``. Started by ``torchrun`` with several processes
  (``torchrun --nproc_per_node N -m colourmodels train ...``), ``train`` trains one model
  on all of them (:mod:`colourmodels.training.distributed`): ``--batch`` is the global
  batch, rank 0 alone checks and splits the data, writes the files and prints, and
  ``summary.json`` gains a ``distributed`` entry.
- ``colourise``: one PNG per input (by default the run's test split, from the
  ``split.json`` beside the checkpoint), ``<relative path of the input>.png``, with a
  ``colourmodels`` PNG text chunk holding the settings, ``colourise.json`` listing the
  inputs, outputs and settings (checkpoint, space, model size, dropout, seed), and
  ``manifest.csv`` (``file``, ``original_name``, ``category``, ``true_category``,
  ``model``: the site's run upload format, :mod:`worker.services.uploads`); ``--zip`` also
  writes the zip to upload as a run, as ``ensemble colourise`` does (the same code).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .cpus import usable_cpus
from .numbers import finite_or_none

if TYPE_CHECKING:  # the commands import the library when they run (a fast --help)
    from .data import Split
    from .early_stopping import EarlyStoppingConfig

__all__ = ["CLIError", "build_parser", "main"]

PROG = "colourmodels"


class CLIError(Exception):
    """An expected failure: reported as one line on stderr, exit status 2."""


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    print(json.dumps(_json_safe(data), indent=2, sort_keys=False))


def _json_safe(value: Any) -> Any:
    """Non-finite floats become None (strict JSON has no Infinity/NaN)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_json_safe(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _load_checkpoint(path: str, device: str):
    from .checkpoints import load_generator

    checkpoint = Path(path)
    if not checkpoint.exists():
        raise CLIError(f"checkpoint not found: {checkpoint}")
    if checkpoint.is_dir():
        for name in ("best_generator.pt", "last_generator.pt"):
            if (checkpoint / name).is_file():
                checkpoint = checkpoint / name
                break
        else:
            raise CLIError(f"{checkpoint}: folder holds no best_generator.pt or last_generator.pt")
    try:
        generator, meta = load_generator(checkpoint, map_location=device)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # CheckpointError and metadata problems
        raise CLIError(f"cannot use checkpoint {checkpoint}: {exc}") from None
    if int(meta.get("in_channels", 1)) != 1 or int(meta.get("out_channels", 2)) != 2:
        raise CLIError(
            f"{checkpoint}: a colouriser maps 1 luminance channel to 2 chroma channels; "
            f"this generator maps {meta.get('in_channels')} to {meta.get('out_channels')}"
        )
    return checkpoint, generator, meta


def _resolve_device(name: str):
    from .training.common import resolve_device

    try:
        return resolve_device(name)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------


def _records_json(records: Sequence[Any], root: Path) -> list[dict[str, Any]]:
    return [{"path": _rel(r.path, root), "category": r.category} for r in records]


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import distributed

    # Under torchrun (WORLD_SIZE > 1) every process runs this command; see _train.
    try:
        job = distributed.Session(args.device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    with job as ddp:
        return _train(args, ddp)


def _shared_cli_error(message: str, cause: BaseException) -> CLIError:
    """A CLIError that keeps ``cause``'s mark of an error raised on every rank alike."""
    error = CLIError(message)
    if getattr(cause, "shared", False):
        error.shared = True  # type: ignore[attr-defined]
    return error


def _train(args: argparse.Namespace, ddp: Any) -> int:
    """The train command in this process. Under torchrun rank 0 alone checks the folder,
    splits the data, writes and reads the run folder's files and reports; the other ranks
    get the split from it and train their share of each batch."""
    from .checkpoints import CheckpointError
    from .data import ColourisationDataset
    from .training.common import ConfigMismatchError
    from .training.pix2pix import train_pix2pix

    main = ddp is None or ddp.is_main
    out = Path(args.out)
    device = ddp.device if ddp is not None else _resolve_device(args.device)
    prepared = _prepare(args, ddp) if ddp is None else ddp.share(lambda: _prepare(args, ddp))
    split, categories = prepared.split, prepared.categories
    config = _pix2pix_config(args, prepared.early, device, ddp)
    train_set = ColourisationDataset(split.train, args.space, args.size, categories, train=True)
    val_set = ColourisationDataset(split.val, args.space, args.size, categories, train=False)
    if main:
        _note_start(args, prepared, device, ddp)

    bars = _ProgressBars(quiet=args.quiet)
    try:
        result = train_pix2pix(
            config, train_set, val_set, out, on_progress=bars, resume=not args.restart
        )
    except CheckpointError as exc:
        raise _shared_cli_error(f"cannot resume from {out / 'checkpoint.pt'}: {exc}", exc) from None
    except ConfigMismatchError as exc:
        raise _shared_cli_error(f"{exc} (--restart starts afresh)", exc) from None
    finally:
        bars.close()

    if main:
        _write_results(out, result, config, prepared)
    return 0


@dataclass(frozen=True)
class _Prepared:
    """What rank 0 finds in the photo folder (sent to the other ranks under torchrun)."""

    early: EarlyStoppingConfig | None
    split: Split
    categories: list[str] | None
    records: int
    skipped: int
    resuming: bool


def _prepare(args: argparse.Namespace, ddp: Any) -> _Prepared:
    """Check the options and the folder, split the data, write ``split.json`` (refusing to
    resume a run on another split)."""
    early = _early_stopping(args)
    if ddp is not None and args.batch % ddp.world_size:
        raise CLIError(
            f"--batch {args.batch} is the global batch (all processes together) and must "
            f"divide evenly among the {ddp.world_size} processes"
        )
    resuming = (Path(args.out) / "checkpoint.pt").exists() and not args.restart
    scan, split = _split_folder(args, resuming=resuming)
    return _Prepared(early, split, scan.categories, len(scan.records), len(scan.skipped), resuming)


def _split_folder(args: argparse.Namespace, *, resuming: bool, check: Any = None) -> tuple:
    """Scan ``args.folder`` (``args.keep_grayscale``, ``args.quiet``), split it by
    ``args.split_seed`` (if any, else ``args.seed``) and ``args.fractions`` as the site
    splits a data set imported from the same folder, and write ``split.json`` into
    ``args.out``; when ``resuming``, refuse a split that differs from the one already
    there. ``check(scan)`` may refuse the scan (raise CLIError) before anything is written.
    Returns (scan, split)."""
    from tqdm import tqdm

    from .data import read_folder, stratified_split

    folder, out = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise CLIError(f"not a folder: {folder}")
    with tqdm(desc="checking images", unit="img", disable=args.quiet, leave=False) as bar:
        scan = read_folder(
            folder, drop_grayscale=not args.keep_grayscale, on_file=lambda _p: bar.update()
        )
    if not scan.records:
        why = f" (skipped {len(scan.skipped)}: {scan.skip_reasons()})" if scan.skipped else ""
        raise CLIError(f"{folder}: no usable colour images{why}")
    if check is not None:
        check(scan)
    # Keyed by the path inside the folder, as the site keys an imported image (its
    # original name), so that the site's split of the same folder and seed is this one.
    seed = args.seed if getattr(args, "split_seed", None) is None else args.split_seed
    split = stratified_split(
        scan.records,
        seed=seed,
        fractions=args.fractions,
        key=lambda r: _rel(r.path, folder),
    )
    if not split.train or not split.val:
        raise CLIError(
            f"{folder}: {len(scan.records)} usable image(s) give "
            f"{len(split.train)} for training and {len(split.val)} for validation; "
            "both need at least one"
        )
    manifest = {
        "folder": str(folder.resolve()),
        "seed": seed,
        "fractions": list(args.fractions),
        "grayscale_removed": not args.keep_grayscale,
        "categories": scan.categories,
        "counts": {
            part: {str(k): v for k, v in _count(items).items()}
            for part, items in split.parts().items()
        },
        "train": _records_json(split.train, folder),
        "val": _records_json(split.val, folder),
        "test": _records_json(split.test, folder),
        "skipped": [{"path": _rel(s.path, folder), "reason": s.reason} for s in scan.skipped],
    }
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "split.json"
    if resuming and previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8"))
        if any(old.get(part) != manifest[part] for part in ("train", "val", "test")):
            raise CLIError(
                f"{out} holds a run on a different split of the data (the folder or the "
                "seed changed); use another --out, or --restart to start afresh"
            )
    _write_json(previous, manifest)
    return scan, split


def _early_stopping(args: argparse.Namespace) -> EarlyStoppingConfig | None:
    """The early-stopping configuration the options ask for (None: train every epoch)."""
    from .early_stopping import PAPER_SETTINGS, EarlyStoppingConfig

    try:
        if args.no_early_stopping:
            return None
        if args.early_stopping is None:
            base = PAPER_SETTINGS["baseline"]
            return EarlyStoppingConfig(base.k, base.mu, args.monitor)
        k, mu = args.early_stopping
        if float(k) != int(float(k)):
            raise ValueError(f"K must be a whole number, got {k}")
        return EarlyStoppingConfig(int(float(k)), float(mu), args.monitor)
    except ValueError as exc:
        raise CLIError(f"--early-stopping: {exc}") from None


def _pix2pix_config(args: argparse.Namespace, early: Any, device: Any, ddp: Any) -> Any:
    """The training configuration of the options; loader workers for this process's share
    of the machine unless ``--workers`` says how many."""
    from .data import loader_kwargs
    from .training.performance import PerformanceOptions
    from .training.pix2pix import Pix2PixConfig

    num_workers = args.workers
    if num_workers is None:
        if ddp is None:
            num_workers = int(loader_kwargs(device)["num_workers"])
        else:  # the machine's cores shared among its processes
            cpus = max(1, usable_cpus() // max(1, ddp.local_world_size))
            if device.type == "cuda":
                num_workers = min(8, max(1, cpus - 1))
            else:
                num_workers = int(loader_kwargs(device, cpus=cpus)["num_workers"])
    perf = PerformanceOptions.fast() if args.fast else PerformanceOptions()
    try:
        return Pix2PixConfig(
            image_size=args.size,
            width=args.width,
            epochs=args.epochs,
            batch_size=args.batch,
            early_stopping=early,
            seed=args.seed,
            device=str(device),
            num_workers=num_workers,
            perf=perf,
            colour_space=args.space,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _note_start(args: argparse.Namespace, prepared: _Prepared, device: Any, ddp: Any) -> None:
    counts = ", ".join(f"{k}: {len(v)}" for k, v in prepared.split.parts().items())
    categories = prepared.categories
    _note(
        f"{prepared.records} images ({counts}); skipped {prepared.skipped}"
        + (f"; categories {categories}" if categories else "")
        + f"; device {device}"
        + ("; resuming" if prepared.resuming else "")
    )
    if ddp is not None:
        _note(
            f"distributed: {ddp.world_size} processes ({ddp.backend}), global batch "
            f"{args.batch} = {args.batch // ddp.world_size} per process"
            + (
                "; --fast without CUDA graphs and torch.compile under DDP"
                if args.fast and device.type == "cuda"
                else ""
            )
        )


class _ProgressBars:
    """The trainer's progress as a tqdm bar per phase and a line per epoch, on stderr;
    ``name`` (if any) starts each bar's description."""

    #: Whether a bar shows the batch's losses after it.
    show_losses = True

    def __init__(self, *, quiet: bool, name: str = "") -> None:
        self.quiet = quiet
        self.prefix = f"{name} " if name else ""
        self.bar: Any = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def epoch_line(self, event: Any) -> str:
        losses = event.losses
        return (
            f"epoch {event.epoch}/{event.steps}: "
            f"train total {losses.get('train_total', float('nan')):.4f}, "
            f"val total {losses.get('val_total', float('nan')):.4f}, "
            f"val gan {losses.get('val_gan', float('nan')):.4f}"
        )

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if event.phase == "epoch":
            self.close()
            line = self.epoch_line(event)
            if event.stop:
                line += " - early stopping"
            tqdm.write(line, file=sys.stderr)
            return
        desc = f"{self.prefix}epoch {event.epoch} {event.phase}"
        if self.bar is None or self.bar.desc != desc:
            self.close()
            self.bar = tqdm(
                total=event.steps, desc=desc, unit="batch", leave=False, file=sys.stderr
            )
        self.bar.update(event.step - self.bar.n)
        if self.show_losses and event.losses:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in event.losses.items()}, refresh=False)


def _write_results(out: Path, result: Any, config: Any, prepared: _Prepared) -> None:
    """``history.json``, ``summary.json`` and the closing line on stdout."""
    _write_json(out / "history.json", result.history)
    early = prepared.early
    summary = {
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "monitor": result.monitor,
        "stopped_epoch": result.stopped_epoch,
        "last_epoch": result.last_epoch,
        "early_stopping": early.to_dict() if early is not None else None,
        "best_generator": str(result.best_generator_path),
        "last_generator": str(result.last_generator_path),
        "images": {k: len(v) for k, v in prepared.split.parts().items()},
        "config": config.to_dict(),
    }
    if result.distributed is not None:
        summary["distributed"] = result.distributed
    _write_json(out / "summary.json", summary)
    stopped = (
        f"early stopping at epoch {result.stopped_epoch}"
        if result.stopped_epoch is not None
        else f"no early stop (ran to epoch {result.last_epoch})"
    )
    print(
        f"best epoch {result.best_epoch} (val {result.monitor} {result.best_val:.4f}); "
        f"{stopped}; generators in {out}"
        if result.best_val is not None
        else f"no epoch completed; {stopped}"
    )


def _count(records: Sequence[Any]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for r in records:
        counts[r.category] = counts.get(r.category, 0) + 1
    return counts


# --------------------------------------------------------------------------------------
# colourise
# --------------------------------------------------------------------------------------


def _input_images(source: Path) -> tuple[Path, list[Path]]:
    """(root, image files) for a file or a folder; unreadable images are errors."""
    from .data import IMAGE_EXTENSIONS, ImageError, probe_image

    if source.is_file():
        return source.parent, [source]
    if not source.is_dir():
        raise CLIError(f"input not found: {source}")
    files = _image_files(source)
    if not files:
        raise CLIError(
            f"{source}: no image files (extensions {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    for path in files:
        try:
            probe_image(path)
        except ImageError as exc:
            raise CLIError(str(exc)) from None
    return source, files


def _image_files(root: Path) -> list[Path]:
    """Every image-extension file below ``root`` (hidden ones skipped), sorted."""
    from .data import IMAGE_EXTENSIONS

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: _rel(p, root))


# The site's run upload (worker.services.uploads): a zip of colourised test images with a
# manifest naming each one's ground truth by its path in the imported folder.

#: The columns of the manifest ``colourise`` and ``ensemble colourise`` write.
MANIFEST_COLUMNS = ("file", "original_name", "category", "true_category", "model")


def _split_records(run: Path) -> tuple[Path, dict[str, list[tuple[Path, str | None]]]]:
    """The folder ``split.json`` in ``run`` names and each part's (path, category)."""
    path = run / "split.json"
    if not path.is_file():
        raise CLIError(f"{run}: no split.json")
    split = json.loads(path.read_text(encoding="utf-8"))
    folder = Path(split["folder"])
    parts = {
        part: [(folder / item["path"], item["category"]) for item in split[part]]
        for part in ("train", "val", "test")
    }
    return folder, parts


def _test_split(run: Path) -> tuple[Path, list[tuple[Path, str | None]]]:
    """(the photographs' folder, the test split's (path, category)) of a run folder."""
    root, parts = _split_records(run)
    if not parts["test"]:
        raise CLIError(f"{run}: the test split is empty")
    return root, parts["test"]


def manifest_text(rows: Sequence[Sequence[str]]) -> str:
    """The colourised images' manifest.csv (the site's run-upload format): the header
    :data:`MANIFEST_COLUMNS` and one row each. File names and categories are whatever the
    input folders hold: text that starts like a spreadsheet formula gets a leading
    apostrophe (:func:`colourmodels.csv_cells.text_cell`), which the site's upload checker
    takes off again."""
    from .csv_cells import csv_text

    return csv_text(MANIFEST_COLUMNS, rows)


def _write_upload(out: Path, rows: Sequence[Sequence[str]], zip_path: str | None) -> None:
    """``manifest.csv`` in ``out`` (``rows``: :data:`MANIFEST_COLUMNS`' cells, ``file``
    relative to ``out``) and, with ``zip_path``, the zip of the manifest and those files,
    to upload as a run (**Model runs -> Upload a run**, or ``manage.py upload_run``)."""
    import zipfile

    manifest = manifest_text(rows)
    (out / "manifest.csv").write_text(manifest, encoding="utf-8")
    if zip_path:
        target = Path(zip_path)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.csv", manifest)
            for file, *_ in rows:
                zf.write(out / file, file)
        print(f"zip to upload as a run: {target}")


def _run_folder(checkpoint: Path) -> Path:
    """The run folder of a checkpoint argument: the folder itself, or the file's folder."""
    return checkpoint if checkpoint.is_dir() else checkpoint.parent


def _cmd_colourise(args: argparse.Namespace) -> int:
    from PIL import PngImagePlugin

    from .data import ImageError, load_rgb
    from .inference import colourise_batch

    device = _resolve_device(args.device)
    checkpoint, generator, meta = _load_checkpoint(args.checkpoint, str(device))
    space = str(meta.get("colour_space", "lab"))
    model_size = int(meta["image_size"])
    truth: dict[Path, str | None] = {}
    if args.input is None:
        run = _run_folder(Path(args.checkpoint))
        if not (run / "split.json").is_file():
            raise CLIError(
                f"{run}: no split.json beside the checkpoint, so no test split to colourise; "
                "give an image or a folder to colourise"
            )
        root, items = _test_split(run)
        files = [path for path, _ in items]
        truth = dict(items)
        for path in files:
            if not path.is_file():
                raise CLIError(f"{path}: a test image of {run}/split.json is not there")
    else:
        root, files = _input_images(Path(args.input))
    out = Path(args.out)

    targets: dict[Path, Path] = {}
    for path in files:
        target = out / Path(_rel(path, root)).with_suffix(".png")
        if target in targets:
            raise CLIError(f"{path} and {targets[target]} would both be written to {target}")
        if target.resolve() == path.resolve():
            raise CLIError(f"{target} would overwrite its own input; choose another --out")
        targets[target] = path
    out.mkdir(parents=True, exist_ok=True)

    settings_base = {
        "checkpoint": str(checkpoint),
        "epoch": meta.get("epoch"),
        "space": space,
        "model_size": model_size,
    }
    model = f"colourmodels baseline {_run_folder(checkpoint).name} ({space})"
    rows: list[tuple[str, str, str, str, str]] = []
    entries: list[dict[str, Any]] = []
    pairs = list(targets.items())
    for start in range(0, len(pairs), args.batch):
        chunk = pairs[start : start + args.batch]
        images = []
        for _target, path in chunk:
            try:
                images.append(load_rgb(path))
            except ImageError as exc:
                raise CLIError(str(exc)) from None
        seed = None if args.seed is None else args.seed + start
        results = colourise_batch(
            generator,
            images,
            space,
            model_size,
            batch_size=args.batch,
            dropout=args.dropout,
            seed=seed,
            device=device,
        )
        for (target, path), result in zip(chunk, results):
            settings = {**settings_base, **result.settings.as_dict(), "input": str(path)}
            info = PngImagePlugin.PngInfo()
            info.add_text("colourmodels", json.dumps(settings))
            target.parent.mkdir(parents=True, exist_ok=True)
            result.image.save(target, format="PNG", pnginfo=info)
            entries.append(
                {
                    "input": str(path),
                    "output": _rel(target, out),
                    "width": result.image.width,
                    "height": result.image.height,
                }
            )
            rows.append((_rel(target, out), _rel(path, root), "", truth.get(path) or "", model))
        if not args.quiet:
            _note(f"colourised {min(start + args.batch, len(pairs))}/{len(pairs)}")
    _write_json(
        out / "colourise.json",
        {
            **settings_base,
            "dropout": bool(args.dropout),
            "seed": args.seed,
            "images": entries,
        },
    )
    _write_upload(out, rows, args.zip)
    print(f"{len(entries)} image(s) written to {out} ({space}, model size {model_size})")
    return 0


# --------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------


def _keyed(root: Path) -> dict[str, Path]:
    files = _image_files(root)
    keyed: dict[str, Path] = {}
    for path in files:
        key = Path(_rel(path, root)).with_suffix("").as_posix()
        if key in keyed:
            raise CLIError(f"{path} and {keyed[key]} have the same name (stem); cannot match them")
        keyed[key] = path
    return keyed


def _by_stem(keyed: dict[str, Path]) -> dict[str, str] | None:
    """stem -> key, or None when two files share a stem."""
    stems: dict[str, str] = {}
    for key in keyed:
        stem = key.rsplit("/", 1)[-1]
        if stem in stems:
            return None
        stems[stem] = key
    return stems


def _match(generated: dict[str, Path], truth: dict[str, Path]) -> list[tuple[str, Path, Path]]:
    pairs = [(k, generated[k], truth[k]) for k in generated if k in truth]
    if pairs:
        return pairs
    g_stems, t_stems = _by_stem(generated), _by_stem(truth)
    if g_stems is None or t_stems is None:
        return []
    return [
        (stem, generated[g_key], truth[t_stems[stem]])
        for stem, g_key in g_stems.items()
        if stem in t_stems
    ]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from . import metrics
    from .colour import ColourSpace, rgb_to_luma_chroma
    from .data import ImageError, image_to_tensor, load_rgb

    generated_dir, truth_dir = Path(args.generated), Path(args.truth)
    for folder in (generated_dir, truth_dir):
        if not folder.is_dir():
            raise CLIError(f"not a folder: {folder}")
    space_name = args.space
    if space_name is None:
        manifest = generated_dir / "colourise.json"
        space_name = "lab"
        if manifest.is_file():
            try:
                space_name = str(json.loads(manifest.read_text(encoding="utf-8"))["space"])
            except (ValueError, KeyError, TypeError):
                pass
    space = ColourSpace(space_name)
    generated, truth = _keyed(generated_dir), _keyed(truth_dir)
    if not generated:
        raise CLIError(f"{generated_dir}: no image files")
    if not truth:
        raise CLIError(f"{truth_dir}: no image files")
    pairs = _match(generated, truth)
    if not pairs:
        raise CLIError(
            f"no generated image in {generated_dir} has a ground-truth image of the same "
            f"name in {truth_dir}"
        )

    rows: list[dict[str, Any]] = []
    for name, gen_path, truth_path in pairs:
        try:
            pred_image, true_image = load_rgb(gen_path), load_rgb(truth_path)
        except ImageError as exc:
            raise CLIError(str(exc)) from None
        if pred_image.size != true_image.size:
            raise CLIError(
                f"{gen_path}: size {pred_image.width}x{pred_image.height} differs from its "
                f"ground truth {truth_path} ({true_image.width}x{true_image.height})"
            )
        if min(pred_image.size) < 7:
            raise CLIError(f"{gen_path}: SSIM needs images of at least 7x7 pixels")
        pred = image_to_tensor(pred_image).unsqueeze(0).double()
        true = image_to_tensor(true_image).unsqueeze(0).double()
        _, pred_chroma = rgb_to_luma_chroma(pred, space)
        _, true_chroma = rgb_to_luma_chroma(true, space)
        values = metrics.image_metrics(pred, true, pred_chroma, true_chroma, space)
        rows.append(
            {
                "name": name,
                "generated": str(gen_path),
                "truth": str(truth_path),
                **{k: float(v.item()) for k, v in values.items()},
            }
        )
    means = {}
    for key in metrics.IMAGE_METRICS:
        column = torch.tensor([row[key] for row in rows], dtype=torch.float64)
        finite = column[torch.isfinite(column)]
        means[key] = float(finite.mean()) if finite.numel() else float("nan")
    matched_generated = {gen for _, gen, _ in pairs}
    matched_truth = {tru for _, _, tru in pairs}
    report = {
        "space": space.value,
        "count": len(rows),
        "units": {
            "l1_distance": "lambda * mean |chroma error|, normalised chroma, lambda = 100",
            "chroma_mae": "ab units" if space is ColourSpace.LAB else "UV units",
            "psnr": "dB on RGB in [0, 1]; identical images (inf) left out of the mean",
            "colourfulness": "Hasler & Suesstrunk 2003, RGB scaled to 0-255",
        },
        "mean": means,
        "generated_without_truth": sorted(
            _rel(p, generated_dir) for p in generated.values() if p not in matched_generated
        ),
        "truth_without_generated": sum(1 for p in truth.values() if p not in matched_truth),
        "images": rows,
    }
    if args.json:
        _print_json(report)
    else:
        print(f"{len(rows)} image pair(s), {space.value}")
        for key in metrics.IMAGE_METRICS:
            print(f"  {key:<26} {means[key]:10.4f}")
    return 0


# --------------------------------------------------------------------------------------
# describe
# --------------------------------------------------------------------------------------


def _cmd_describe(args: argparse.Namespace) -> int:
    from .networks import PatchDiscriminator, UNetGenerator, build_classifier, count_parameters

    try:
        generator = UNetGenerator(1, 2, args.size, args.width)
        discriminator = PatchDiscriminator(3, args.width)
        classifier = build_classifier(args.classes)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    report = {
        "image_size": args.size,
        "width": args.width,
        "generator": count_parameters(generator),
        "discriminator": count_parameters(discriminator),
        "classifier": count_parameters(classifier),
        "levels": generator.num_downs,
        "classes": args.classes,
    }
    if args.json:
        _print_json(report)
    else:
        print(f"U-Net generator ({args.size} px, width {args.width}, {generator.num_downs} levels)")
        print(f"  parameters {report['generator']:,}")
        print(f"PatchGAN discriminator (width {args.width}): {report['discriminator']:,}")
        print(f"ResNet34 classifier ({args.classes} classes): {report['classifier']:,}")
    return 0


# --------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST numbers, got {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or not math.isclose(sum(parts), 1.0):
        raise argparse.ArgumentTypeError(f"need three fractions >= 0 adding up to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def _is_main_process() -> bool:
    from .training.distributed import is_main_process

    return is_main_process()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Pix2Pix image colourisation: train, colourise, evaluate, describe; "
        "ensemble train|colourise|evaluate.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a Pix2Pix colouriser on a folder of photos",
        description="Train on FOLDER (photos, optionally one subfolder per category), split "
        "0.75/0.15/0.10 stratified by category; resumes when OUT holds a checkpoint.",
    )
    train.add_argument("folder")
    train.add_argument("--space", choices=("lab", "yuv"), default="lab")
    train.add_argument("--size", type=_positive_int, default=256, help="image side (power of 2)")
    train.add_argument("--width", type=_positive_int, default=64, help="base width (ngf = ndf)")
    train.add_argument("--epochs", type=_positive_int, default=200)
    train.add_argument(
        "--batch",
        type=_positive_int,
        default=16,
        help="batch size of each optimiser step; under torchrun the global batch, shared "
        "evenly among the processes (must divide by their number)",
    )
    stopping = train.add_mutually_exclusive_group()
    stopping.add_argument(
        "--early-stopping",
        nargs=2,
        metavar=("K", "MU"),
        type=float,
        default=None,
        help="Prechelt PQ strip length and threshold (default: 10 0.75, the paper's baseline)",
    )
    stopping.add_argument("--no-early-stopping", action="store_true")
    train.add_argument("--monitor", choices=("total", "gan"), default="total")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    train.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the split alone (default: --seed): the seed of the site's data set",
    )
    train.add_argument(
        "--fractions", type=_fractions, default=(0.75, 0.15, 0.10), help="TRAIN,VAL,TEST"
    )
    train.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    train.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:1, ... (under torchrun: each process on cuda:LOCAL_RANK, "
        "or all on the CPU with cpu)",
    )
    train.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    train.add_argument("--fast", action="store_true", help="bf16 autocast, CUDA graphs, ...")
    train.add_argument(
        "--keep-grayscale", action="store_true", help="do not drop images without colour"
    )
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    col = commands.add_parser(
        "colourise",
        aliases=["colorize"],
        help="colour images with a trained generator, at their own resolution",
        description="Colour INPUT, or by default the test split of the run (split.json "
        "beside the checkpoint), at each image's own resolution; writes the PNGs, "
        "manifest.csv (the site's run upload format) and colourise.json; --zip also writes "
        "the zip to upload as a run (Model runs -> Upload a run, or manage.py upload_run) "
        "to the data set imported from the same folder with the same seed.",
    )
    col.add_argument("checkpoint", help="generator file (or a run folder)")
    col.add_argument(
        "input",
        nargs="?",
        default=None,
        help="an image or a folder of images (default: the run's test split)",
    )
    col.add_argument("--out", required=True)
    col.add_argument("--zip", default=None, help="also write this zip, ready to upload")
    col.add_argument("--device", default="auto")
    col.add_argument("--batch", type=_positive_int, default=8)
    col.add_argument("--dropout", action="store_true", help="keep dropout active (pix2pix noise z)")
    col.add_argument("--seed", type=int, default=None, help="seed for the dropout noise")
    col.add_argument("--quiet", action="store_true")
    col.set_defaults(handler=_cmd_colourise)

    ev = commands.add_parser(
        "evaluate",
        help="metrics of generated images against the ground truth (matching names)",
    )
    ev.add_argument("generated")
    ev.add_argument("truth")
    ev.add_argument(
        "--space",
        choices=("lab", "yuv"),
        default=None,
        help="space of the chroma metrics (default: from colourise.json, else lab)",
    )
    ev.add_argument("--json", action="store_true", help="print every number as JSON")
    ev.set_defaults(handler=_cmd_evaluate)

    desc = commands.add_parser("describe", help="parameter counts of the networks")
    desc.add_argument("--size", type=_positive_int, default=256)
    desc.add_argument("--width", type=_positive_int, default=64)
    desc.add_argument("--classes", type=_positive_int, default=6)
    desc.add_argument("--json", action="store_true")
    desc.set_defaults(handler=_cmd_describe)

    from .ensemble_cli import add_parser as add_ensemble

    add_ensemble(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    from .data import ImageError

    try:
        return handler(args)
    except (CLIError, ImageError, NotADirectoryError) as exc:
        # Under torchrun an error that every rank raised alike is printed by rank 0 alone.
        if not getattr(exc, "shared", False) or _is_main_process():
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
