"""train_classifier on the CPU at toy scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from colourmodels.checkpoints import load_classifier, read_file
from colourmodels.training import (
    ClassifierConfig,
    ConfigMismatchError,
    TrainingCancelled,
    confusion_matrix,
    macro_f1,
    train_classifier,
)
from colourmodels.training.classifier import CLASSIFIER_HISTORY_KEYS


def _toy(per_class: int, seed: int) -> TensorDataset:
    """Three classes of noisy luminance patterns: horizontal stripes, vertical stripes,
    checkerboard. Chroma is a dummy."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(per_class)
    rows = ((torch.arange(32) // 4) % 2).float()[:, None].expand(32, 32)
    patterns = torch.stack([rows, rows.t(), (rows + rows.t()) % 2]) * 1.2 - 0.6
    luma = patterns[labels][:, None] + 0.3 * torch.randn(len(labels), 1, 32, 32, generator=g)
    return TensorDataset(luma.clamp(-1, 1), torch.zeros(len(labels), 2, 32, 32), labels)


TRAIN = _toy(16, seed=1)
VAL = _toy(6, seed=2)
# Batches of 8 at lr 1e-3 learn steadily (the best macro-F1 is 1.0 for the seeds 1, 2, 3
# and 5); batches of 4 at lr 3e-3 made the training chaotic, so that a CPU's rounding
# decided whether it got above chance (0.56 with AVX-512 kernels, 0.44 with scalar ones).
CONFIG = ClassifierConfig(
    num_classes=3,
    class_names=("rows", "columns", "checks"),
    epochs=4,
    batch_size=8,
    lr=1e-3,
    device="cpu",
    seed=5,
)


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    return train_classifier(CONFIG, TRAIN, VAL, out), out


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_classifier_trains_and_keeps_best_f1_epoch(run):
    result, out = run
    assert len(result.history) == 4
    for i, h in enumerate(result.history, start=1):
        assert tuple(h) == CLASSIFIER_HISTORY_KEYS and h["epoch"] == i
        assert 0.0 <= h["val_macro_f1"] <= 1.0 and 0.0 <= h["train_accuracy"] <= 1.0
    f1s = [h["val_macro_f1"] for h in result.history]
    assert result.best_epoch == 1 + f1s.index(max(f1s))
    assert result.best_macro_f1 == max(f1s)
    assert max(f1s) > 0.5  # well above chance (1/3) on an easy task
    assert result.class_names == ("rows", "columns", "checks")

    # The best file holds the best epoch's model: it reproduces that epoch's confusion matrix.
    model, meta = load_classifier(out / "best_classifier.pt")
    assert meta["epoch"] == result.best_epoch and meta["class_names"] == [
        "rows",
        "columns",
        "checks",
    ]
    with torch.no_grad():
        pred = model(VAL.tensors[0]).argmax(1).numpy()
    cm = confusion_matrix(VAL.tensors[2].numpy(), pred, 3)
    assert np.array_equal(cm, result.confusion)
    assert result.confusion.sum() == len(VAL)
    assert macro_f1(cm) == pytest.approx(result.best_macro_f1)
    _, last_meta = load_classifier(out / "last_classifier.pt")
    assert last_meta["epoch"] == 4
    assert read_file(out / "checkpoint.pt")["epoch"] == 4


def test_classifier_resume_is_exact_and_checks_config(run, tmp_path):
    reference, _ = run

    def kill(event):
        if event.phase == "train" and event.epoch == 2 and event.step == 2:
            raise TrainingCancelled

    with pytest.raises(TrainingCancelled):
        train_classifier(CONFIG, TRAIN, VAL, tmp_path, on_progress=kill)
    assert read_file(tmp_path / "checkpoint.pt")["epoch"] == 1
    with pytest.raises(ConfigMismatchError, match="momentum"):
        train_classifier(dataclasses.replace(CONFIG, momentum=0.5), TRAIN, VAL, tmp_path)
    resumed = train_classifier(CONFIG, TRAIN, VAL, tmp_path)
    assert _strip(resumed.history) == _strip(reference.history)
    assert resumed.best_epoch == reference.best_epoch
    assert np.array_equal(resumed.confusion, reference.confusion)
    a = read_file(run[1] / "last_classifier.pt")["state_dict"]
    b = read_file(tmp_path / "last_classifier.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_classifier_config():
    default = ClassifierConfig()
    assert (default.num_classes, default.epochs, default.batch_size) == (6, 100, 16)
    assert (default.lr, default.momentum) == (7.5e-4, 0.9)
    assert ClassifierConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError):
        ClassifierConfig(num_classes=3, class_names=("a", "b"))


def test_a_tiny_last_batch_does_not_wreck_batchnorm(tmp_path):
    """10 training images in batches of 8 would end each epoch on a batch of 2, whose
    BatchNorm statistics (1x1 maps at 32 px) blow the validation loss up to ~1e34; the
    trainer leaves that batch out."""

    def images(n: int, seed: int) -> TensorDataset:
        g = torch.Generator().manual_seed(seed)
        luma = torch.rand(n, 1, 32, 32, generator=g) * 2 - 1
        return TensorDataset(luma, torch.zeros(n, 2, 32, 32), torch.arange(n) % 6)

    config = ClassifierConfig(num_classes=6, epochs=2, batch_size=8, device="cpu")
    result = train_classifier(config, images(10, 1), images(12, 2), tmp_path, resume=False)
    assert all(row["val_loss"] < 10 for row in result.history)


# Patience 1 stops at the first epoch whose validation accuracy does not beat every earlier
# one; with 18 validation images it can rise at most 18 times, so 20 epochs always stop.
EARLY = dataclasses.replace(CONFIG, epochs=20, patience=1)


def _first_stall(history) -> int:
    best = -1.0
    for row in history:
        if row["val_accuracy"] <= best:
            return row["epoch"]
        best = row["val_accuracy"]
    raise AssertionError("validation accuracy rose every epoch")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf-early")
    return train_classifier(EARLY, TRAIN, VAL, out), out


def test_patience_stops_when_validation_accuracy_stalls_and_keeps_the_best_f1(stopped):
    result, out = stopped
    assert result.stopped_epoch == _first_stall(result.history) < EARLY.epochs
    assert len(result.history) == result.stopped_epoch == result.last_epoch
    f1s = [h["val_macro_f1"] for h in result.history]
    assert result.best_epoch == 1 + f1s.index(max(f1s))
    _, meta = load_classifier(out / "best_classifier.pt")
    assert meta["epoch"] == result.best_epoch
    saved = read_file(out / "checkpoint.pt")
    assert saved["stopped_epoch"] == result.stopped_epoch and saved["epoch"] == result.stopped_epoch
    # A run that stopped stays stopped, even when allowed more epochs.
    again = train_classifier(dataclasses.replace(EARLY, epochs=30), TRAIN, VAL, out)
    assert _strip(again.history) == _strip(result.history)
    assert again.stopped_epoch == result.stopped_epoch


def test_early_stopping_resumes_exactly(stopped, tmp_path):
    reference, out = stopped

    def kill(event):
        if event.phase == "train" and event.epoch == reference.stopped_epoch and event.step == 2:
            raise TrainingCancelled

    with pytest.raises(TrainingCancelled):
        train_classifier(EARLY, TRAIN, VAL, tmp_path, on_progress=kill)
    saved = read_file(tmp_path / "checkpoint.pt")
    assert saved["epoch"] == reference.stopped_epoch - 1 and saved["stopped_epoch"] is None
    assert saved["best_accuracy_epoch"] is not None  # the early-stopping state is saved
    with pytest.raises(ConfigMismatchError, match="patience"):
        train_classifier(dataclasses.replace(EARLY, patience=3), TRAIN, VAL, tmp_path)
    resumed = train_classifier(EARLY, TRAIN, VAL, tmp_path)
    assert _strip(resumed.history) == _strip(reference.history)
    assert (resumed.stopped_epoch, resumed.best_epoch) == (
        reference.stopped_epoch,
        reference.best_epoch,
    )
    a = read_file(out / "best_classifier.pt")["state_dict"]
    b = read_file(tmp_path / "best_classifier.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_patience_is_checked_and_off_by_default():
    assert ClassifierConfig().patience is None
    assert "patience" not in ClassifierConfig().to_dict()  # old checkpoints still resume
    assert ClassifierConfig.from_dict(EARLY.to_dict()) == EARLY
    with pytest.raises(ValueError, match="patience"):
        ClassifierConfig(patience=0)


def test_random_shift_translates_each_image_within_the_reflected_border():
    from colourmodels.training.classifier import random_shift

    x = torch.arange(3 * 2 * 8 * 8, dtype=torch.float32).reshape(3, 2, 8, 8)
    torch.manual_seed(7)
    out = random_shift(x, 0.25)  # up to 2 pixels each way
    torch.manual_seed(7)
    dy = (torch.randint(0, 5, (3,)) - 2).tolist()
    dx = (torch.randint(0, 5, (3,)) - 2).tolist()
    assert out.shape == x.shape and (dy, dx) != ([0] * 3, [0] * 3)
    for k in range(3):
        for i in range(8):
            for j in range(8):
                si, sj = i + dy[k], j + dx[k]
                if 0 <= si < 8 and 0 <= sj < 8:  # inside the image: the pixel moved there
                    assert torch.equal(out[k, :, i, j], x[k, :, si, sj])
    assert random_shift(x, 0.1) is x  # under one pixel: unchanged, no draw


def test_shift_is_checked_off_by_default_and_round_trips():
    assert ClassifierConfig().shift == 0.0
    assert "shift" not in ClassifierConfig().to_dict()  # old checkpoints still resume
    shifted = dataclasses.replace(CONFIG, shift=0.125)
    assert ClassifierConfig.from_dict(shifted.to_dict()) == shifted
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="shift"):
            ClassifierConfig(shift=bad)
