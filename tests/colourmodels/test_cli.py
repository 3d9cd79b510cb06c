"""python -m colourmodels: describe, train -> colourise -> evaluate, and error exits."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colourmodels.checkpoints import save_generator
from colourmodels.cli import main
from colourmodels.data import load_rgb
from colourmodels.inference import luminance
from colourmodels.networks import UNetGenerator

REPO = Path(__file__).resolve().parents[2]


def photo(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    hue = rng.uniform(0, 1, 3)
    r = 60 + 150 * (x / width) * hue[0]
    g = 60 + 150 * (y / height) * hue[1]
    b = 60 + 150 * hue[2] + 10 * np.sin(x / 3.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).round().astype(np.uint8)


def make_folder(root: Path) -> Path:
    """12 colour photos in two category folders (non-square sizes), plus junk."""
    for i in range(12):
        category = "beach" if i % 2 else "forest"
        size = (40 + 2 * i, 36) if i % 3 else (36, 44)
        path = root / category / f"img{i:02d}.{'jpg' if i % 4 else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(*size, seed=i)).save(path)
    (root / "beach" / "README.txt").write_text("not an image")
    return root


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_describe_json_paper_numbers(capsys):
    code, out, _ = run(capsys, "describe", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["generator"] == 54_409_858
    assert report["discriminator"] == 2_765_633
    assert report["classifier"] == 21_281_478
    assert report["image_size"] == 256 and report["width"] == 64


def test_describe_small_and_text(capsys):
    code, out, _ = run(capsys, "describe", "--size", "32", "--width", "8")
    assert code == 0 and "U-Net generator (32 px, width 8" in out
    code, _, err = run(capsys, "describe", "--size", "48")
    assert code == 2 and "power of two" in err and "Traceback" not in err


@pytest.mark.slow
def test_train_colourise_evaluate_end_to_end(tmp_path, capsys):
    data = make_folder(tmp_path / "photos")
    run_dir = tmp_path / "run"
    common = ["--size", "32", "--width", "8", "--batch", "4", "--out", run_dir]
    code, out, err = run(capsys, "train", data, "--epochs", "2", "--space", "yuv", *common)
    assert code == 0, err
    assert "best epoch" in out and "epoch 2/2: train total" in err  # progress on stderr
    common.append("--quiet")
    for name in ("best_generator.pt", "last_generator.pt", "checkpoint.pt", "split.json"):
        assert (run_dir / name).is_file()
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last_epoch"] == 2 and summary["images"] == {"train": 8, "val": 2, "test": 2}
    split = json.loads((run_dir / "split.json").read_text())
    assert split["categories"] == ["beach", "forest"]
    assert split["counts"]["train"] == {"beach": 4, "forest": 4}
    assert [s["path"] for s in split["skipped"]] == ["beach/README.txt"]

    # resume: one more epoch on top of the checkpoint
    code, out, err = run(capsys, "train", data, "--epochs", "3", "--space", "yuv", *common)
    assert code == 0, err
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [1, 2, 3]
    # a different split (seed) cannot resume into the same folder
    code, _, err = run(capsys, "train", data, "--epochs", "3", "--seed", "1", *common)
    assert code == 2 and "different split" in err

    coloured = tmp_path / "coloured"
    code, out, err = run(
        capsys, "colourise", run_dir / "best_generator.pt", data, "--out", coloured
    )
    assert code == 0, err
    manifest = json.loads((coloured / "colourise.json").read_text())
    assert manifest["space"] == "yuv" and manifest["model_size"] == 32
    assert len(manifest["images"]) == 12
    for source in sorted(data.rglob("img*.*")):
        target = coloured / source.relative_to(data).with_suffix(".png")
        result, original = load_rgb(target), load_rgb(source)
        assert result.size == original.size  # the input's own resolution
        diff = (luminance(result, "yuv") - luminance(original, "yuv")).abs()
        assert diff.mean() < 0.01
    settings = json.loads(Image.open(coloured / "beach" / "img01.png").text["colourmodels"])
    assert settings["dropout"] is False and settings["space"] == "yuv"

    code, out, err = run(capsys, "evaluate", coloured, data, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["space"] == "yuv" and report["count"] == 12
    for key in ("l1_distance", "chroma_mae", "ssim", "psnr", "colourfulness_difference"):
        assert len([row[key] for row in report["images"]]) == 12
        assert np.isfinite(report["mean"][key])
    assert 0 < report["mean"]["ssim"] <= 1
    for row in report["images"]:  # l1 = 100 mean|dU/.436|,|dV/.615|; mae = mean|dU|,|dV|
        assert 0.436 * row["l1_distance"] / 100 <= row["chroma_mae"] + 1e-12
        assert row["chroma_mae"] <= 0.615 * row["l1_distance"] / 100 + 1e-12

    code, out, _ = run(capsys, "evaluate", data, data)
    assert code == 0 and "l1_distance" in out and "0.0000" in out

    # Without INPUT, the run's test split (split.json beside the checkpoint), with the
    # site's upload manifest and, with --zip, the zip to upload (the ensemble's code).
    test_out, upload = tmp_path / "test-split", tmp_path / "baseline.zip"
    code, out, err = run(
        capsys, "colourise", run_dir, "--out", test_out, "--zip", upload, "--quiet"
    )
    assert code == 0, err
    assert f"zip to upload as a run: {upload}" in out
    with (test_out / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "original_name", "category", "true_category", "model"]
    test_split = [(item["path"], item["category"]) for item in split["test"]]
    assert sorted((r["original_name"], r["true_category"]) for r in rows) == sorted(test_split)
    assert {r["model"] for r in rows} == {"colourmodels baseline run (yuv)"}
    assert {r["category"] for r in rows} == {""}  # no routing
    for row in rows:
        assert row["file"] == str(Path(row["original_name"]).with_suffix(".png"))
        assert load_rgb(test_out / row["file"]).size == load_rgb(data / row["original_name"]).size
    with zipfile.ZipFile(upload) as zf:
        assert sorted(zf.namelist()) == sorted(["manifest.csv", *(r["file"] for r in rows)])
        assert zf.read("manifest.csv") == (test_out / "manifest.csv").read_bytes()


def test_colourise_single_image_with_dropout(tmp_path, capsys):
    checkpoint = tmp_path / "g.pt"
    torch.manual_seed(0)
    save_generator(UNetGenerator(1, 2, 32, 4), checkpoint, colour_space="lab", epoch=1)
    source = tmp_path / "in.jpg"
    Image.fromarray(photo(50, 30, 1)).convert("L").save(source)
    out_dir = tmp_path / "out"
    args = ["colourise", checkpoint, source, "--out", out_dir, "--dropout", "--seed", "3"]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    image = Image.open(out_dir / "in.png")
    assert image.size == (50, 30) and image.mode == "RGB"
    assert json.loads(image.text["colourmodels"])["dropout"] is True
    with (out_dir / "manifest.csv").open(newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == ["in.png"]
    # No INPUT: the run's test split, which a lone generator file has not.
    code, _, err = run(capsys, "colourise", checkpoint, "--out", tmp_path / "o")
    assert code == 2 and "no split.json beside the checkpoint" in err
    assert json.loads((out_dir / "colourise.json").read_text())["seed"] == 3


def test_error_exits(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo(20, 20, 0)).save(photos / "a.png")

    code, _, err = run(capsys, "colourise", tmp_path / "missing.pt", photos, "--out", tmp_path)
    assert code == 2 and "checkpoint not found" in err and "missing.pt" in err

    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    code, _, err = run(capsys, "colourise", junk, photos, "--out", tmp_path / "o")
    assert code == 2 and "junk.pt" in err

    three = tmp_path / "three.pt"
    save_generator(UNetGenerator(3, 2, 32, 4), three, colour_space="lab", epoch=1)
    code, _, err = run(capsys, "colourise", three, photos, "--out", tmp_path / "o")
    assert code == 2 and "maps 3 to 2" in err

    good = tmp_path / "good.pt"
    save_generator(UNetGenerator(1, 2, 32, 4), good, colour_space="lab", epoch=1)
    code, _, err = run(capsys, "colourise", good, empty, "--out", tmp_path / "o")
    assert code == 2 and "no image files" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.jpg").write_text("text")
    code, _, err = run(capsys, "colourise", good, broken, "--out", tmp_path / "o")
    assert code == 2 and "x.jpg" in err

    code, _, err = run(capsys, "train", empty, "--out", tmp_path / "r", "--size", "32")
    assert code == 2 and "no usable colour images" in err
    code, _, err = run(capsys, "train", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert code == 2 and "not a folder" in err

    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(photo(24, 20, 0)).save(other / "a.png")
    code, _, err = run(capsys, "evaluate", photos, other)
    assert code == 2 and "a.png" in err and "differs" in err
    code, _, err = run(capsys, "evaluate", photos, empty)
    assert code == 2 and "no image files" in err
    for line in err.strip().splitlines():
        assert line.startswith("colourmodels evaluate: error:")


def test_module_entry_point_errors_cleanly(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "colourmodels",
            "colourise",
            str(tmp_path / "none.pt"),
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"colourmodels colourise: error: checkpoint not found: {tmp_path / 'none.pt'}"
    ]
    usage = subprocess.run(
        [sys.executable, "-m", "colourmodels", "train"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert usage.returncode == 2 and "error:" in usage.stderr
