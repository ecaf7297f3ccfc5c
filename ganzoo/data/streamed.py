"""Folders too large to decode into memory: decoded per step by DataLoader workers, in the engine's order.

An in-memory dataset is one uint8 tensor on the device (``TensorSource``). A streamed folder is
only indexed; ``StreamSource`` draws the same seeded per-epoch order (``epoch_plan``), has
DataLoader workers decode the files ahead of time (prefetching, pinned memory on CUDA) and applies
flips, crops and resizing on the batch exactly as ``TensorSource`` does. Its state is the same
(epoch, cursor) pair, so a resumed run draws exactly the batches the uninterrupted run would have,
as long as it runs on the same number of processes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ganzoo.data.imageset import ImageSet
from ganzoo.data.options import DataConfig
from ganzoo.data.sources import EpochCursor, TensorSource, epoch_plan, finish_batch
from ganzoo.errors import UserError

PREFETCH_BATCHES = 4  # per worker: decoding stays this far ahead of training


class FolderItems(Dataset):
    """uint8 CHW images of a folder, decoded and resized per item as the in-memory loader does.

    An unreadable file is replaced by the next readable one (batches keep their size), with one
    SkippedImagesWarning per process; with ``strict`` it raises instead.
    """

    def __init__(self, paths: Sequence[Path], size: int, channels: int, strict: bool = False):
        self.paths, self.size, self.channels, self.strict = list(paths), size, channels, strict
        self._unreadable: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, index: int) -> np.ndarray:
        """Item ``index`` as uint8 HWC; raises ImageDecodeError for a file that cannot be read."""
        # Imported here: the engine imports this module, and OpenCV/albumentations load slowly.
        from ganzoo.data.folders import decode_file

        return decode_file(self.paths[index], self.size, self.channels)

    def __getitem__(self, index: int) -> Tensor:
        from ganzoo.data.decode import ImageDecodeError
        from ganzoo.data.folders import SkippedImagesWarning, unreadable_file_error

        for offset in range(len(self.paths)):
            candidate = (index + offset) % len(self.paths)
            if candidate in self._unreadable:
                continue
            try:
                array = self.decode(candidate)
            except ImageDecodeError as err:
                if self.strict:
                    raise unreadable_file_error(err) from err
                if not self._unreadable:
                    warnings.warn(f"skipping unreadable images (first: {err})", SkippedImagesWarning, stacklevel=2)
                self._unreadable.add(candidate)
                continue
            return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        raise UserError(f"none of the {len(self.paths)} images could be read: check the files")


class TensorItems(Dataset):
    """The items of a decoded uint8 NCHW tensor, for in-memory data drawn through a host-side pipeline."""

    def __init__(self, images: Tensor):
        self.images = images
        self.channels, self.size = int(images.shape[1]), int(images.shape[-1])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


class ChannelItems(Dataset):
    """Some channels of another set's items: one side of streamed pairs (A's channels, then B's)."""

    def __init__(self, items: Dataset, channels: slice):
        self.items, self.channel_slice = items, channels
        self.channels = len(range(*channels.indices(items.channels)))
        self.size = items.size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Tensor:
        return self.items[index][self.channel_slice]


class Transformed(Dataset):
    """Items through a user's pipeline (``ganzoo.data.transforms.UserPipeline``) with the random
    parameters that (seed, epoch, item) give, so they are the same on resume, in any worker or rank.

    It is indexed by (epoch, item) pairs, which ``_EpochOrder`` yields for it.
    """

    def __init__(self, items: Dataset, pipeline: Any, seed: int):
        self.items, self.pipeline, self.seed = items, pipeline, seed
        self.channels, self.size = items.channels, items.size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, drawn: tuple[int, int]) -> Tensor:
        from ganzoo.data.transforms import item_seed

        epoch, index = drawn
        image = self.items[index].permute(1, 2, 0).numpy()
        out = self.pipeline(image, item_seed(self.seed, epoch, index))
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


class LazyImages:
    """Stands in for a uint8 NCHW tensor: a shape, and decoding of the items indexed."""

    dtype = torch.uint8

    def __init__(self, items: Dataset):
        self.items = items
        self.shape = torch.Size((len(items), items.channels, items.size, items.size))

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return 4

    def __getitem__(self, index: Tensor | Sequence[int] | slice) -> Tensor:
        if isinstance(index, slice):
            index = range(*index.indices(len(self)))
        return torch.stack([self.items[int(i)] for i in index])

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """Every image decoded, as a tensor (for callers that treat the set as one)."""
        return self[:].to(*args, **kwargs)


