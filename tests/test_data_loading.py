"""Decoding, folder loading and torchvision sets; every file is made here at run time (streamed
folders: test_fast_paths.py)."""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data.decode import ImageDecodeError, load_image, resize_shortest_side
from ganzoo.data.folders import (
    SkippedImagesWarning,
    index_folder,
    load_folder,
    load_unpaired,
    resolve_unpaired_root,
    scan_images,
)
from ganzoo.data.imageset import ImageSet
from ganzoo.data.torchvision_sets import load_torchvision
from ganzoo.data.transforms import resize_center_crop
from ganzoo.errors import UserError


def save_gray(path, value, size=(12, 10)):
    Image.new("L", size, value).save(path)
    return path


def save_noise_png(path, size=16, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


# --- decoding -------------------------------------------------------------------------------


def test_grayscale_to_one_and_three_channels(tmp_path):
    path = save_gray(tmp_path / "g.png", 77)
    gray = load_image(path, 1)
    rgb = load_image(path, 3)
    assert gray.shape == (10, 12, 1) and gray.dtype == np.uint8
    assert rgb.shape == (10, 12, 3)
    assert (gray == 77).all() and (rgb == 77).all()


def test_rgb_to_gray_uses_luma(tmp_path):
    pixels = save_noise_png(tmp_path / "c.png")
    assert np.array_equal(load_image(tmp_path / "c.png", 3), pixels)
    expected = np.asarray(Image.fromarray(pixels).convert("L"))
    assert np.array_equal(load_image(tmp_path / "c.png", 1)[:, :, 0], expected)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # invisible red
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", 3).astype(int)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [255, 0, 0]
    assert np.all(np.abs(out[1, 0] - 127) <= 1)


def test_la_is_composited_on_white(tmp_path):
    la = np.array([[[0, 0], [0, 255]]], dtype=np.uint8)  # black transparent, black opaque
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png", 1)
    assert out.shape == (1, 2, 1)
    assert out[0, :, 0].tolist() == [255, 0]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 2), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (2, 0, 4, 2))  # right half uses palette entry 1 (red)
    img.save(tmp_path / "p.png", transparency=0)  # entry 0 (black) is transparent
    assert Image.open(tmp_path / "p.png").mode == "P"
    out = load_image(tmp_path / "p.png", 3)
    assert (out[:, :2] == 255).all()
    assert (out[:, 2:] == [255, 0, 0]).all()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 30000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    out = load_image(tmp_path / "deep.png", 1)[0, :, 0]
    assert out.tolist() == [0, 100, round(30000 / 257), 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "k.jpg", quality=100)
    out = load_image(tmp_path / "k.jpg", 3).astype(int)
    assert out.shape == (16, 16, 3)
    assert np.all(np.abs(out[8, 8] - [255, 0, 0]) <= 8)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :16] = (255, 0, 0)  # left half red
    pixels[:, 16:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg", 3).astype(int)
    assert out.shape == (32, 16, 3)  # width and height swapped
    assert np.all(np.abs(out[4, 8] - [255, 0, 0]) <= 30)  # the left edge is now on top
    assert np.all(np.abs(out[28, 8] - [0, 0, 255]) <= 30)


def test_corrupt_truncated_and_non_image_files_raise(tmp_path):
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(1).bytes(300))
    save_noise_png(tmp_path / "whole.png", size=64)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("not an image")
    for name in ("noise.png", "cut.png", "notes.jpg", "absent.png"):
        with pytest.raises(ImageDecodeError, match=name) as caught:
            load_image(tmp_path / name, 3)
        assert isinstance(caught.value, UserError)
        assert caught.value.path == tmp_path / name


def test_channels_must_be_one_or_three(tmp_path):
    with pytest.raises(ValueError, match="channels"):
        load_image(save_gray(tmp_path / "g.png", 0), 2)


# --- resizing and pipelines -----------------------------------------------------------------


