"""Streaming from disk for folders too large to decode into memory at once."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from ganzoo.data.decode import A, ImageDecodeError, load_image
from ganzoo.data.folders import SkippedImagesWarning, index_folder, unreadable_file_error
from ganzoo.data.imageset import uint8_to_float
from ganzoo.errors import UserError

NO_LABEL = -1  # label of every item of an unlabelled folder (the collate step cannot batch None)


class FolderDataset(Dataset):
    """Images decoded per item: (float32 CHW in [-1, 1], int label).

    `transform` is an albumentations pipeline from uint8 HWC to uint8 HWC, such as
    `decode.train_transform` or `decode.eval_transform`. An unreadable file is replaced by the
    next readable one (so batches keep their size) and counted in `skipped`; with `strict`
    it raises UserError instead.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int] | None,
        transform: A.Compose,
        channels: int,
        strict: bool = False,
        class_names: list[str] | None = None,
    ):
        if not paths:
            raise UserError("FolderDataset needs at least one image path")
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"{len(labels)} labels for {len(paths)} paths")
        self.paths = list(paths)
        self.labels = list(labels) if labels is not None else None
        self.class_names = class_names
        self.transform = transform
        self.channels = channels
        self.strict = strict
        # Shared memory so DataLoader workers add to the count the main process reads.
        self._skipped = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._unreadable: set[int] = set()  # per process: known bad files are not decoded again

    @classmethod
    def from_folder(
        cls, path: str | Path, transform: A.Compose, channels: int, strict: bool = False
    ) -> FolderDataset:
        """Same layout rules as load_folder: class subfolders give labels, else a flat folder."""
        index = index_folder(path)
        return cls(index.paths, index.labels, transform, channels, strict, index.class_names)

    @property
    def skipped(self) -> int:
        """Unreadable files met so far, counted once per process (main or worker) that met them."""
        return int(self._skipped.item())

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0

    def seed_augmentations(self, seed: int) -> None:
        """Seed the transform's own RNG (albumentations ignores the global random seeds)."""
        self.transform.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for offset in range(len(self.paths)):
            candidate = (index + offset) % len(self.paths)
            if candidate in self._unreadable:
                continue
            try:
                array = load_image(self.paths[candidate], self.channels)
            except ImageDecodeError as err:
                if self.strict:
                    raise unreadable_file_error(err) from err
                self._mark_unreadable(candidate, err)
                continue
            image = self.transform(image=array)["image"]
            chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            label = self.labels[candidate] if self.labels is not None else NO_LABEL
            return uint8_to_float(chw), label
        raise UserError(f"none of the {len(self.paths)} images could be read: check the files")

    def _mark_unreadable(self, index: int, err: ImageDecodeError) -> None:
        if not self._unreadable:
            message = f"skipping unreadable images (first: {err})"
            warnings.warn(message, SkippedImagesWarning, stacklevel=3)
        self._unreadable.add(index)
        self._skipped += 1


def _init_worker(worker_id: int) -> None:
    # OpenCV's own thread pool in every worker would oversubscribe the CPU cores.
    cv2.setNumThreads(0)
    info = get_worker_info()
    # Forked workers inherit one copy of the augmentation RNG; without reseeding, every
    # worker would apply the same crops and flips. info.seed derives from the loader's generator.
    if hasattr(info.dataset, "seed_augmentations"):
        info.dataset.seed_augmentations(info.seed % 2**32)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    seed: int,
    shuffle: bool = True,
    pin_memory: bool = False,
    drop_last: bool = True,
) -> DataLoader:
    """A reproducible DataLoader: seeded order and augmentations, persistent prefetching workers.

    When torch.distributed is initialised each rank reads its own shard through a
    DistributedSampler; call `loader.sampler.set_epoch(epoch)` every epoch to reshuffle.
    """
    sampler = None
    if dist.is_available() and dist.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    items = len(sampler) if sampler is not None else len(dataset)
    if drop_last and items < batch_size:
        raise UserError(
            f"{items} images are fewer than one batch of {batch_size}: "
            "lower the batch size or add images"
        )
    if workers == 0 and hasattr(dataset, "seed_augmentations"):
        dataset.seed_augmentations(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_init_worker if workers > 0 else None,
    )
