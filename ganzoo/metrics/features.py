"""Feature networks for FID/KID/IS and precision-recall: one interface, several backbones.

A feature network maps images in [-1, 1] (NCHW, 1 or 3 channels, any size) to feature vectors
(N, D). It states what it is (`name`), which weights it runs (`weights_hash`) and how it resizes
its input (`resize`), because a metric value means nothing without them. A network that can
also classify offers `logits(images)` (needed by the Inception Score).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import MissingDependencyError, UserError
from ganzoo.metrics.cache import cache_dir, file_sha256

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{INCEPTION_FILE}"
)
# torch.hub names files by the first 8 hex digits of their SHA-256.
INCEPTION_SHA256_PREFIX = "6726825d"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class FeatureNet(Protocol):
    name: str
    weights_hash: str
    resize: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


def has_logits(net: FeatureNet) -> bool:
    return callable(getattr(net, "logits", None))


@torch.no_grad()
def embed(fn, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Apply `fn` (a feature net or its `logits`) batch by batch; float64 (N, D) on the CPU."""
    starts = range(0, len(images), batch_size)
    outputs = [fn(images[i : i + batch_size]).float().cpu() for i in starts]
    return torch.cat(outputs).double().numpy()


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise UserError(
            "images must be a float tensor shaped (N, C, H, W) in [-1, 1]; got "
            f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
        )
    if images.shape[1] not in (1, 3):
        raise UserError(f"images must have 1 or 3 channels; got {images.shape[1]}")


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grayscale to RGB by repetition; RGB to grayscale with ITU-R 601 luma weights."""
    check_images(images)
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    luma = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * luma).sum(dim=1, keepdim=True)


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights(model: nn.Module, path: Path, what: str, assign: bool = False) -> None:
    """Strictly load a state dict; `assign` adopts the file's tensors (for models built on "meta")."""
    try:
        model.load_state_dict(load_state_dict_file(path), assign=assign)
    except (RuntimeError, ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UserError(
            f"{path} does not hold {what} weights ({first_line}): pass the right file"
        ) from None


def state_dict_sha256(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def detach_head(model: nn.Module) -> nn.Linear:
    """Replace the model's last `nn.Linear` (its classifier) with an identity and return it,
    so the model yields penultimate features and the head turns them into logits."""
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserError(f"{type(model).__name__} has no linear classifier head: pick another model")
    parent_name, _, child_name = linears[-1].rpartition(".")
    parent = model.get_submodule(parent_name)
    head = getattr(parent, child_name)
    setattr(parent, child_name, nn.Identity())
    return head


def _freeze(module: nn.Module) -> None:
    module.eval()
    module.requires_grad_(False)


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class InceptionFeatures(nn.Module):
    """The FID Inception network (pt_inception-2015-12-05, the TensorFlow FID graph ported by
    pytorch-fid and used by torch-fidelity): 2048-D pool features, 1008 logits.

    Input handling matches pytorch-fid: bilinear resize to 299x299 (align_corners=False) of
    [-1, 1] images, grayscale repeated to RGB.
    """

    resize = "bilinear-299 (pytorch-fid)"

    def __init__(self, weights_path: str | Path | None = None, allow_download: bool = False):
        super().__init__()
        path = find_inception_weights(weights_path, allow_download)
        with torch.device("meta"):  # no time spent initialising 24M parameters about to be replaced
            self.backbone = build_fid_inception()
        load_weights(self.backbone, path, "FID Inception", assign=True)
        self.weights_hash = file_sha256(path)
        self.name = "inception-v3-fid"
        if not self.weights_hash.startswith(INCEPTION_SHA256_PREFIX):
            warnings.warn(
                f"{path} is not the published {INCEPTION_FILE}: its FID values are not comparable "
                "with the literature",
                stacklevel=2,
            )
        self.head = detach_head(self.backbone)
        _freeze(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = match_channels(images, 3).to(_device_of(self))
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.backbone(x)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        # Without the bias, as the original Inception Score code and torch-fidelity compute it.
        return self(images) @ self.head.weight.T


def build_fid_inception() -> nn.Module:
    """torchvision's Inception v3 patched into the TensorFlow FID graph, with random weights."""
    try:
        from pytorch_fid import inception as fid
    except ImportError:
        raise MissingDependencyError(
            "pytorch-fid", extra="metrics", feature="the FID Inception network"
        ) from None
    import torchvision

    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    net.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid.FIDInceptionE_1(1280)
    net.Mixed_7c = fid.FIDInceptionE_2(2048)
    return net


def find_inception_weights(
    weights_path: str | Path | None = None, allow_download: bool = False
) -> Path:
    """An explicit path, else `<cache>/inception/`, else torch.hub's checkpoint folder (where
    pytorch-fid downloads it), else a download into the cache when allowed."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"FID Inception weights not found at {path}: "
                f"pass the path of {INCEPTION_FILE} ({INCEPTION_URL})"
            )
        return path
    target = cache_dir() / "inception" / INCEPTION_FILE
    for candidate in (target, Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE):
        if candidate.is_file():
            return candidate
    instructions = (
        f"download {INCEPTION_URL} and put {INCEPTION_FILE} in {target.parent}/ (or pass its path)"
    )
    if not allow_download:
        raise UserError(f"FID Inception weights not found: {instructions}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            INCEPTION_URL, str(target), hash_prefix=INCEPTION_SHA256_PREFIX
        )
    except (OSError, RuntimeError) as error:
        raise UserError(
            f"could not download the FID Inception weights ({error}): {instructions}"
        ) from None
    return target


class TorchvisionFeatures(nn.Module):
    """Penultimate features of any torchvision classification model, by name.

    Weights come from `weights_path` (a state dict: .safetensors or a torch file); without one
    the network keeps its random initialisation and `weights_hash` says so. Input: [-1, 1]
    images resized bilinearly to `input_size`, then ImageNet-normalised as torchvision expects.
    """

    def __init__(
        self, model_name: str, weights_path: str | Path | None = None, input_size: int = 224
    ):
        super().__init__()
        import torchvision

        try:
            self.backbone = torchvision.models.get_model(model_name, weights=None)
        except ValueError:
            raise UserError(
                f"unknown torchvision model '{model_name}': "
                "pick a name from torchvision.models.list_models()"
            ) from None
        if weights_path is None:
            self.weights_hash = "random-init:" + state_dict_sha256(self.backbone)
        else:
            path = Path(weights_path).expanduser()
            if not path.is_file():
                raise UserError(f"weights file not found: {path}: pass an existing state-dict file")
            load_weights(self.backbone, path, model_name)
            self.weights_hash = file_sha256(path)
        self.head = detach_head(self.backbone)
        self.name = f"torchvision-{model_name}"
        self.input_size = input_size
        self.resize = f"bilinear-{input_size}"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        _freeze(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = match_channels(images, 3).to(_device_of(self))
        side = self.input_size
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        return self.backbone(((x + 1) / 2 - self.mean) / self.std)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self(images))
