"""Data: safe image loading, readers of each source, splits and the torch dataset.

Modules: :mod:`.images` (``load_rgb``, ``is_grayscale``, ``ImageError``), :mod:`.folders`
(``read_folder`` -> ``ImageRecord`` list), :mod:`.archives` (``read_zip``, hostile zips
refused), :mod:`.mirflickr` (``read_mirflickr``), :mod:`.synthetic` (synthetic scenes),
:mod:`.categories` (the six categories and the concept mapping), :mod:`.split`
(``stratified_split``), :mod:`.dataset` (``ColourisationDataset``, ``loader_kwargs``),
:mod:`.device` (``batch_to_luma_chroma``: uint8 batches converted on the training device).

Everything but :mod:`.dataset` is free of torch, and the torch-based names are imported
on first use: a process that only reads images (a Celery worker's parent, a web server)
must not import torch, let alone initialise CUDA.
"""

from .archives import ArchiveError, ZipLimits, ZipRecord, ZipScan, read_zip
from .categories import CATEGORIES, DEFAULT_MAPPING, OTHERS, CategoryMapping
from .folders import FolderScan, ImageRecord, Skipped, read_folder
from .images import (
    ALLOWED_FORMATS,
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
from .mirflickr import (
    MIRFLICKR_CONCEPTS,
    DatasetError,
    MirflickrRecord,
    MirflickrScan,
    grayscale_verdict,
    read_mirflickr,
)
from .split import DEFAULT_FRACTIONS, Split, split_counts, stratified_split
from .synthetic import SyntheticScene, generate, make_scene, write_synthetic

_TORCH_NAMES = ("ColourisationDataset", "image_to_tensor", "loader_kwargs", "resize_square")
_DEVICE_NAMES = ("batch_to_luma_chroma",)


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from . import dataset

        return getattr(dataset, name)
    if name in _DEVICE_NAMES:
        from . import device

        return getattr(device, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALLOWED_FORMATS",
    "CATEGORIES",
    "DEFAULT_FRACTIONS",
    "DEFAULT_MAPPING",
    "GRAYSCALE_THRESHOLD",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "MIRFLICKR_CONCEPTS",
    "OTHERS",
    "ArchiveError",
    "CategoryMapping",
    "ColourisationDataset",
    "DatasetError",
    "FolderScan",
    "ImageError",
    "ImageRecord",
    "MirflickrRecord",
    "MirflickrScan",
    "Skipped",
    "Split",
    "SyntheticScene",
    "ZipLimits",
    "ZipRecord",
    "ZipScan",
    "batch_to_luma_chroma",
    "chroma_magnitude",
    "generate",
    "grayscale_verdict",
    "image_to_tensor",
    "is_grayscale",
    "load_rgb",
    "loader_kwargs",
    "make_scene",
    "probe_image",
    "read_folder",
    "read_mirflickr",
    "read_zip",
    "resize_square",
    "split_counts",
    "stratified_split",
    "to_rgb",
    "write_synthetic",
]
