"""Generator / classifier files: round trips and clear errors."""

from __future__ import annotations

import pytest
import torch

from colourmodels.checkpoints import (
    CheckpointError,
    atomic_save,
    load_classifier,
    load_generator,
    read_file,
    save_classifier,
    save_generator,
)
from colourmodels.networks import UNetGenerator, build_classifier, init_weights

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture()
def generator():
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(1, 2, 64, 4))
    g.train()
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    g(x)  # move the BatchNorm running statistics away from their initial values
    return g


def test_generator_round_trip(generator, tmp_path):
    path = save_generator(generator, tmp_path / "g.pt", colour_space="yuv", epoch=7)
    loaded, meta = load_generator(path)
    assert meta == {
        "arch": "unet",
        "image_size": 64,
        "width": 4,
        "in_channels": 1,
        "out_channels": 2,
        "dropout": 0.5,
        "colour_space": "yuv",
        "epoch": 7,
        "eval_mode": True,
    }
    assert not loaded.training
    for (k, a), (k2, b) in zip(generator.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    generator.eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(generator(x), loaded(x))


def test_generator_saved_from_channels_last_loads(generator, tmp_path):
    generator = generator.to(memory_format=torch.channels_last)
    save_generator(generator, tmp_path / "g.pt", colour_space="lab", epoch=None, eval_mode=False)
    loaded, meta = load_generator(tmp_path / "g.pt")
    assert loaded.training and meta["eval_mode"] is False
    sd = read_file(tmp_path / "g.pt")["state_dict"]
    assert all(v.is_contiguous() for v in sd.values())


def test_generator_errors(generator, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_generator(tmp_path / "junk.pt")
    torch.save(generator.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(CheckpointError, match="not a colourmodels.generator file"):
        load_generator(tmp_path / "raw.pt")
    # Metadata and weights that disagree (width 8 in the metadata, width-4 weights).
    obj = read_file(save_generator(generator, tmp_path / "g.pt", colour_space="lab", epoch=1))
    obj["meta"]["width"] = 8
    torch.save(obj, tmp_path / "wrong_width.pt")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_generator(tmp_path / "wrong_width.pt")
    obj["meta"]["width"] = 4
    obj["state_dict"].pop("ups.0.2.running_mean")
    obj["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(obj, tmp_path / "wrong_keys.pt")
    with pytest.raises(CheckpointError, match="missing keys.*unexpected keys"):
        load_generator(tmp_path / "wrong_keys.pt")
    obj["meta"]["image_size"] = 48
    torch.save(obj, tmp_path / "bad_meta.pt")
    with pytest.raises(CheckpointError, match="bad generator metadata"):
        load_generator(tmp_path / "bad_meta.pt")


def test_classifier_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = build_classifier(3)
    names = ("a", "b", "c")
    save_classifier(model, tmp_path / "c.pt", num_classes=3, class_names=names, epoch=2)
    loaded, meta = load_classifier(tmp_path / "c.pt")
    assert meta["num_classes"] == 3 and meta["class_names"] == ["a", "b", "c"]
    assert meta["epoch"] == 2 and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), loaded.parameters()))
    gen = init_weights(UNetGenerator(image_size=32, width=2))
    save_generator(gen, tmp_path / "g.pt", colour_space="lab", epoch=1)
    with pytest.raises(CheckpointError, match="not a colourmodels.classifier file"):
        load_classifier(tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="not a colourmodels.generator file"):
        load_generator(tmp_path / "c.pt")
    obj = read_file(tmp_path / "c.pt")
    obj["meta"]["num_classes"] = 4
    torch.save(obj, tmp_path / "c4.pt")
    with pytest.raises(CheckpointError, match="fc.weight"):
        load_classifier(tmp_path / "c4.pt")


def test_atomic_save_replaces_and_cleans_up(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    atomic_save({"a": torch.ones(2)}, path)
    atomic_save({"a": torch.zeros(2)}, path)
    assert torch.equal(read_file(path)["a"], torch.zeros(2))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(read_file(path)["a"], torch.zeros(2))  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temporary left behind
