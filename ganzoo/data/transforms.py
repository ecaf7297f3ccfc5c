"""Host-side image transforms, all built with albumentations.

- ``resize_center_crop``: what every loader does to a decoded image (folders in memory or streamed,
  torchvision sets): shortest side to ``size``, centre crop;
- ``resize_center_crop_pair``: the same done once to both images of a pair, through one pipeline
  with albumentations' ``additional_targets``, so the two stay aligned pixel for pixel;
- ``UserPipeline``: a user's own pipeline (``--set transform=PIPELINE.json|yaml``, written with
  albumentations' ``A.save``), applied on the host every time an image is drawn, to both images of
  a pair with the same random parameters. Each application is seeded from (run seed, epoch, item),
  so a resumed run, or a run on several processes, transforms every image exactly as one
  uninterrupted run would.

Random crops (``load_size`` -> ``size``) and flips are not here: they happen on whole batches on the
training device (``ganzoo.data.sources``). This is the only module that imports albumentations, and
so the one place that turns off its check for a newer version over the network.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ganzoo.data.decode import resize_shortest_side
from ganzoo.errors import UserError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network request on import
import albumentations as A  # noqa: E402

PAIR_TARGET = "image_b"  # the name B's image goes by in a pair's pipeline call
PIPELINE_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def _shortest_side_step(image: np.ndarray, size: int, **_params: object) -> np.ndarray:
    # A module-level function (not a lambda) so the pipeline pickles into DataLoader workers.
    return resize_shortest_side(image, size)


@functools.lru_cache(maxsize=8)
def eval_transform(size: int, paired: bool = False) -> A.Compose:
    """uint8 HWC -> uint8 ``size`` x ``size`` HWC: shortest side to ``size``, then the centre crop.

    ``paired``: the pipeline also takes ``image_b``, which gets exactly the same resize and crop.
    """
    return A.Compose(
        [
            A.Lambda(image=functools.partial(_shortest_side_step, size=size), name="shortest_side"),
            A.CenterCrop(size, size),
        ],
        additional_targets={PAIR_TARGET: "image"} if paired else None,
    )


def resize_center_crop(array: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size``, then crop the centre square: uint8 HWC -> size x size."""
    return np.ascontiguousarray(eval_transform(size)(image=array)["image"])


def resize_center_crop_pair(a: np.ndarray, b: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``resize_center_crop`` of two images of the same height and width, in one pipeline call."""
    out = eval_transform(size, paired=True)(image=a, **{PAIR_TARGET: b})
    return np.ascontiguousarray(out["image"]), np.ascontiguousarray(out[PAIR_TARGET])


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one application of a user pipeline: a function of where the item is drawn."""
    return hash((seed, epoch, index)) % 2**63


class UserPipeline:
    """A user's albumentations pipeline, applied to uint8 HWC images that must keep their shape.

    ``split``: for paired data, items hold A's channels followed by B's; the two are passed to the
    pipeline as ``image`` and ``image_b``, so every random parameter is drawn once for both.
    """

    def __init__(self, path: str | Path, split: int | None = None):
        self.path = Path(path).expanduser()
        self.split = split
        self.pipeline = read_pipeline(self.path)
        if split is not None:
            self.pipeline.add_targets({PAIR_TARGET: "image"})

    def __call__(self, item: np.ndarray, seed: int) -> np.ndarray:
        """``item`` (H, W, C) transformed with the random parameters ``seed`` gives."""
        self.pipeline.set_random_seed(seed)
        if self.split is None:
            out = self.pipeline(image=item)["image"]
        else:
            a, b = np.ascontiguousarray(item[..., : self.split]), np.ascontiguousarray(item[..., self.split :])
            both = self.pipeline(image=a, **{PAIR_TARGET: b})
            parts = [np.atleast_3d(both["image"]), np.atleast_3d(both[PAIR_TARGET])]
            if parts[0].shape[:2] != parts[1].shape[:2]:
                raise UserError(f"the pipeline {self.path} gave A and B of different sizes: use the same transforms for both")
            out = np.concatenate(parts, axis=2)
        return self.checked(np.atleast_3d(out), item.shape)

    def checked(self, out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if not isinstance(out, np.ndarray) or out.dtype != np.uint8:
            kind = getattr(out, "dtype", type(out).__name__)
            raise UserError(
                f"the pipeline {self.path} returns {kind} images, not uint8: drop Normalize/ToTensorV2 "
                "(ganzoo converts images to [-1, 1] itself)"
            )
        if out.shape != shape:
            raise UserError(
                f"the pipeline {self.path} changed an image from {shape[1]}x{shape[0]} to {out.shape[1]}x{out.shape[0]} "
                f"(or its channels): it must keep the size; ganzoo crops (load_size -> size) and flips itself"
            )
        return np.ascontiguousarray(out)


def read_pipeline(path: Path) -> A.BaseCompose:
    """The pipeline an ``A.save`` file describes, as a Compose."""
    data_format = PIPELINE_FORMATS.get(path.suffix.lower())
    if data_format is None:
        raise UserError(f"transform={path}: expected a .json or .yaml file written by albumentations' A.save")
    if not path.is_file():
        raise UserError(f"transform pipeline not found: {path}: check the path")
    try:
        pipeline = A.load(path, data_format=data_format)
    except Exception as error:  # from_dict raises many types for files it cannot rebuild
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"cannot read {path} as an albumentations pipeline ({first}): write it with A.save(A.Compose([...]), PATH)"
        ) from None
    if not isinstance(pipeline, A.BaseCompose):  # a single transform saved on its own
        pipeline = A.Compose([pipeline])
    return pipeline
