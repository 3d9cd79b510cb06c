"""The rgb8 data path: uint8 items, conversion on the device, identical training inputs,
persistent loader workers with exact resumes."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from colourmodels.checkpoints import read_file
from colourmodels.colour import rgb_to_luma_chroma
from colourmodels.data import ColourisationDataset, ImageRecord, batch_to_luma_chroma
from colourmodels.data.device import rgb8_to_unit
from colourmodels.early_stopping import EarlyStoppingConfig
from colourmodels.training import ClassifierConfig, Pix2PixConfig, train_classifier, train_pix2pix
from colourmodels.training.common import (
    EpochLoader,
    batch_luma_chroma,
    dataset_for_path,
    resolve_data_path,
)

SIZE = 32


# Bit-identity is claimed for the same intra-op thread count (see data/device.py).
pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def _picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-3, 3, (3, 2))
    channels = [base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)]
    noise = rng.normal(0, 12, (height, width, 3))
    array = np.clip(np.stack(channels, axis=-1) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def _records(folder, n: int, start: int = 0) -> list[ImageRecord]:
    records = []
    for i in range(start, start + n):
        category = ("a", "b", "c")[i % 3]
        path = folder / category / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        _picture(40 + 7 * (i % 5), 36 + 5 * (i % 4), seed=i).save(path)
        records.append(ImageRecord(path, category))
    return records


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    return _records(folder, 12), _records(folder, 6, start=100)


# ------------------------------------------------------------------ dataset output


def test_rgb8_output_and_with_output(images):
    train, _ = images
    ds = ColourisationDataset(train, "lab", SIZE)
    rgb8 = ds.with_output("rgb8")
    assert rgb8 is not ds and rgb8.output == "rgb8" and ds.output == "luma_chroma"
    assert rgb8.with_output("rgb8") is rgb8 and rgb8.records is ds.records
    x, category = rgb8[1]
    assert x.dtype == torch.uint8 and x.shape == (3, SIZE, SIZE) and x.is_contiguous()
    assert category == ds[1][2] == 1
    assert torch.equal(rgb8_to_unit(x), ds.rgb(1)) and torch.equal(x, ds.rgb8(1))
    preloaded = ColourisationDataset(train, "lab", SIZE, preload=True, output="rgb8")
    assert torch.equal(preloaded[1][0], x)
    with pytest.raises(ValueError, match="output"):
        ColourisationDataset(train, "lab", SIZE, output="float")
    with pytest.raises(ValueError, match="output"):
        ds.with_output("yuv")


@pytest.mark.parametrize("space", ["lab", "yuv"])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("size", [SIZE, 45])
def test_device_conversion_gives_the_cpu_path_numbers(images, space, train, size):
    records, _ = images
    cpu = ColourisationDataset(records, space, size, train=train)
    rgb8 = cpu.with_output("rgb8")
    torch.manual_seed(7)
    expected = [cpu[i] for i in range(len(cpu))]
    torch.manual_seed(7)
    items = [rgb8[i] for i in range(len(rgb8))]
    batch = torch.stack([x for x, _ in items])
    luma, chroma = batch_to_luma_chroma(batch, space, "cpu")
    ref_luma = torch.stack([e[0] for e in expected])
    ref_chroma = torch.stack([e[1] for e in expected])
    assert luma.dtype == chroma.dtype == torch.float32
    assert luma.shape == (len(records), 1, size, size)
    assert chroma.shape == (len(records), 2, size, size)
    # per image on the CPU: the dataset's own numbers, bit for bit
    assert torch.equal(luma, ref_luma) and torch.equal(chroma, ref_chroma)
    assert [c for _, c in items] == [e[2] for e in expected]
    if train:  # the flips happened, and in the same places
        plain = ColourisationDataset(records, space, size)
        flipped = [not torch.equal(e[0], plain[i][0]) for i, e in enumerate(expected)]
        assert 0 < sum(flipped) < len(records)
    # the whole batch at once (what runs on CUDA): the same to 1e-6
    whole_luma, whole_chroma = rgb_to_luma_chroma(rgb8_to_unit(batch), space)
    torch.testing.assert_close(whole_luma, ref_luma, rtol=0, atol=1e-6)
    torch.testing.assert_close(whole_chroma, ref_chroma, rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("space", ["lab", "yuv"])
def test_cuda_conversion_matches_cpu(space):
    rgb8 = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8).pin_memory()
    ref_luma, ref_chroma = batch_to_luma_chroma(rgb8, space, "cpu")
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32 on: the conversion turns it off
        luma, chroma = batch_to_luma_chroma(rgb8, space, "cuda")
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)
    assert luma.device.type == "cuda" and luma.is_contiguous() and chroma.is_contiguous()
    torch.testing.assert_close(luma.cpu(), ref_luma, rtol=0, atol=1e-6)
    torch.testing.assert_close(chroma.cpu(), ref_chroma, rtol=0, atol=1e-6)


def test_batched_conversion_runs_without_tf32_and_restores_it(monkeypatch):
    """The whole-batch branch (CUDA's; on the CPU an empty batch takes it) converts with
    full float32 matmuls and leaves the process's TF32 setting as it found it."""
    import colourmodels.data.device as device_module

    seen = []
    original = device_module.rgb_to_luma_chroma

    def spy(rgb, space):
        seen.append(torch.get_float32_matmul_precision())
        return original(rgb, space)

    monkeypatch.setattr(device_module, "rgb_to_luma_chroma", spy)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32 allowed
        batch_to_luma_chroma(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), "lab")
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)
    assert seen == ["highest"]


