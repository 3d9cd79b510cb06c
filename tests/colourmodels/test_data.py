"""colourmodels.data: safe loading, grayscale test, folder reader, split, dataset."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colourmodels.colour import rgb_to_luma_chroma
from colourmodels.data import (
    ColourisationDataset,
    ImageError,
    ImageRecord,
    chroma_magnitude,
    image_to_tensor,
    is_grayscale,
    load_rgb,
    loader_kwargs,
    probe_image,
    read_folder,
    resize_square,
    split_counts,
    stratified_split,
    to_rgb,
)

# --------------------------------------------------------------------------------------
# image makers
# --------------------------------------------------------------------------------------


def gradient(width: int = 40, height: int = 30, seed: int = 0) -> np.ndarray:
    """A smooth, colourful 8-bit RGB array (H, W, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = 40 + 170 * x / max(width - 1, 1)
    g = 40 + 170 * y / max(height - 1, 1)
    b = np.full_like(r, rng.uniform(60, 200))
    return np.stack([r, g, b], -1).round().astype(np.uint8)


def save(array_or_image, path: Path, **kwargs) -> Path:
    image = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(array_or_image)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims ``width x height`` (valid CRC): a decompression bomb
    as far as the header is concerned."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (10, 20, 30)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = 8  # after the signature: length(4) 'IHDR'(4) data(13) crc(4)
    assert data[start + 4 : start + 8] == b"IHDR"
    ihdr = bytearray(data[start + 8 : start + 21])
    ihdr[0:8] = struct.pack(">II", width, height)
    data[start + 8 : start + 21] = ihdr
    data[start + 21 : start + 25] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


# --------------------------------------------------------------------------------------
# load_rgb: good images and mode conversions
# --------------------------------------------------------------------------------------


def test_rgb_jpeg_loads_detached(tmp_path):
    path = save(gradient(), tmp_path / "a.jpg", quality=95)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (40, 30)
    path.unlink()  # the image no longer needs its file
    assert image.getpixel((0, 0)) is not None


def test_sources_bytes_and_file_object(tmp_path):
    path = save(gradient(), tmp_path / "a.png")
    from_path = np.asarray(load_rgb(path))
    with open(path, "rb") as f:
        from_file = np.asarray(load_rgb(f))
    from_bytes = np.asarray(load_rgb(path.read_bytes(), name="upload.png"))
    assert np.array_equal(from_path, from_file) and np.array_equal(from_path, from_bytes)
    with pytest.raises(ImageError, match="upload.txt"):
        load_rgb(b"hello", name="upload.txt")


def test_grayscale_mode_becomes_equal_channels(tmp_path):
    gray = np.arange(0, 240, 8, dtype=np.uint8).reshape(5, 6)
    image = load_rgb(save(gray, tmp_path / "g.png"))
    array = np.asarray(image)
    assert image.mode == "RGB"
    for channel in range(3):
        assert np.array_equal(array[..., channel], gray)


def test_16_bit_grayscale_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I;16")
    array = np.asarray(load_rgb(path))
    assert array[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.array_equal(array[..., 0], array[..., 2])


def test_mode_i_and_f_grey(tmp_path):
    eight_bit = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert eight_bit.mode == "I"
    assert np.asarray(to_rgb(eight_bit))[0, :, 0].tolist() == [0, 100, 255]
    sixteen = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert np.asarray(to_rgb(sixteen))[0, :, 0].tolist() == [0, 255]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(floats))[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    rgba[2:, :, 3] = 0
    image = load_rgb(save(rgba, tmp_path / "alpha.png"))
    array = np.asarray(image)
    assert image.mode == "RGB"
    assert array[0, 0].tolist() == [200, 0, 0]
    assert array[3, 3].tolist() == [255, 255, 255]


def test_la_composited_on_white(tmp_path):
    la = Image.new("LA", (2, 1), (50, 255))
    la.putpixel((1, 0), (50, 0))
    array = np.asarray(load_rgb(save(la, tmp_path / "la.png")))
    assert array[0, 0].tolist() == [50, 50, 50]
    assert array[0, 1].tolist() == [255, 255, 255]


def test_palette_with_and_without_transparency(tmp_path):
    rgb = Image.fromarray(gradient(8, 8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    loaded = load_rgb(save(palette, tmp_path / "p.png"))
    assert loaded.mode == "RGB"
    assert np.array_equal(np.asarray(loaded), np.asarray(palette.convert("RGB")))

    transparent = palette.copy()
    index = transparent.getpixel((0, 0))
    transparent.info["transparency"] = index
    path = tmp_path / "pt.png"
    transparent.save(path, transparency=index)
    array = np.asarray(load_rgb(path))
    assert array[0, 0].tolist() == [255, 255, 255]

    gif = save(palette, tmp_path / "p.gif")
    assert load_rgb(gif).mode == "RGB"


def test_cmyk_jpeg_converted(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    path = save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    image = load_rgb(path)
    r, g, b = np.asarray(image)[4, 4].tolist()
    assert image.mode == "RGB" and r > 200 and g < 50 and b < 50


def test_exif_orientation_applied(tmp_path):
    array = gradient(20, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(array, tmp_path / "rot.jpg", exif=exif, quality=95)
    assert Image.open(path).size == (20, 10)
    assert load_rgb(path).size == (10, 20)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    r, g, b = load_rgb(path).getpixel((1, 1))
    assert r > 200 and b < 50


def test_unsupported_mode_names_mode_and_channels():
    with pytest.raises(ImageError, match=r"'HSV' with 3 channel"):
        to_rgb(Image.new("HSV", (2, 2)), name="x.tif")


# --------------------------------------------------------------------------------------
# load_rgb: bad files
# --------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found") as info:
        load_rgb(tmp_path / "nope.jpg")
    assert info.value.path.endswith("nope.jpg")


def test_corrupt_bytes(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(2000)))
    with pytest.raises(ImageError, match="noise.jpg"):
        load_rgb(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photograph\n")
    with pytest.raises(ImageError, match="notes.jpg: not an image"):
        load_rgb(path)
    assert isinstance(ImageError("x", "y"), ValueError)


def test_truncated_jpeg(tmp_path):
    full = save(
        np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8),
        tmp_path / "full.jpg",
        quality=95,
    )
    data = full.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    probe_image(cut)  # the header is intact...
    with pytest.raises(ImageError, match=r"cut.jpg: truncated"):
        load_rgb(cut)  # ...the pixels are not


def test_corrupt_png_data(tmp_path):
    path = save(gradient(), tmp_path / "a.png")
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    for i in range(idat + 8, idat + 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="a.png"):
        load_rgb(path)


def test_decompression_bomb_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(100_000, 100_000))  # 10^10 pixels claimed, 1 stored
    with pytest.raises(ImageError, match=r"bomb.png: image too large"):
        load_rgb(path)
    with pytest.raises(ImageError, match="too large"):
        probe_image(path)


def test_pixel_limit_of_our_own(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(9000, 8000))  # 72 M: over MAX_PIXELS, under Pillow's
    with pytest.raises(ImageError, match=r"9000x8000 = 72,000,000 pixels"):
        load_rgb(path)
    small = save(gradient(64, 64), tmp_path / "small.png")
    with pytest.raises(ImageError, match="limit 1,000"):
        load_rgb(small, max_pixels=1000)


def test_pillow_bomb_warning_is_an_error(tmp_path, monkeypatch):
    path = save(gradient(40, 40), tmp_path / "warn.png")  # 1,600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warning above 1,000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_rgb(path)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a regular file"):
        load_rgb(tmp_path)


# --------------------------------------------------------------------------------------
# is_grayscale
# --------------------------------------------------------------------------------------


def test_is_grayscale_cases():
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))
    assert is_grayscale(Image.fromarray(gray))  # mode L
    equal = Image.fromarray(np.stack([gray] * 3, -1))
    assert is_grayscale(equal)  # RGB, equal channels
    noise = np.random.default_rng(0).integers(-1, 2, (20, 25, 3))
    nearly = Image.fromarray(np.clip(np.stack([gray] * 3, -1) + noise, 0, 255).astype(np.uint8))
    assert chroma_magnitude(nearly) < 2.0 and is_grayscale(nearly)  # JPEG-like noise
    assert not is_grayscale(Image.fromarray(gradient()))
    sepia = np.stack([gray * 1.0, gray * 0.85, gray * 0.65], -1).astype(np.uint8)
    assert not is_grayscale(Image.fromarray(sepia))  # toned, not grey
    assert is_grayscale(Image.fromarray(sepia), threshold=100.0)
    assert is_grayscale(Image.new("I;16", (3, 3)))


# --------------------------------------------------------------------------------------
# read_folder
# --------------------------------------------------------------------------------------


def test_flat_folder(tmp_path):
    for name in ("b.jpg", "a.png", "c.JPEG"):
        save(gradient(), tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.jpg").write_text("not an image")
    save(gradient(), tmp_path / ".hidden.jpg")
    scan = read_folder(tmp_path)
    assert [r.path.name for r in scan.records] == ["a.png", "b.jpg", "c.JPEG"]
    assert all(r.category is None for r in scan.records)
    assert scan.categories == []
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert set(reasons) == {"notes.txt", "bad.jpg"}
    assert reasons["notes.txt"].startswith("not an image file")
    assert reasons["bad.jpg"].startswith("unreadable")
    assert scan.counts() == {None: 3}


def test_category_folders(tmp_path):
    save(gradient(), tmp_path / "dogs" / "d2.jpg")
    save(gradient(), tmp_path / "dogs" / "d1.jpg")
    save(gradient(), tmp_path / "dogs" / "more" / "d3.png")
    save(gradient(), tmp_path / "cats" / "c1.jpg")
    save(gradient(), tmp_path / "loose.jpg")
    (tmp_path / "empty").mkdir()
    (tmp_path / "__MACOSX").mkdir()
    save(gradient(), tmp_path / "__MACOSX" / "x.jpg")
    scan = read_folder(tmp_path)
    rel = [(r.path.relative_to(tmp_path).as_posix(), r.category) for r in scan.records]
    assert rel == [
        ("cats/c1.jpg", "cats"),
        ("dogs/d1.jpg", "dogs"),
        ("dogs/d2.jpg", "dogs"),
        ("dogs/more/d3.png", "dogs"),
    ]
    assert scan.categories == ["cats", "dogs"]
    assert scan.counts() == {"cats": 1, "dogs": 3}
    assert [(s.path.name, s.reason) for s in scan.skipped] == [
        ("loose.jpg", "outside the category folders")
    ]


def test_decode_and_grayscale_options(tmp_path):
    save(gradient(), tmp_path / "colour.jpg", quality=95)
    save(np.full((20, 20), 90, np.uint8), tmp_path / "grey.jpg")
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = save(noise, tmp_path / "whole.jpg", quality=95).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])

    header_only = read_folder(tmp_path)
    assert [r.path.name for r in header_only.records] == [
        "colour.jpg",
        "cut.jpg",
        "grey.jpg",
        "whole.jpg",
    ]
    decoded = read_folder(tmp_path, decode=True, workers=2)
    assert [r.path.name for r in decoded.records] == ["colour.jpg", "grey.jpg", "whole.jpg"]
    assert "truncated" in decoded.skipped[0].reason
    seen = []
    no_grey = read_folder(tmp_path, drop_grayscale=True, on_file=seen.append)
    assert [r.path.name for r in no_grey.records] == ["colour.jpg", "whole.jpg"]
    assert {s.path.name: s.reason.split(":")[0] for s in no_grey.skipped} == {
        "cut.jpg": "unreadable",
        "grey.jpg": "grayscale",
    }
    assert len(seen) == 4
    assert no_grey.skip_reasons() == {"unreadable": 1, "grayscale": 1}


def test_read_folder_needs_a_folder(tmp_path):
    with pytest.raises(NotADirectoryError):
        read_folder(tmp_path / "missing")


# --------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------


def test_split_counts():
    assert split_counts(12) == [9, 2, 1]
    assert split_counts(100) == [75, 15, 10]
    assert split_counts(0) == [0, 0, 0]
    assert split_counts(3) == [2, 1, 0]
    for n in range(200):
        counts = split_counts(n)
        assert sum(counts) == n
        assert all(abs(c - n * f) < 1 for c, f in zip(counts, (0.75, 0.15, 0.10)))
    with pytest.raises(ValueError):
        split_counts(10, (0.5, 0.5, 0.5))


def _records(counts: dict[str | None, int]) -> list[ImageRecord]:
    return [
        ImageRecord(Path(f"/data/{cat or 'none'}/{i:04d}.jpg"), cat)
        for cat, n in counts.items()
        for i in range(n)
    ]


def test_split_stratified_and_proportional():
    records = _records({"animals": 40, "city": 20, None: 100})
    split = stratified_split(records, seed=3)
    for cat, n in (("animals", 40), ("city", 20), (None, 100)):
        got = [
            sum(r.category == cat for r in part) for part in (split.train, split.val, split.test)
        ]
        assert got == split_counts(n)
    everything = split.train + split.val + split.test
    assert sorted(everything) == sorted(records)
    assert len(set(everything)) == len(records)


def test_split_deterministic_and_order_free():
    records = _records({"a": 30, "b": 17})
    first = stratified_split(records, seed=7)
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    again = stratified_split(shuffled, seed=7)
    assert first == again
    other = stratified_split(records, seed=8)
    assert other.train != first.train
    assert first.train == sorted(first.train, key=lambda r: str(r.path))


def test_split_new_category_leaves_others_alone():
    base = _records({"a": 30})
    grown = base + _records({"b": 10})
    a_only = stratified_split(base, seed=0)
    with_b = stratified_split(grown, seed=0)
    assert [r for r in with_b.test if r.category == "a"] == a_only.test


def test_split_plain_items_and_fractions():
    paths = [f"img{i}.jpg" for i in range(20)]
    split = stratified_split(paths, seed=0, fractions=(0.5, 0.5, 0.0))
    assert (len(split.train), len(split.val), len(split.test)) == (10, 10, 0)
    with pytest.raises(ValueError, match="add up to 1"):
        stratified_split(paths, fractions=(0.8, 0.3, 0.1))


# --------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------


def test_resize_square_is_resize_then_centre_crop():
    image = Image.fromarray(gradient(96, 48))
    square = resize_square(image, 16)
    reference = image.resize((32, 16), Image.Resampling.BICUBIC).crop((8, 0, 24, 16))
    assert square.size == (16, 16)
    diff = np.abs(np.asarray(square, np.int16) - np.asarray(reference, np.int16))
    assert diff.max() <= 3
    same = Image.fromarray(gradient(20, 16))
    assert np.array_equal(np.asarray(resize_square(same, 16)), np.asarray(same)[:, 2:18])


def test_dataset_items(tmp_path):
    records = [
        ImageRecord(save(gradient(50, 30, seed=1), tmp_path / "x" / "a.jpg"), "x"),
        ImageRecord(save(gradient(30, 60, seed=2), tmp_path / "y" / "b.png"), "y"),
        ImageRecord(save(gradient(33, 33, seed=3), tmp_path / "c.png"), None),
    ]
    for space in ("lab", "yuv"):
        ds = ColourisationDataset(records, space, 32)
        assert len(ds) == 3 and ds.categories == ["x", "y"]
        for i, expected in enumerate((0, 1, -1)):
            luma, chroma, category = ds[i]
            assert luma.shape == (1, 32, 32) and chroma.shape == (2, 32, 32)
            assert luma.dtype == torch.float32 and chroma.dtype == torch.float32
            assert category == expected
            assert luma.min() >= -1 and luma.max() <= 1
            assert chroma.abs().max() <= 1 + 1e-4
            square = resize_square(load_rgb(records[i].path), 32)
            ref_luma, ref_chroma = rgb_to_luma_chroma(image_to_tensor(square)[None], space)
            assert torch.allclose(luma, ref_luma[0]) and torch.allclose(chroma, ref_chroma[0])
    fixed = ColourisationDataset(records, "lab", 32, categories=["y", "z"])
    assert [fixed[i][2] for i in range(3)] == [-1, 0, -1]
    assert ColourisationDataset([str(records[0].path)], "lab", 32)[0][2] == -1


def test_dataset_flips_only_in_train(tmp_path):
    path = save(gradient(40, 40), tmp_path / "a.png")
    plain = ColourisationDataset([path], "lab", 32, train=False)
    reference = plain[0]
    torch.manual_seed(0)
    for _ in range(10):
        luma, chroma, _ = plain[0]
        assert torch.equal(luma, reference[0]) and torch.equal(chroma, reference[1])
    train = ColourisationDataset([path], "lab", 32, train=True)
    flipped = unflipped = 0
    for _ in range(40):
        luma, chroma, _ = train[0]
        if torch.equal(luma, reference[0]):
            assert torch.equal(chroma, reference[1])
            unflipped += 1
        else:
            assert torch.allclose(luma, reference[0].flip(-1))
            assert torch.allclose(chroma, reference[1].flip(-1))
            flipped += 1
    assert flipped > 5 and unflipped > 5


def test_dataset_preload_and_loader(tmp_path):
    paths = [save(gradient(36, 30, seed=i), tmp_path / f"{i}.jpg") for i in range(5)]
    lazy = ColourisationDataset(paths, "yuv", 32)
    eager = ColourisationDataset(paths, "yuv", 32, preload=True)
    for i in range(5):
        assert torch.equal(lazy[i][0], eager[i][0]) and torch.equal(lazy[i][1], eager[i][1])
    loader = torch.utils.data.DataLoader(eager, batch_size=2, **loader_kwargs("cpu"))
    luma, chroma, category = next(iter(loader))
    assert luma.shape == (2, 1, 32, 32) and chroma.shape == (2, 2, 32, 32)
    assert category.tolist() == [-1, -1]


def test_dataset_unreadable_image_names_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    with pytest.raises(ImageError, match="bad.jpg"):
        ColourisationDataset([bad], "lab", 32)[0]


def test_loader_kwargs():
    assert loader_kwargs("cpu", cpus=2) == {"num_workers": 0, "pin_memory": False}
    gpu = loader_kwargs("cuda", cpus=16)
    assert gpu["num_workers"] == 8 and gpu["pin_memory"] is True
    assert gpu["persistent_workers"] is True
    assert loader_kwargs("cpu", cpus=16)["num_workers"] == 4
    assert loader_kwargs("cuda", num_workers=0)["num_workers"] == 0
    assert "persistent_workers" not in loader_kwargs("cuda", num_workers=0)
