"""train_pix2pix on the CPU at toy scale: learning, files, exact resume, early stopping."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from colourmodels.checkpoints import load_generator, read_file
from colourmodels.early_stopping import EarlyStoppingConfig
from colourmodels.training import (
    ConfigMismatchError,
    PerformanceOptions,
    Pix2PixConfig,
    ProgressEvent,
    TrainingCancelled,
    train_pix2pix,
)
from colourmodels.training.pix2pix import HISTORY_KEYS

SIZE = 32


def _toy(n: int, seed: int, sign: float = 1.0) -> TensorDataset:
    """Smooth random luminance; chroma a fixed function of it (a learnable task)."""
    g = torch.Generator().manual_seed(seed)
    luma = F.interpolate(
        torch.rand(n, 1, 4, 4, generator=g) * 2 - 1, size=SIZE, mode="bilinear"
    ).clamp(-1, 1)
    chroma = sign * torch.cat([0.8 * luma, -0.6 * luma], dim=1)
    return TensorDataset(luma, chroma, torch.randint(0, 6, (n,), generator=g))


TRAIN = _toy(32, seed=1)
VAL = _toy(16, seed=2)

CONFIG = Pix2PixConfig(
    image_size=SIZE,
    width=8,
    epochs=4,
    batch_size=8,
    lr=2e-3,
    early_stopping=EarlyStoppingConfig(k=2, mu=1e9),  # tracked, never fires
    device="cpu",
    seed=3,
)


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_file(path)["state_dict"]


def _strip_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    events: list[ProgressEvent] = []
    result = train_pix2pix(CONFIG, TRAIN, VAL, out, on_progress=events.append)
    return result, events, out


def test_history_keys_and_files(full_run):
    result, _, out = full_run
    assert len(result.history) == 4 and result.last_epoch == 4 and result.stopped_epoch is None
    for i, h in enumerate(result.history, start=1):
        assert tuple(h) == HISTORY_KEYS
        assert h["epoch"] == i
        assert h["train_total"] == pytest.approx(h["train_gan"] + h["train_l1"])
        assert h["val_total"] == pytest.approx(h["val_gan"] + h["val_l1"])
        assert h["seconds"] > 0
    assert result.history[0]["pk"] is None and result.history[1]["pk"] is not None
    assert result.history[0]["gl"] == 0.0
    for name in ("checkpoint.pt", "last_generator.pt", "best_generator.pt"):
        assert (out / name).is_file()
    assert not list(out.glob("*.tmp"))
    vals = [h["val_total"] for h in result.history]
    assert result.best_epoch == 1 + vals.index(min(vals))
    assert result.best_val == min(vals)
    _, meta = load_generator(out / "last_generator.pt")
    assert meta["epoch"] == 4 and meta["image_size"] == SIZE and meta["width"] == 8
    assert meta["colour_space"] == "lab" and meta["eval_mode"] is True
    ckpt = read_file(out / "checkpoint.pt")
    assert ckpt["epoch"] == 4 and ckpt["config"] == CONFIG.to_dict()
    assert ckpt["early_stopping"]["epochs"] == [1, 2, 3, 4]


def test_losses_decrease_on_learnable_task(full_run):
    h = full_run[0].history
    assert h[-1]["train_l1"] < 0.7 * h[0]["train_l1"]
    assert h[-1]["val_l1"] < h[0]["val_l1"]
    assert h[-1]["train_total"] < h[0]["train_total"]


def test_progress_events(full_run):
    _, events, _ = full_run
    train = [e for e in events if e.phase == "train"]
    val = [e for e in events if e.phase == "val"]
    epochs = [e for e in events if e.phase == "epoch"]
    assert len(train) == 4 * 4 and len(val) == 4 * 2 and len(epochs) == 4
    assert [(e.step, e.steps) for e in train[:4]] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert set(train[0].losses) == {"train_d", "train_gan", "train_l1", "train_total"}
    assert set(val[0].losses) == {"val_gan", "val_l1", "val_total"}
    assert all(isinstance(v, float) for v in train[-1].losses.values())
    assert epochs[-1].epoch == 4 and epochs[-1].steps == 4 and not epochs[-1].stop
    assert epochs[-1].losses["val_total"] == pytest.approx(full_run[0].history[-1]["val_total"])
    # The last train event of an epoch carries the epoch's training means.
    assert train[3].losses["train_l1"] == pytest.approx(full_run[0].history[0]["train_l1"])


def test_resume_after_interruption_is_exact(full_run, tmp_path):
    reference, _, ref_out = full_run

    def kill_in_epoch_2(event: ProgressEvent) -> None:
        if event.phase == "train" and event.epoch == 2 and event.step == 2:
            raise TrainingCancelled

    with pytest.raises(TrainingCancelled):
        train_pix2pix(CONFIG, TRAIN, VAL, tmp_path, on_progress=kill_in_epoch_2)
    ckpt = read_file(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1  # last complete epoch intact

    def kill_after_epoch_3(event: ProgressEvent) -> None:
        if event.phase == "epoch" and event.epoch == 3:
            raise TrainingCancelled

    with pytest.raises(TrainingCancelled):
        train_pix2pix(CONFIG, TRAIN, VAL, tmp_path, on_progress=kill_after_epoch_3)
    assert read_file(tmp_path / "checkpoint.pt")["epoch"] == 3

    resumed = train_pix2pix(CONFIG, TRAIN, VAL, tmp_path)
    assert _strip_seconds(resumed.history) == _strip_seconds(reference.history)
    assert resumed.best_epoch == reference.best_epoch
    for name in ("last_generator.pt", "best_generator.pt"):
        a, b = _weights(ref_out / name), _weights(tmp_path / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ca, cb = read_file(ref_out / "checkpoint.pt"), read_file(tmp_path / "checkpoint.pt")
    for net in ("generator", "discriminator"):
        assert all(torch.equal(ca[net][k], cb[net][k]) for k in ca[net])
    assert ca["early_stopping"] == cb["early_stopping"]
    assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])

    # A finished run resumes to itself without training; more epochs may be asked for.
    again = train_pix2pix(CONFIG, TRAIN, VAL, tmp_path, on_progress=_fail)
    assert _strip_seconds(again.history) == _strip_seconds(reference.history)


def _fail(event):
    raise AssertionError(f"no training expected, got {event}")


def test_config_mismatch_on_resume_raises(full_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(full_run[2], out)
    with pytest.raises(ConfigMismatchError, match="lr"):
        train_pix2pix(dataclasses.replace(CONFIG, lr=1e-4), TRAIN, VAL, out, on_progress=_fail)
    with pytest.raises(ConfigMismatchError, match="early_stopping"):
        train_pix2pix(
            dataclasses.replace(CONFIG, early_stopping=None), TRAIN, VAL, out, on_progress=_fail
        )
    # Fields that do not change the computation may differ (here: performance options).
    same = dataclasses.replace(CONFIG, perf=PerformanceOptions.fast(), num_workers=0)
    assert len(train_pix2pix(same, TRAIN, VAL, out, on_progress=_fail).history) == 4


def test_early_stopping_stops_and_keeps_best_weights(tmp_path):
    # Validation targets are the negated training targets: the better the generator learns
    # the training mapping, the worse its validation loss, so the criterion must fire.
    val = _toy(16, seed=2, sign=-1.0)
    config = dataclasses.replace(CONFIG, epochs=8, early_stopping=EarlyStoppingConfig(k=2, mu=1e-6))
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(event: ProgressEvent) -> None:
        if event.phase == "epoch":
            snapshots[event.epoch] = _weights(tmp_path / "last_generator.pt")

    result = train_pix2pix(config, TRAIN, val, tmp_path, on_progress=snapshot)
    assert result.stopped_epoch is not None and result.stopped_epoch < 8
    assert len(result.history) == result.stopped_epoch == max(snapshots)
    assert result.stopped_epoch >= 2  # never before k
    vals = [h["val_total"] for h in result.history]
    assert result.best_epoch == 1 + vals.index(min(vals))
    assert result.best_epoch < result.stopped_epoch
    best = _weights(tmp_path / "best_generator.pt")
    expected = snapshots[result.best_epoch]
    assert all(torch.equal(best[k], expected[k]) for k in best)
    last = _weights(tmp_path / "last_generator.pt")
    assert any(not torch.equal(last[k], best[k]) for k in best)
    _, meta = load_generator(tmp_path / "best_generator.pt")
    assert meta["epoch"] == result.best_epoch
    # Stopped runs stay stopped on resume.
    again = train_pix2pix(config, TRAIN, val, tmp_path, on_progress=_fail)
    assert again.stopped_epoch == result.stopped_epoch


def test_config_dict_round_trip_and_validation():
    cfg = dataclasses.replace(CONFIG, perf=PerformanceOptions.fast())
    assert Pix2PixConfig.from_dict(cfg.to_dict()) == cfg
    default = Pix2PixConfig(image_size=256)
    assert default.early_stopping == EarlyStoppingConfig(10, 0.75, "total")
    assert default.perf == PerformanceOptions.reference() and default.device == "auto"
    assert (default.epochs, default.batch_size, default.lr, default.lambda_l1) == (
        200,
        16,
        2e-4,
        100.0,
    )
    assert Pix2PixConfig.from_dict(default.to_dict()) == default
    nostop = Pix2PixConfig(image_size=64, early_stopping=None)
    assert Pix2PixConfig.from_dict(nostop.to_dict()) == nostop
    with pytest.raises(ValueError):
        Pix2PixConfig(image_size=48)
    with pytest.raises(ValueError):
        Pix2PixConfig(image_size=64, colour_space="hsv")
    with pytest.raises(ValueError):
        Pix2PixConfig.from_dict({**default.to_dict(), "bogus": 1})

    class Space(str):  # stands in for a str-Enum with a .value
        value = "yuv"

    assert Pix2PixConfig(image_size=64, colour_space=Space("x")).colour_space == "yuv"