def test_resize_center_crop_scales_the_short_side_and_crops_the_centre():
    rng = np.random.default_rng(2)
    # 103 -> 16 is a ratio where int(side * scale) falls one pixel short of the crop size.
    for shape in [(40, 60, 3), (103, 150, 1), (9, 7, 3), (16, 16, 1)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        cropped = resize_center_crop(image, 16)
        assert cropped.shape == (16, 16, shape[2]) and cropped.dtype == np.uint8
        short = resize_shortest_side(image, 16)
        top, left = (short.shape[0] - 16) // 2, (short.shape[1] - 16) // 2
        assert np.array_equal(cropped, short[top : top + 16, left : left + 16])
    square = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(resize_center_crop(square, 16), square)


def test_center_crop_keeps_the_middle():
    image = np.zeros((8, 16, 1), dtype=np.uint8)
    image[:, 4:12] = 255  # the central square
    assert (resize_center_crop(image, 8) == 255).all()


# --- folders --------------------------------------------------------------------------------


def test_scan_errors_name_the_path(tmp_path):
    with pytest.raises(UserError, match=f"not found: {re.escape(str(tmp_path / 'nope'))}"):
        scan_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    empty = re.escape(str(tmp_path / "empty"))
    with pytest.raises(UserError, match=f"no images found in {empty}: expected .*png"):
        scan_images(tmp_path / "empty")
    with pytest.raises(UserError, match="not a folder"):
        scan_images(tmp_path / "empty" / "readme.txt")


def test_scan_is_sorted_skips_hidden_and_recurses_on_request(tmp_path):
    for name in ("b.png", "a.JPG", "._a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"x")
    assert [p.name for p in scan_images(tmp_path)] == ["a.JPG", "b.png"]
    assert [p.name for p in scan_images(tmp_path, recursive=True)] == ["a.JPG", "b.png", "d.png"]


def test_load_flat_folder(tmp_path):
    for i in range(3):
        Image.new("RGB", (20, 12), (i * 100, 0, 0)).save(tmp_path / f"{i}.png")
    images = load_folder(tmp_path, size=8, channels=3)
    assert images.images.shape == (3, 3, 8, 8) and images.images.dtype == torch.uint8
    assert images.labels is None and images.class_names is None and images.num_classes == 0
    assert images.images[:, 0, 4, 4].tolist() == [0, 100, 200]
    assert str(tmp_path) in images.source


def test_unreadable_files_are_skipped_with_one_warning(tmp_path):
    for i in range(3):
        save_gray(tmp_path / f"good{i}.png", 10 * i)
    (tmp_path / "bad1.png").write_bytes(b"garbage")
    (tmp_path / "bad2.jpg").write_text("also garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_folder(tmp_path, size=4, channels=1)
    skipped = [w for w in caught if issubclass(w.category, SkippedImagesWarning)]
    assert len(skipped) == 1
    assert "skipped 2 of 5" in str(skipped[0].message)
    assert str(tmp_path / "bad1.png") in str(skipped[0].message)
    assert images.images.shape == (3, 1, 4, 4)
    assert images.images[:, 0, 0, 0].tolist() == [0, 10, 20]


def test_strict_raises_on_first_bad_file(tmp_path):
    save_gray(tmp_path / "a.png", 0)
    (tmp_path / "b.png").write_bytes(b"garbage")
    (tmp_path / "c.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="b.png"):
        load_folder(tmp_path, size=4, channels=1, strict=True)


def test_all_files_unreadable_is_an_error(tmp_path):
    (tmp_path / "b.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="none of the 1 images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_folder(tmp_path, size=4, channels=1)


def test_class_subfolders_give_labels(tmp_path):
    for class_name, value, count in (("white", 255, 2), ("black", 0, 3)):
        (tmp_path / class_name / "nested").mkdir(parents=True)
        for i in range(count - 1):
            save_gray(tmp_path / class_name / f"{i}.png", value)
        save_gray(tmp_path / class_name / "nested" / "deep.png", value)  # class folders recurse
    images = load_folder(tmp_path, size=4, channels=3)
    assert images.class_names == ["black", "white"]
    assert images.num_classes == 2
    assert images.labels.tolist() == [0, 0, 0, 1, 1]
    assert images.labels.dtype == torch.int64
    assert images.images[:, :, 0, 0].tolist() == [[0] * 3] * 3 + [[255] * 3] * 2


def test_loose_images_make_a_flat_folder_and_empty_class_folders_fail(tmp_path):
    (tmp_path / "flat" / "ignored").mkdir(parents=True)
    save_gray(tmp_path / "flat" / "a.png", 0)
    save_gray(tmp_path / "flat" / "ignored" / "b.png", 0)
    index = index_folder(tmp_path / "flat")
    assert [p.name for p in index.paths] == ["a.png"] and index.labels is None
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    (tmp_path / "classes" / "dog").mkdir()
    save_gray(tmp_path / "classes" / "cat" / "a.png", 0)
    dog = re.escape(str(tmp_path / "classes" / "dog"))
    with pytest.raises(UserError, match=f"class folder {dog} holds no images"):
        index_folder(tmp_path / "classes")


def test_unpaired_layout(tmp_path):
    for folder in ("trainA", "trainB", "testA"):
        (tmp_path / folder).mkdir()
    save_gray(tmp_path / "trainA" / "a.png", 0)
    save_gray(tmp_path / "trainB" / "b1.png", 255)
    save_gray(tmp_path / "trainB" / "b2.png", 255)
    path_a, path_b = resolve_unpaired_root(tmp_path)
    assert (path_a, path_b) == (tmp_path / "trainA", tmp_path / "trainB")
    domain_a, domain_b = load_unpaired(path_a, path_b, size=4, channels=3, strict=True)
    assert domain_a.images.shape == (1, 3, 4, 4) and domain_b.images.shape == (2, 3, 4, 4)
    assert int(domain_a.images.max()) == 0 and int(domain_b.images.min()) == 255
    expected = r"expected subfolders testA/ and testB/ \(missing: testB\)"
    with pytest.raises(UserError, match=expected):
        resolve_unpaired_root(tmp_path, split="test")


# --- torchvision datasets -------------------------------------------------------------------


def write_idx(path, array):
    dims = struct.pack(">" + "I" * array.ndim, *array.shape)
    header = struct.pack(">HBB", 0, 0x08, array.ndim)  # zero, uint8 type code, rank
    path.write_bytes(header + dims + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root, folder="MNIST"):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return images, labels


def test_mnist_idx_files_through_torchvision(tmp_path):
    images, labels = write_tiny_mnist(tmp_path)
    native = load_torchvision("mnist", tmp_path, size=28, channels=1, download=False)
    assert native.images.shape == (5, 1, 28, 28)
    assert torch.equal(native.images[:, 0], torch.from_numpy(images))
    assert native.labels.tolist() == labels.tolist()
    assert native.class_names[3] == "3 - three" and native.num_classes == 10
    resized = load_torchvision("mnist", tmp_path, size=32, channels=3, train=False)
    assert resized.images.shape == (5, 3, 32, 32)
    assert torch.equal(resized.images[:, 0], resized.images[:, 2])


def test_fashion_mnist_uses_its_own_folder_and_names(tmp_path):
    write_tiny_mnist(tmp_path, folder="FashionMNIST")
    images = load_torchvision("fashion-mnist", tmp_path, size=28, channels=1)
    assert images.class_names[0] == "T-shirt/top" and len(images) == 5


def test_cifar10_batches_through_torchvision(tmp_path, monkeypatch):
    # The real batch files are checked against their md5 sums, which a tiny copy cannot match.
    monkeypatch.setattr(
        "torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path)
    )
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(5)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = rng.integers(0, 256, (2, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": batches[name], "labels": [7, 2]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    color = load_torchvision("cifar10", tmp_path, size=32, channels=3)
    assert color.images.shape == (10, 3, 32, 32)
    assert torch.equal(color.images[0].flatten(), torch.from_numpy(batches["data_batch_1"][0]))
    assert color.labels.tolist() == [7, 2] * 5 and color.class_names[7] == "class7"
    gray = load_torchvision("cifar10", tmp_path, size=16, channels=1, train=False)
    assert gray.images.shape == (2, 1, 16, 16)
    first = batches["test_batch"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    luma = np.asarray(Image.fromarray(first).convert("L"))[:, :, None]
    assert np.array_equal(gray.images[0, 0].numpy(), resize_center_crop(luma, 16)[:, :, 0])


def test_missing_torchvision_files_say_where_to_put_them(tmp_path):
    mnist_folder = re.escape(str(tmp_path / "MNIST" / "raw"))
    with pytest.raises(UserError, match=mnist_folder + ".*--download"):
        load_torchvision("mnist", tmp_path, size=28, channels=1, download=False)
    cifar_folder = re.escape(str(tmp_path / "cifar-10-batches-py"))
    with pytest.raises(UserError, match=cifar_folder + ".*--download"):
        load_torchvision("cifar10", tmp_path, size=32, channels=3, download=False)
    with pytest.raises(UserError, match="choose one of mnist, fashion-mnist, cifar10"):
        load_torchvision("svhn", tmp_path, size=32, channels=3)


# --- ImageSet -------------------------------------------------------------------------------


def test_imageset_float_range_and_validation():
    pixels = torch.tensor([0, 255], dtype=torch.uint8).reshape(2, 1, 1, 1)
    images = ImageSet(pixels, torch.tensor([0, 2]), None, "test")
    assert images.to_float().flatten().tolist() == [-1.0, 1.0]
    assert len(images) == 2 and images.num_classes == 3 and images.channels == 1
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(pixels.float(), None, None, "test")
    with pytest.raises(ValueError, match="class names"):
        ImageSet(pixels, torch.tensor([0, 2]), ["a", "b"], "test")