def test_batch_to_luma_chroma_checks_input():
    with pytest.raises(TypeError, match="uint8"):
        batch_to_luma_chroma(torch.zeros(1, 3, 4, 4), "lab")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        batch_to_luma_chroma(torch.zeros(3, 4, 4, dtype=torch.uint8), "lab")
    with pytest.raises(ValueError, match="colour space"):
        batch_to_luma_chroma(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "hsv")
    luma, chroma = batch_to_luma_chroma(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), "yuv")
    assert luma.shape == (0, 1, 4, 4) and chroma.shape == (0, 2, 4, 4)


def test_data_path_helpers(images):
    train, _ = images
    ds = ColourisationDataset(train, "yuv", SIZE)
    assert resolve_data_path("auto", torch.device("cpu")) == "cpu"
    assert resolve_data_path("auto", torch.device("cuda")) == "device"
    assert resolve_data_path("device", torch.device("cpu")) == "device"
    with pytest.raises(ValueError, match="data_path"):
        resolve_data_path("gpu", torch.device("cpu"))
    assert dataset_for_path(ds, "device").output == "rgb8"
    assert dataset_for_path(ds.with_output("rgb8"), "cpu").output == "luma_chroma"
    plain = [torch.zeros(2, 1, 4, 4), torch.ones(2, 2, 4, 4)]
    assert dataset_for_path(plain, "device") is plain  # no with_output: used as it is
    luma, chroma = batch_luma_chroma(plain, "lab", torch.device("cpu"))
    assert luma is plain[0] and chroma is plain[1]
    with pytest.raises(ValueError, match="colour space"):
        batch_luma_chroma([torch.zeros(1, 3, 4, 4, dtype=torch.uint8)], None, torch.device("cpu"))
    with pytest.raises(ValueError, match="data_path"):
        Pix2PixConfig(image_size=SIZE, data_path="gpu")
    with pytest.raises(ValueError, match="data_path"):
        ClassifierConfig(data_path="gpu")
    assert Pix2PixConfig.from_dict(Pix2PixConfig(image_size=SIZE).to_dict()).data_path == "auto"


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_identical_through_either_path(images, workers):
    records, _ = images
    cpu = ColourisationDataset(records, "lab", SIZE, train=True)
    out = {}
    for path in ("cpu", "device"):
        torch.manual_seed(11)  # the flips' generator without workers
        loader = EpochLoader(
            dataset_for_path(cpu, path), batch_size=5, shuffle=True, seed=3, num_workers=workers
        )
        out[path] = [(*batch_luma_chroma(b, "lab", torch.device("cpu")), b[-1]) for b in loader(2)]
    assert len(out["cpu"]) == len(out["device"]) == 3
    for (l1, c1, k1), (l2, c2, k2) in zip(out["cpu"], out["device"], strict=True):
        assert torch.equal(l1, l2) and torch.equal(c1, c2) and torch.equal(k1, k2)


# ------------------------------------------------------------------ persistent workers


