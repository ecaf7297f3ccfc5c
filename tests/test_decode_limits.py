"""Decoding is bounded: a small file that claims a huge image is refused before it is decoded,
and an image bigger than the caller needs is reduced while decoding."""

import struct
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganzoo.data import decode
from ganzoo.data.decode import ImageDecodeError, load_image
from ganzoo.data.folders import SkippedImagesWarning, load_folder
from ganzoo.data.transforms import resize_center_crop


def write_flat_png(path, width, height):
    """A one-colour grayscale PNG streamed row by row: a few hundred KB for 12000 x 12000,
    without ever holding the image."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width  # filter byte "none", then mid-grey pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return write_flat_png(tmp_path_factory.mktemp("bomb") / "huge.png", 12000, 12000)


def test_a_huge_image_in_a_small_file_is_refused_in_one_line_without_pillows_warning(bomb):
    assert bomb.stat().st_size < 1_000_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageDecodeError) as err:
            load_image(bomb, 3, draft_size=64)
    assert not caught  # no raw DecompressionBombWarning
    message = str(err.value)
    assert str(bomb) in message and "12000x12000 = 144,000,000 pixels" in message
    assert f"limit of {decode.MAX_PIXELS:,} per image" in message and "\n" not in message


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from Linux's /proc")
def test_refusing_it_keeps_memory_flat(bomb):
    # A fresh process, so the peak resident size (VmHWM, which starts afresh at exec, unlike
    # ru_maxrss) is this decode's alone; decoding it would take 144 MB as grayscale, 432 MB as RGB.
    script = textwrap.dedent(
        f"""
        import re
        from ganzoo.data.decode import ImageDecodeError, load_image
        peak = lambda: int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
        before = peak()
        try:
            load_image({str(bomb)!r}, 3)
        except ImageDecodeError:
            pass
        print((peak() - before) * 1024)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 32 * 2**20


def test_a_folder_skips_it_and_names_it(bomb, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "huge.png").symlink_to(bomb)
    for i in range(2):
        Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.warns(SkippedImagesWarning, match=r"skipped 1 of 3 .*huge.png.*144,000,000 pixels"):
        images = load_folder(folder, 16, 3)
    assert images.images.shape == (2, 3, 16, 16)


def test_a_big_jpeg_decodes_small_through_draft_mode(tmp_path, monkeypatch):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).save(photo)
    monkeypatch.setattr(decode, "MAX_PIXELS", 1_000_000)  # the photo has 3 million
    small = load_image(photo, 3, draft_size=64)  # DCT-scaled to 1/8 while decoding, then reduced
    assert 64 <= min(small.shape[:2]) < 128
    with pytest.raises(ImageDecodeError, match="2000x1500 = 3,000,000 pixels, over the limit of 1,000,000"):
        load_image(photo, 3)  # at full size it is over the limit


def test_other_formats_are_reduced_by_a_whole_factor_before_conversion(tmp_path):
    y, x = np.mgrid[0:600, 0:800] / 200.0
    smooth = [np.sin(x + y), np.cos(x - y), np.sin(x * y / 4)]  # a photo's detail is mostly coarse
    picture = np.rint(127.5 + 127.5 * np.stack(smooth, axis=-1)).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "big.png")
    reduced = load_image(tmp_path / "big.png", 3, draft_size=100)
    assert reduced.shape == (100, 133, 3)  # factor 6, whole boxes only
    full = load_image(tmp_path / "big.png", 3)
    assert full.shape == (600, 800, 3)
    assert np.array_equal(reduced, np.asarray(Image.fromarray(full).reduce(6, box=(0, 0, 798, 600))))
    # The same picture at the training size either way (box, then area filter).
    difference = resize_center_crop(reduced, 64).astype(int) - resize_center_crop(full, 64).astype(int)
    assert np.abs(difference).mean() < 2


def test_palette_images_are_not_averaged(tmp_path):
    stripes = np.zeros((400, 400), dtype=np.uint8)
    stripes[:, ::2] = 1
    palette = Image.fromarray(stripes, mode="P")
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(tmp_path / "stripes.png")
    colours = {tuple(c) for c in load_image(tmp_path / "stripes.png", 3, draft_size=50).reshape(-1, 3)}
    assert colours == {(255, 0, 0), (0, 0, 255)}  # index averaging would have invented colours
