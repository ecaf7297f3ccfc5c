"""Paired data: the layouts, pairs staying pairs through everything a batch goes through, refusals
of mismatches, the built-in digit-pairs, and paired data read by plugins that take unpaired data.

Every test pair k is made so that its two images can be checked against each other: channel 0 of
both holds 20 * k everywhere (which pair), and channels 1-2 of B are 255 minus A's (so any
difference in crop offset or flip between A and B shows).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data.catalog import open_data
from ganzoo.data.digit_pairs import TEST_COUNT, make_digit_pairs
from ganzoo.data.folders import SkippedImagesWarning
from ganzoo.data.options import DataConfig
from ganzoo.data.paired import PairingIgnoredWarning
from ganzoo.data.sources import BatchStream
from ganzoo.data.streamed import make_source
from ganzoo.errors import UserError
from ganzoo.plugin import Accepts

CPU = torch.device("cpu")
PAIRED, UNPAIRED = Accepts("paired"), Accepts("unpaired")
PAIRS = 7
SIDE = 20


def pair_images(k: int, seed: int = 0, height: int = SIDE, width: int = SIDE) -> tuple[np.ndarray, np.ndarray]:
    a = np.random.default_rng(seed * 100 + k).integers(0, 256, (height, width, 3), dtype=np.uint8)
    a[..., 0] = 20 * k
    b = 255 - a
    b[..., 0] = 20 * k
    return a, b


def write_named_pairs(folder_a, folder_b, count=PAIRS, ext_b=".bmp"):
    folder_a.mkdir(parents=True)
    folder_b.mkdir(parents=True)
    for k in range(count):
        a, b = pair_images(k)
        Image.fromarray(a).save(folder_a / f"p{k}.png")
        Image.fromarray(b).save(folder_b / f"p{k}{ext_b}")  # partners match by name, not extension


def write_aligned(folder, count=PAIRS):
    folder.mkdir(parents=True)
    for k in range(count):
        Image.fromarray(np.concatenate(pair_images(k), axis=1)).save(folder / f"p{k}.png")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    write_aligned(root / "facades" / "train")
    write_named_pairs(root / "named" / "trainA", root / "named" / "trainB")
    write_named_pairs(root / "photos", root / "targets", ext_b=".tif")
    return root


def configs(root):
    return {
        "aligned ROOT/train": DataConfig(dataset=str(root / "facades")),
        "aligned folder": DataConfig(dataset=str(root / "facades" / "train")),
        "ROOT/trainA+trainB": DataConfig(dataset=str(root / "named")),
        "--data A --data-b B": DataConfig(dataset=str(root / "photos"), dataset_b=str(root / "targets")),
    }


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1) * 127.5).round().to(torch.int64)


def stream_for(cfg: DataConfig, rank: int = 0, world_size: int = 1, hflip: bool = True) -> tuple[BatchStream, list[str]]:
    """The engine's stream for ``cfg`` (crops 20 -> 16, flips) and the pair name of each item."""
    opened = open_data(cfg, PAIRED)
    source = make_source(opened.pairs, CPU, 3, hflip, rank, world_size, cfg.size, 0, 3, opened.transform)
    items = opened.pairs.items if hasattr(opened.pairs, "items") else None
    names = [pair.name for pair in items.pairs] if items is not None else opened.pairs.names
    return BatchStream(source, split=opened.info.channels), names