class _Noisy(Dataset):
    """Items drawn from torch's, numpy's and Python's global generators (as augmentations
    in loader workers would)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return torch.tensor(
            [float(i), torch.rand(()).item(), float(np.random.rand()), random.random()]
        )


def _epochs(loader: EpochLoader, epochs) -> list[torch.Tensor]:
    return [torch.cat(list(loader(e))) for e in epochs]


def test_persistent_workers_give_the_per_epoch_workers_batches():
    kwargs = dict(batch_size=3, shuffle=True, seed=5, num_workers=2)
    fresh = _epochs(EpochLoader(_Noisy(), **kwargs), [1, 2, 3])
    persistent = EpochLoader(_Noisy(), **kwargs, persistent_workers=True, prefetch_factor=4)
    kept = _epochs(persistent, [1, 2, 3, 2])
    for a, b in zip(fresh + [fresh[1]], kept, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(kept[0], kept[1])  # the epochs do differ
    # a resumed run: a new loader started at epoch 2
    resumed = _epochs(EpochLoader(_Noisy(), **kwargs, persistent_workers=True), [2, 3])
    assert torch.equal(resumed[0], kept[1]) and torch.equal(resumed[1], kept[2])
    # no workers: the options are ignored, and the main process's generators are used
    torch.manual_seed(0)
    plain = EpochLoader(_Noisy(), batch_size=3, shuffle=False, seed=5, persistent_workers=True)
    assert len(plain) == 4 and torch.cat(list(plain(1)))[:, 0].tolist() == list(range(10))


# ------------------------------------------------------------------ training


CONFIG = Pix2PixConfig(
    image_size=SIZE,
    width=8,
    epochs=3,
    batch_size=4,
    lr=2e-3,
    early_stopping=EarlyStoppingConfig(k=2, mu=1e9),
    device="cpu",
    seed=3,
)


def _history(result):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]


def _weights(path):
    return read_file(path, map_location="cpu")["generator"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def datasets(images):
    train, val = images
    return (
        ColourisationDataset(train, "lab", SIZE, train=True),
        ColourisationDataset(val, "lab", SIZE),
    )


@pytest.fixture(scope="module")
def cpu_run(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu_path")
    config = dataclasses.replace(CONFIG, data_path="cpu")
    return train_pix2pix(config, *datasets, out), out


def test_pix2pix_history_identical_with_either_path(datasets, cpu_run, tmp_path, monkeypatch):
    cpu, cpu_out = cpu_run
    import colourmodels.data.device as device_module

    calls = []
    original = device_module.batch_to_luma_chroma

    def counting(rgb8, *args, **kwargs):
        calls.append(rgb8.dtype)
        return original(rgb8, *args, **kwargs)

    monkeypatch.setattr(device_module, "batch_to_luma_chroma", counting)
    device = train_pix2pix(dataclasses.replace(CONFIG, data_path="device"), *datasets, tmp_path)
    assert calls == [torch.uint8] * (3 * (3 + 2))  # 3 epochs of 3 train + 2 val batches
    monkeypatch.undo()
    auto = train_pix2pix(CONFIG, *datasets, tmp_path / "auto")  # "auto" is "cpu" on the CPU
    assert len(cpu.history) == 3
    assert _history(device) == _history(cpu) == _history(auto)
    assert _same_weights(_weights(cpu_out / "checkpoint.pt"), _weights(tmp_path / "checkpoint.pt"))


def test_pix2pix_resume_exact_across_paths(datasets, cpu_run, tmp_path):
    cpu, cpu_out = cpu_run
    # one epoch on the CPU path, then resumed on the device path: data_path may change on
    # resume and changes nothing
    first = train_pix2pix(
        dataclasses.replace(CONFIG, epochs=1, data_path="cpu"), *datasets, tmp_path
    )
    assert first.last_epoch == 1
    resumed = train_pix2pix(dataclasses.replace(CONFIG, data_path="device"), *datasets, tmp_path)
    assert _history(resumed) == _history(cpu)
    assert _same_weights(_weights(cpu_out / "checkpoint.pt"), _weights(tmp_path / "checkpoint.pt"))


def test_pix2pix_with_persistent_workers_resumes_exactly(datasets, tmp_path):
    # the trainers keep their loader workers between epochs (loader_kwargs)
    config = dataclasses.replace(CONFIG, data_path="device", num_workers=2)
    full = train_pix2pix(config, *datasets, tmp_path / "full")
    train_pix2pix(dataclasses.replace(config, epochs=1), *datasets, tmp_path / "part")
    again = train_pix2pix(config, *datasets, tmp_path / "part")
    assert _history(again) == _history(full)
    assert _same_weights(
        _weights(tmp_path / "full" / "checkpoint.pt"),
        _weights(tmp_path / "part" / "checkpoint.pt"),
    )


def test_classifier_history_identical_with_either_path(images, tmp_path):
    train, val = images
    sets = (
        ColourisationDataset(train, "yuv", SIZE, train=True),
        ColourisationDataset(val, "yuv", SIZE),
    )
    base = ClassifierConfig(num_classes=3, epochs=2, batch_size=4, lr=1e-2, device="cpu")
    runs = {
        path: train_classifier(dataclasses.replace(base, data_path=path), *sets, tmp_path / path)
        for path in ("cpu", "device")
    }
    assert _history(runs["cpu"]) == _history(runs["device"])
    # resumed on the other path
    train_classifier(
        dataclasses.replace(base, epochs=1, data_path="device"), *sets, tmp_path / "mixed"
    )
    mixed = train_classifier(dataclasses.replace(base, data_path="cpu"), *sets, tmp_path / "mixed")
    assert _history(mixed) == _history(runs["cpu"])


def test_device_module_doctests():
    import doctest

    import colourmodels.data.device as device_module

    result = doctest.testmod(device_module, extraglobs={"torch": torch})
    assert result.failed == 0 and result.attempted > 0
