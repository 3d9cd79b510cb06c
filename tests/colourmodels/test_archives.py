"""Safe zip reading: every hostile case is refused, naming the member; a good zip of
category folders reads like the folder it came from."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colourmodels.data.archives import ArchiveError, ZipLimits, ZipRecord, read_zip
from colourmodels.data.synthetic import encode, make_scene


def _jpeg(category: str = "city", seed: int = 0, size: int = 32) -> bytes:
    return encode(make_scene(category, size, np.random.default_rng(seed)), "jpeg")


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], **kwargs) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, **kwargs) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _nothing_outside(tmp_path: Path, dest: Path) -> None:
    assert not (tmp_path / "evil.jpg").exists()
    assert not Path("/abs.jpg").exists()
    assert not dest.exists() or not any(dest.rglob("*.jpg"))


def test_good_zip_with_category_folders(tmp_path):
    gray = io.BytesIO()
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(gray, "PNG")
    members = [
        ("photos/", b""),
        ("photos/animals/a1.jpg", _jpeg("animals", 1)),
        ("photos/animals/a2.jpg", _jpeg("animals", 2)),
        ("photos/city/sub/c1.jpg", _jpeg("city", 3)),
        ("photos/city/gray.png", gray.getvalue()),
        ("photos/city/notes.txt", b"hello"),
        ("photos/city/inner.zip", b"PK\x05\x06" + b"\x00" * 18),
        ("photos/.DS_Store", b"junk"),
        ("photos/animals/.hidden.jpg", _jpeg()),
        ("__MACOSX/photos/animals/._a1.jpg", b"resource fork"),
    ]
    archive = _zip(tmp_path / "good.zip", members)
    dest = tmp_path / "out"
    scan = read_zip(archive, dest, drop_grayscale=True)
    assert scan.wrapper == "photos"
    assert scan.categories == ["animals", "city"]
    assert scan.counts() == {"animals": 2, "city": 1}
    assert all(isinstance(r, ZipRecord) for r in scan.records)
    assert [r.member for r in scan.records] == [
        "photos/animals/a1.jpg",
        "photos/animals/a2.jpg",
        "photos/city/sub/c1.jpg",
    ]
    for record in scan.records:
        assert record.path.is_file() and dest.resolve() in record.path.parents
    reasons = {s.path.as_posix(): s.reason for s in scan.skipped}
    assert reasons["photos/city/notes.txt"] == "not an image file: extension '.txt'"
    assert reasons["photos/city/inner.zip"] == "nested archive: ignored"
    assert reasons["photos/city/gray.png"].startswith("grayscale")
    assert len(reasons) == 3  # hidden files and __MACOSX are ignored silently
    assert not (dest / "city" / "notes.txt").exists()
    assert scan.extracted_bytes == sum(len(d) for n, d in members[1:5])


def test_flat_zip_is_uncategorised_and_file_objects_work(tmp_path):
    archive = _zip(tmp_path / "flat.zip", [("a.jpg", _jpeg(seed=1)), ("b.jpg", _jpeg(seed=2))])
    with archive.open("rb") as upload:
        scan = read_zip(upload, tmp_path / "out")
    assert scan.wrapper is None and scan.categories == []
    assert [(r.member, r.category) for r in scan.records] == [("a.jpg", None), ("b.jpg", None)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.jpg", "'..'"),
        ("photos/../../evil.jpg", "'..'"),
        ("/abs.jpg", "absolute path"),
        ("\\abs.jpg", "absolute path"),
        ("C:/abs.jpg", "absolute path"),
        ("photos\\..\\..\\evil.jpg", "'..'"),
    ],
)
def test_unsafe_paths_are_refused(tmp_path, name, reason):
    archive = _zip(tmp_path / "bad.zip", [("photos/ok.jpg", _jpeg()), (name, _jpeg())])
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match=reason) as info:
        read_zip(archive, dest)
    assert info.value.member == name
    assert repr(name) in str(info.value)
    _nothing_outside(tmp_path, dest)


def test_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("photos/link.jpg")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "link.zip", [("photos/ok.jpg", _jpeg()), (link, b"/etc/passwd")])
    with pytest.raises(ArchiveError, match="symbolic link") as info:
        read_zip(archive, tmp_path / "out")
    assert info.value.member == "photos/link.jpg"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.jpg"))


def test_zip_bomb_is_refused(tmp_path):
    bomb = b"\x00" * (8 * 2**20)  # 8 MiB of zeros: about 1000:1
    archive = _zip(tmp_path / "bomb.zip", [("photos/ok.jpg", _jpeg()), ("photos/b.bmp", bomb)])
    assert archive.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=r"compression ratio .* zip bomb") as info:
        read_zip(archive, tmp_path / "out")
    assert info.value.member == "photos/b.bmp"


def test_many_small_members_that_add_up_to_a_bomb_are_refused_before_extracting(tmp_path):
    # Each member is under the per-member ratio check's 1 MiB; together 100 MiB of zeros
    # from an archive of about 100 KiB.
    small = b"\x00" * (2**20 - 1)
    archive = _zip(tmp_path / "many.zip", [(f"photos/{i}.bmp", small) for i in range(100)])
    assert archive.stat().st_size < 200_000
    with pytest.raises(ArchiveError, match="total uncompressed size over the limit of") as info:
        read_zip(archive, tmp_path / "out")
    assert "20 times its size" in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with archive.open("rb") as upload:  # an upload (a file object) is bounded the same way
        with pytest.raises(ArchiveError, match="total uncompressed size"):
            read_zip(upload, tmp_path / "out2")


def test_the_expansion_limit_follows_the_archive_size_and_the_settings():
    limits = ZipLimits(max_total_size=10**9, max_total_ratio=20, total_ratio_floor=1000)
    assert limits.expansion_limit(10) == 1000  # the floor: small archives of images
    assert limits.expansion_limit(10_000) == 200_000
    assert limits.expansion_limit(10**9) == 10**9  # never over the absolute limit


def test_size_and_count_limits(tmp_path):
    members = [(f"p/{i}.jpg", _jpeg(seed=i)) for i in range(5)]
    archive = _zip(tmp_path / "many.zip", members)
    with pytest.raises(ArchiveError, match="too many members: 5"):
        read_zip(archive, tmp_path / "a", limits=ZipLimits(max_members=4))
    total = sum(len(d) for _, d in members)
    with pytest.raises(ArchiveError, match="total uncompressed size"):
        read_zip(archive, tmp_path / "b", limits=ZipLimits(max_total_size=total - 1))
    assert len(read_zip(archive, tmp_path / "c", limits=ZipLimits(max_total_size=total)).records)


def test_encrypted_member_is_refused(tmp_path):
    archive = _zip(tmp_path / "enc.zip", [("p/a.jpg", _jpeg()), ("p/secret.jpg", _jpeg())])
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local = zf.getinfo("p/secret.jpg").header_offset
    # set bit 0 (encrypted) of the general-purpose flags in its local and central headers
    data[local + 6] |= 1
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # the second entry
    data[central + 8] |= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted member") as info:
        read_zip(archive, tmp_path / "out")
    assert info.value.member == "p/secret.jpg"


def test_member_yielding_more_than_declared(tmp_path):
    payload = _jpeg()
    archive = _zip(tmp_path / "lie.zip", [("p/a.jpg", payload)])
    data = bytearray(archive.read_bytes())
    # shrink the declared uncompressed size in the central directory only
    central = data.find(b"PK\x01\x02")
    declared = int.from_bytes(data[central + 24 : central + 28], "little")
    data[central + 24 : central + 28] = (declared - 10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    # zipfile stops at the declared size and then fails the CRC; read_zip also counts
    with pytest.raises(ArchiveError, match="declares|Bad CRC") as info:
        read_zip(archive, tmp_path / "out")
    assert info.value.member == "p/a.jpg"
    assert not any((tmp_path / "out").rglob("*.jpg"))


def test_not_a_zip_duplicates_and_target_checks(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError, match="not a valid zip file"):
        read_zip(junk, tmp_path / "a")
    dup = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(dup, [("p/a.jpg", _jpeg()), ("p/a.jpg", _jpeg(seed=1))])
    with pytest.raises(ArchiveError, match="duplicate path"):
        read_zip(dup, tmp_path / "b")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    good = _zip(tmp_path / "g.zip", [("a.jpg", _jpeg())])
    with pytest.raises(ValueError, match="new or empty folder"):
        read_zip(good, busy)