@dataclass
class StreamedSet:
    """A folder indexed but not decoded; ``open_data`` returns it in place of an ``ImageSet``.

    ``items`` decode one uint8 CHW image each and say their ``channels`` and ``size`` (``FolderItems``,
    or pairs of images, or the items of a tensor when a pipeline runs on in-memory data).
    """

    items: Dataset
    labels: Tensor | None
    class_names: list[str] | None
    source: str

    @property
    def images(self) -> LazyImages:
        return LazyImages(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def channels(self) -> int:
        return self.items.channels

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0


def open_folder(path: str | Path, size: int, channels: int, cfg: DataConfig) -> ImageSet | StreamedSet:
    """A folder decoded into memory, or indexed for streaming when ``cfg.stream`` says so.

    ``stream=None`` streams when the decoded images would take more than ``stream_above_mb``.
    """
    from ganzoo.data.folders import index_folder, load_folder

    index = index_folder(path)
    decoded_mb = len(index.paths) * channels * size * size / 2**20
    stream = cfg.stream if cfg.stream is not None else decoded_mb > cfg.stream_above_mb
    if not stream:
        return load_folder(path, size, channels, cfg.strict)
    labels = torch.tensor(index.labels, dtype=torch.int64) if index.labels is not None else None
    described = f"{len(index.paths)} images, streamed"
    return StreamedSet(FolderItems(index.paths, size, channels, cfg.strict), labels, index.class_names,
                       f"folder {path} ({described})")


class _EpochOrder(Sampler):
    """This rank's items, epoch after epoch without end, starting at (epoch, cursor); with
    ``with_epoch`` as (epoch, item) pairs."""

    def __init__(self, count: int, seed: int, rank: int, world_size: int, epoch: int, cursor: int,
                 with_epoch: bool = False):
        self.count, self.seed, self.rank, self.world_size = count, seed, rank, world_size
        self.epoch, self.cursor, self.with_epoch = epoch, cursor, with_epoch

    def __iter__(self) -> Iterator[int] | Iterator[tuple[int, int]]:
        epoch, cursor = self.epoch, self.cursor
        while True:
            order, _ = epoch_plan(self.count, self.seed, epoch, False, self.rank, self.world_size)
            items = order[cursor:].tolist()
            yield from ((epoch, item) for item in items) if self.with_epoch else items
            epoch, cursor = epoch + 1, 0


def _quiet_worker(worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(0)  # one OpenCV pool per worker would oversubscribe the cores
    torch.set_num_threads(1)


class StreamSource:
    """``TensorSource``'s interface over a ``StreamedSet``: same order, flips, crops and state."""

    def __init__(
        self,
        data: StreamedSet,
        device: torch.device,
        seed: int,
        hflip: bool = False,
        rank: int = 0,
        world_size: int = 1,
        crop: int | None = None,
        workers: int = 2,
        chunk: int = 64,
        transform: Any = None,
    ):
        self.data, self.device, self.crop, self.transform = data, device, crop, transform
        self.workers, self.chunk = workers, chunk
        self.labels = data.labels.to(device) if data.labels is not None else None
        self.position = EpochCursor(len(data), seed, hflip, rank, world_size, device)
        self._decoded: Iterator[Tensor] | None = None
        self._pending = torch.empty(0, data.channels, data.items.size, data.items.size, dtype=torch.uint8)

    def __len__(self) -> int:
        return len(self.data)

    def _start(self) -> None:
        on_cuda = self.device.type == "cuda"
        where = self.position
        items = self.data.items if self.transform is None else Transformed(self.data.items, self.transform, where.seed)
        order = _EpochOrder(len(self.data), where.seed, where.rank, where.world_size, where.epoch, where.cursor,
                            with_epoch=self.transform is not None)
        loader = DataLoader(
            items,
            batch_size=self.chunk,
            sampler=order,
            num_workers=self.workers,
            pin_memory=on_cuda,
            prefetch_factor=PREFETCH_BATCHES if self.workers > 0 else None,
            worker_init_fn=_quiet_worker if self.workers > 0 else None,
            generator=torch.Generator().manual_seed(where.seed),  # leaves the training RNG untouched
        )
        self._decoded = iter(loader)
        self._pending = self._pending[:0]

    def next(self, batch_size: int, resolution: int | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """The next batch: images, labels (or None) and the items' dataset positions."""
        if self._decoded is None:
            self._start()
        crop_seed = self.position.crop_seed()
        while len(self._pending) < batch_size:
            self._pending = torch.cat([self._pending, next(self._decoded)])
        images, self._pending = self._pending[:batch_size], self._pending[batch_size:]
        index, flips = self.position.take(batch_size)
        images = finish_batch(images.to(self.device, non_blocking=True), flips, self.crop, crop_seed, resolution)
        labels = self.labels.index_select(0, index) if self.labels is not None else None
        return images, labels, index

    def state_dict(self) -> dict[str, Any]:
        return self.position.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position.load_state_dict(state)
        self._decoded = None  # restart the workers at the restored position

    def close(self) -> None:
        self._decoded = None  # drops the loader iterator, which stops its workers


def default_workers(world_size: int = 1) -> int:
    """DataLoader workers per process: half the cores this process may use, shared among the ranks,
    at least 1 and at most 8.

    Half, because training needs the other half: on a 2-core CPU two workers slowed streamed DCGAN
    training by about a quarter against in-memory data, one worker by about 3%, while still
    delivering over 30 times what training consumed (docs/benchmarks.md, "Data pipeline")."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores // (2 * max(1, world_size))))


def make_source(
    data: ImageSet | StreamedSet,
    device: torch.device,
    seed: int,
    hflip: bool,
    rank: int,
    world_size: int,
    crop: int | None,
    workers: int | None,
    batch_size: int,
    transform: Any = None,
) -> TensorSource | StreamSource:
    """The engine's batch source for one dataset: on the device when decoded, else streamed.

    With a host-side ``transform`` (``ganzoo.data.transforms.UserPipeline``) decoded data is drawn
    through DataLoader workers too, since every draw of an item transforms it anew.
    """
    if transform is not None and not isinstance(data, StreamedSet):
        if data.images.dim() != 4:
            raise UserError("transform= changes images, and this dataset holds points: drop the transform")
        data = StreamedSet(TensorItems(data.images), data.labels, getattr(data, "class_names", None), data.source)
    if isinstance(data, StreamedSet):
        count = default_workers(world_size) if workers is None else workers
        return StreamSource(data, device, seed, hflip, rank, world_size, crop, count, batch_size, transform)
    return TensorSource(data.images, data.labels, device, seed, hflip, rank, world_size, crop)
