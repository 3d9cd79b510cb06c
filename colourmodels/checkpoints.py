"""Saving and loading model files, atomically and with readable errors.

Three kinds of file, all written with :func:`atomic_save` (temporary file in the same folder,
fsync, ``os.replace``), so a reader never sees a half-written file:

* generator files (``best_generator.pt``, ``last_generator.pt``):
  ``{"format": GENERATOR_FORMAT, "version": 1, "meta": {...}, "state_dict": {...}}`` with meta
  ``image_size, width, in_channels, out_channels, dropout, colour_space, epoch, eval_mode``;
* classifier files (``best_classifier.pt``, ``last_classifier.pt``): the same with
  ``CLASSIFIER_FORMAT`` and meta ``arch, in_channels, num_classes, class_names, epoch,
  eval_mode``;
* training checkpoints (``checkpoint.pt``): a dict written by the trainers.

Weights are stored as contiguous CPU tensors whatever device and memory format they were
trained in. All files load with ``torch.load(..., weights_only=True)``.

``eval_mode`` records how the network is meant to be run at inference: True (what the trainers
write) means eval mode (BatchNorm running statistics, no dropout). junyanz's pix2pix test script
runs the generator in training mode unless ``--eval``; a file with ``eval_mode=False`` asks for
that, and :func:`load_generator` honours it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colourmodels.networks import UNetGenerator, build_classifier, load_state_dict_checked

__all__ = [
    "GENERATOR_FORMAT",
    "CLASSIFIER_FORMAT",
    "CheckpointError",
    "atomic_save",
    "read_file",
    "cpu_state_dict",
    "generator_meta",
    "save_generator",
    "load_generator",
    "save_classifier",
    "load_classifier",
]

GENERATOR_FORMAT = "colourmodels.generator"
CLASSIFIER_FORMAT = "colourmodels.classifier"
FILE_VERSION = 1


class CheckpointError(ValueError):
    """A file is not the expected kind of checkpoint, or does not fit the network."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_file(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors for a missing/unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # any unpickling failure
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc


def cpu_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """State dict as detached, contiguous CPU copies (portable across devices and layouts)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def generator_meta(
    generator: UNetGenerator, *, colour_space: str, epoch: int | None, eval_mode: bool = True
) -> dict[str, Any]:
    return {
        "arch": "unet",
        "image_size": generator.image_size,
        "width": generator.width,
        "in_channels": generator.in_channels,
        "out_channels": generator.out_channels,
        "dropout": generator.dropout,
        "colour_space": str(getattr(colour_space, "value", colour_space)),
        "epoch": epoch,
        "eval_mode": bool(eval_mode),
    }


def save_generator(
    generator: UNetGenerator,
    path: str | Path,
    *,
    colour_space: str,
    epoch: int | None,
    eval_mode: bool = True,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    meta = generator_meta(generator, colour_space=colour_space, epoch=epoch, eval_mode=eval_mode)
    meta.update(extra_meta or {})
    return atomic_save(
        {
            "format": GENERATOR_FORMAT,
            "version": FILE_VERSION,
            "meta": meta,
            "state_dict": cpu_state_dict(generator),
        },
        path,
    )


def _unpack(path: str | Path, expected_format: str, map_location: Any) -> tuple[dict, dict]:
    obj = read_file(path, map_location=map_location)
    if not isinstance(obj, dict) or obj.get("format") != expected_format:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} is not a {expected_format} file (found format {found!r})")
    if obj.get("version") != FILE_VERSION:
        raise CheckpointError(f"{path}: unsupported file version {obj.get('version')!r}")
    meta, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise CheckpointError(f"{path} lacks its meta or state_dict entry")
    return meta, state


def load_generator(
    path: str | Path, map_location: Any = "cpu"
) -> tuple[UNetGenerator, dict[str, Any]]:
    """Build a :class:`UNetGenerator` from a generator file's metadata and load its weights.

    Returns ``(generator, meta)``; the generator is in eval mode (unless the file says
    ``eval_mode=False``) on ``map_location``. Raises ``FileNotFoundError`` for a missing file and
    :class:`CheckpointError` for a file that is not a generator file or whose weights do not fit
    the network its metadata describes.
    """
    meta, state = _unpack(path, GENERATOR_FORMAT, map_location)
    try:
        generator = UNetGenerator(
            in_channels=int(meta["in_channels"]),
            out_channels=int(meta["out_channels"]),
            image_size=int(meta["image_size"]),
            width=int(meta["width"]),
            dropout=float(meta.get("dropout", 0.5)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad generator metadata {meta!r}: {exc}") from exc
    return _loaded(generator, state, meta, path, map_location), meta


def save_classifier(
    classifier: nn.Module,
    path: str | Path,
    *,
    num_classes: int,
    class_names: list[str] | tuple[str, ...] | None,
    epoch: int | None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    meta = {
        "arch": "resnet34",
        "in_channels": 1,
        "num_classes": int(num_classes),
        "class_names": list(class_names) if class_names is not None else None,
        "epoch": epoch,
        "eval_mode": True,
    }
    meta.update(extra_meta or {})
    return atomic_save(
        {
            "format": CLASSIFIER_FORMAT,
            "version": FILE_VERSION,
            "meta": meta,
            "state_dict": cpu_state_dict(classifier),
        },
        path,
    )


def _loaded(model: nn.Module, state, meta: dict[str, Any], path, map_location) -> nn.Module:
    """The weights loaded (a clear CheckpointError if they do not fit), on the device, in
    the mode the file records (eval unless it says otherwise)."""
    try:
        load_state_dict_checked(model, state, source=str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    model.to(map_location)
    model.train(not meta.get("eval_mode", True))
    return model


def load_classifier(
    path: str | Path, map_location: Any = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the ResNet34 classifier from a classifier file and load its weights (eval mode).

    Same errors as :func:`load_generator`."""
    meta, state = _unpack(path, CLASSIFIER_FORMAT, map_location)
    if meta.get("arch") != "resnet34":
        raise CheckpointError(f"{path}: unsupported classifier architecture {meta.get('arch')!r}")
    try:
        model = build_classifier(int(meta["num_classes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad classifier metadata {meta!r}: {exc}") from exc
    return _loaded(model, state, meta, path, map_location), meta