def assert_pairs(batch, names) -> tuple[set, set]:
    """A and B of every element are one pair, cropped and flipped alike; returns the crops and flips seen."""
    a, b = as_uint8(batch.images), as_uint8(batch.images_b)
    assert torch.equal(batch.index, batch.index_b)
    crops, flips = set(), set()
    for i, item in enumerate(batch.index.tolist()):
        k = int(names[item].removeprefix("p"))
        assert (a[i, 0] == 20 * k).all() and (b[i, 0] == 20 * k).all(), f"element {i} is not pair {names[item]}"
        assert torch.equal(b[i, 1:], 255 - a[i, 1:]), f"A and B of {names[item]} were cropped or flipped apart"
        full = torch.from_numpy(pair_images(k)[0]).permute(2, 0, 1).to(torch.int64)[1:]
        found = [(top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
                 if torch.equal((full.flip(-1) if flip else full)[:, top : top + 16, left : left + 16], a[i, 1:])]
        assert found, f"element {i} is not a 16 px crop of {names[item]}"
        crops.add(found[0][:2])
        flips.add(found[0][2])
    return crops, flips


@pytest.mark.parametrize("layout", ["aligned ROOT/train", "aligned folder", "ROOT/trainA+trainB", "--data A --data-b B"])
@pytest.mark.parametrize("stream", [False, True])
def test_pairs_stay_pairs_through_shuffle_crop_flip_and_resume(layouts, layout, stream):
    cfg = configs(layouts)[layout]
    cfg.size, cfg.load_size, cfg.stream = 16, SIDE, stream
    stream_a, names = stream_for(cfg)
    assert sorted(names) == [f"p{k}" for k in range(PAIRS)]
    crops, flips, orders = set(), set(), []
    for _ in range(4):  # 12 items: the second epoch's order differs from the first
        batch = stream_a.next(3)
        orders.append(batch.index.tolist())
        seen = assert_pairs(batch, names)
        crops |= seen[0]
        flips |= seen[1]
    assert len(crops) > 1 and flips == {False, True}, "crops and flips must actually vary"
    assert sorted(orders[0] + orders[1][:1]) != list(range(4))  # shuffled
    saved = stream_a.state_dict()
    expected = [stream_a.next(3) for _ in range(3)]
    resumed, _ = stream_for(cfg)
    resumed.load_state_dict(saved)
    for want in expected:
        got = resumed.next(3)
        assert torch.equal(got.index, want.index) and torch.equal(got.images, want.images)
        assert torch.equal(got.images_b, want.images_b)
        assert_pairs(got, names)


def test_ranks_take_disjoint_shares_of_pairs_with_one_cursor(layouts):
    cfg = configs(layouts)["aligned ROOT/train"]
    cfg.size, cfg.load_size = 16, SIDE
    shares = []
    for rank in range(2):
        ranked, names = stream_for(cfg, rank=rank, world_size=2)
        batch = ranked.next(3)  # 7 pairs over 2 ranks: 3 each per epoch
        assert_pairs(batch, names)
        shares.append(set(batch.index.tolist()))
        assert set(ranked.state_dict()) == {"a", "b"} and ranked.state_dict()["b"] is None  # one cursor
    assert not shares[0] & shares[1] and len(shares[0] | shares[1]) == 6


def test_direction_btoa_swaps_the_sides(layouts):
    cfg = configs(layouts)["aligned folder"]
    forward = open_data(cfg, PAIRED)
    cfg.direction = "BtoA"
    backward = open_data(cfg, PAIRED)
    assert torch.equal(backward.a.images, forward.b.images) and torch.equal(backward.b.images, forward.a.images)
    with pytest.raises(UserError, match="direction=BtoA chooses the input side of paired data"):
        open_data(DataConfig(dataset="digit-styles", direction="BtoA"), UNPAIRED)


def test_data_info_describes_paired_data(layouts):
    opened = open_data(DataConfig(dataset=str(layouts / "named"), channels=1, size=16, load_size=SIDE), PAIRED)
    info = opened.info
    assert (info.kind, info.channels, info.channels_b, info.size, info.num_images, info.num_images_b) == (
        "paired", 1, 1, 16, PAIRS, PAIRS)
    assert opened.pairs.images.shape == (PAIRS, 2, SIDE, SIDE)


# --- mismatches are refused ------------------------------------------------------------------------


def one_line_error(cfg, accepts=PAIRED) -> str:
    with pytest.raises(UserError) as caught:
        open_data(cfg, accepts)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_name_on_one_side_only_is_refused_naming_the_file(tmp_path):
    write_named_pairs(tmp_path / "A", tmp_path / "B")
    (tmp_path / "B" / "p3.bmp").rename(tmp_path / "B" / "q3.bmp")
    message = one_line_error(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B")))
    assert "p3" in message and "q3" in message and "by name" in message


def test_different_counts_are_refused_naming_the_extra_files(tmp_path):
    write_named_pairs(tmp_path / "A", tmp_path / "B")
    (tmp_path / "B" / "p5.bmp").unlink()
    message = one_line_error(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B")))
    assert f"({PAIRS} images)" in message and f"({PAIRS - 1} images)" in message and "p5" in message


def test_a_side_by_side_image_that_is_not_twice_as_wide_is_refused(tmp_path):
    write_aligned(tmp_path / "train")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "train" / "odd.png")
    message = one_line_error(DataConfig(dataset=str(tmp_path)))
    assert "odd.png (30x20)" in message and "twice" in message


def test_two_files_with_one_name_are_ambiguous(tmp_path):
    write_named_pairs(tmp_path / "A", tmp_path / "B")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "A" / "p1.jpg")
    assert "p1.jpg" in one_line_error(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B")))


def test_pairs_of_different_resolutions_are_scaled_and_different_views_refused(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(tmp_path / "A" / "big.png")
    Image.fromarray(np.full((20, 20, 3), 100, np.uint8)).save(tmp_path / "B" / "big.png")
    opened = open_data(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B"), size=16), PAIRED)
    assert (opened.a.images == 200).all() and (opened.b.images == 100).all()
    Image.fromarray(np.full((20, 30, 3), 100, np.uint8)).save(tmp_path / "B" / "big.png")
    assert "same view" in one_line_error(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B")))


def test_unreadable_pairs_are_skipped_or_refused_when_strict(tmp_path):
    write_named_pairs(tmp_path / "A", tmp_path / "B")
    (tmp_path / "B" / "p2.bmp").write_bytes(b"not an image")
    cfg = DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B"), size=16)
    with pytest.warns(SkippedImagesWarning, match="skipped 1 of 7 pairs"):
        opened = open_data(cfg, PAIRED)
    assert len(opened.pairs) == PAIRS - 1 and "p2" not in opened.pairs.names
    cfg.strict = True
    assert "p2.bmp" in one_line_error(cfg)


def test_data_without_pairs_is_refused_for_a_paired_plugin(tmp_path):
    for name in ("digit-styles", "digits", "mnist"):
        assert "holds no pairs" in one_line_error(DataConfig(dataset=name))
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "square.png")  # one loose image
    assert "not side-by-side" in one_line_error(DataConfig(dataset=str(tmp_path)))
    (tmp_path / "square.png").unlink()
    (tmp_path / "sub").mkdir()
    assert "not a paired dataset" in one_line_error(DataConfig(dataset=str(tmp_path)))


# --- paired data for plugins that take unpaired data -------------------------------------------------


def test_side_by_side_pairs_are_refused_for_an_unpaired_plugin(layouts):
    message = one_line_error(DataConfig(dataset=str(layouts / "facades")), UNPAIRED)
    assert "side-by-side pairs" in message and "pix2pix" in message


def test_an_unpaired_plugin_says_in_one_line_that_it_ignores_the_pairing(layouts, tmp_path):
    with pytest.warns(PairingIgnoredWarning) as caught:
        opened = open_data(DataConfig(dataset=str(layouts / "named"), size=16), UNPAIRED)
    assert len(caught) == 1 and "\n" not in str(caught[0].message) and "pair up by name" in str(caught[0].message)
    assert opened.info.kind == "unpaired" and opened.pairs is None
    with pytest.warns(PairingIgnoredWarning, match="digit-pairs is paired data"):
        opened = open_data(DataConfig(dataset="digit-pairs"), UNPAIRED)
    assert (opened.info.kind, opened.info.num_images, opened.info.num_images_b) == ("unpaired", 4800, 4800)
    write_named_pairs(tmp_path / "A", tmp_path / "B")
    (tmp_path / "B" / "p0.bmp").rename(tmp_path / "B" / "other.bmp")  # not pairs: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error", PairingIgnoredWarning)
        open_data(DataConfig(dataset=str(tmp_path / "A"), dataset_b=str(tmp_path / "B")), UNPAIRED)


# --- the built-in digit-pairs --------------------------------------------------------------------------


def test_digit_pairs_are_edges_and_styled_digits_with_a_fixed_held_out_split():
    pairs = make_digit_pairs(16)
    assert pairs.train_a.shape == (5000 - TEST_COUNT, 16, 16, 3) and pairs.test_b.shape == (TEST_COUNT, 16, 16, 3)
    assert make_digit_pairs(16) is pairs and not pairs.test_a.flags.writeable  # cached, read-only
    edges, styled = pairs.train_a.astype(int), pairs.train_b.astype(int)
    assert np.median(edges) == 0 and edges.max() == 255  # white edges on black
    assert (edges[..., 0] == edges[..., 1]).all() and np.median(styled[..., 0]) > 200  # grey; light background
    # The split is disjoint: no held-out edge map appears among the training ones.
    train = {image.tobytes() for image in pairs.train_a}
    assert not any(image.tobytes() in train for image in pairs.test_a)
    opened = open_data(DataConfig(dataset="digit-pairs", size=16), PAIRED)
    assert np.array_equal(opened.a.images.permute(0, 2, 3, 1).numpy(), pairs.train_a)
    assert np.array_equal(opened.b.images.permute(0, 2, 3, 1).numpy(), pairs.train_b)
    assert opened.info.name == "digit-pairs" and opened.info.kind == "paired"
    with pytest.raises(UserError, match="a paired A/B dataset"):
        open_data(DataConfig(dataset="digit-pairs"), Accepts("images"))
