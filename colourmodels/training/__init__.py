"""Training: the Pix2Pix step and trainer, the classifier trainer, and their shared pieces."""

from colourmodels.training.classification_metrics import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_class_f1,
)
from colourmodels.training.classifier import ClassifierConfig, ClassifierResult, train_classifier
from colourmodels.training.common import (
    ConfigMismatchError,
    ProgressEvent,
    TrainingCancelled,
    resolve_device,
)
from colourmodels.training.performance import PerformanceOptions
from colourmodels.training.pix2pix import Pix2PixConfig, Pix2PixResult, train_pix2pix
from colourmodels.training.stacked import StackJob, train_pix2pix_stack
from colourmodels.training.step import Pix2PixStep

__all__ = [
    "ClassifierConfig",
    "ClassifierResult",
    "ConfigMismatchError",
    "PerformanceOptions",
    "Pix2PixConfig",
    "Pix2PixResult",
    "Pix2PixStep",
    "ProgressEvent",
    "StackJob",
    "TrainingCancelled",
    "accuracy",
    "confusion_matrix",
    "macro_f1",
    "per_class_f1",
    "resolve_device",
    "train_classifier",
    "train_pix2pix",
    "train_pix2pix_stack",
]
