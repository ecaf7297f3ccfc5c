"""A small CNN trained on the built-in digits: the judge of generated digits and a FID feature net.

Trained weights are cached as safetensors under `<cache>/digit_classifier/`, keyed by seed, input
size and epochs, so only the first call trains (about half a minute on two CPU cores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ganzoo.errors import UserError
from ganzoo.metrics.cache import cache_dir, file_sha256
from ganzoo.metrics.features import embed, match_channels

NUM_CLASSES = 10
HELD_OUT = 500
DEFAULT_EPOCHS = 5
CONFIDENT = 0.9
# Bump when the architecture or the training recipe changes, so stale cached weights are not reused.
RECIPE = "v1"


class DigitCNN(nn.Module):
    """Three conv blocks and a 128-D embedding (the FID features) before the 10-way head."""

    def __init__(self):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.body = nn.Sequential(block(1, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(4))
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, 128), nn.ReLU(inplace=True)
        )
        self.head = nn.Linear(128, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resize_method(size: int) -> str:
    return "pad-2" if size == 32 else f"bilinear-{size}"


def prepare(images: torch.Tensor, size: int) -> torch.Tensor:
    """[-1, 1] images of any size/channels to (N, 1, size, size). 28x28 digits get a 2-px black
    border for size 32 (the classic LeNet framing); anything else is resized bilinearly."""
    x = match_channels(images, 1)
    if size == 32 and x.shape[-2:] == (28, 28):
        return F.pad(x, (2, 2, 2, 2), value=-1.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def digits_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    """The built-in digits as [-1, 1] float images (5000, 1, 28, 28) and int64 labels."""
    from ganzoo.data.digits import load_digits

    images, labels = load_digits()
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)
    return x, torch.from_numpy(labels.copy())


def split(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, held-out) indices; the file is class-sorted, so order must not decide."""
    order = np.random.default_rng(seed).permutation(count)
    return order[HELD_OUT:], order[:HELD_OUT]


def weights_file(seed: int, size: int, epochs: int) -> Path:
    name = f"digits-cnn-{RECIPE}-seed{seed}-size{size}-epochs{epochs}.safetensors"
    return cache_dir() / "digit_classifier" / name


def train_digit_classifier(
    seed: int = 0, epochs: int = DEFAULT_EPOCHS, size: int = 32
) -> tuple[DigitCNN, float]:
    """Return (model in eval mode, held-out accuracy), from the cache when trained before."""
    path = weights_file(seed, size, epochs)
    if path.is_file():
        return _load(path)
    model, accuracy = _train(seed, epochs, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    save_file(model.state_dict(), str(partial), metadata={"held_out_accuracy": repr(accuracy)})
    partial.replace(path)  # atomic: a concurrent reader never sees half a file
    return model, accuracy


def _load(path: Path) -> tuple[DigitCNN, float]:
    from safetensors import safe_open

    model = DigitCNN()
    model.load_state_dict(load_file(str(path)))
    with safe_open(str(path), framework="pt") as f:
        accuracy = float(f.metadata()["held_out_accuracy"])
    return model.eval(), accuracy


def _train(seed: int, epochs: int, size: int) -> tuple[DigitCNN, float]:
    # One thread: the weights then do not depend on the machine's thread count, and a busy
    # machine does not stall on thread synchronisation (this net is too small to gain much).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):  # seed init and dropout, leave the caller's RNG alone
            torch.manual_seed(seed)
            return _fit(seed, epochs, size)
    finally:
        torch.set_num_threads(threads)


def _fit(seed: int, epochs: int, size: int) -> tuple[DigitCNN, float]:
    images, labels = digits_tensor()
    images = prepare(images, size)
    train_idx, held_idx = split(seed, len(images))
    generator = torch.Generator().manual_seed(seed)
    # channels_last makes these small convolutions about 1.5x faster on the CPU.
    model = DigitCNN().to(memory_format=torch.channels_last)
    batch_size = 64
    steps = epochs * -(-len(train_idx) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    x_train, y_train = images[train_idx], labels[train_idx]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            x = jitter(x_train[batch], generator).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model = model.to(memory_format=torch.contiguous_format).eval()
    accuracy = float((classify(model, images[held_idx]) == labels[held_idx]).double().mean())
    return model, accuracy


def jitter(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.06) -> torch.Tensor:
    """Random shifts of up to 6% (2 px at 32x32): generated digits are rarely perfectly centred."""
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(len(x), 2, generator=generator) * 2 - 1) * max_shift * 2
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1  # shifted-in border stays black


@torch.no_grad()
def classify(
    model: DigitCNN, images: torch.Tensor, size: int = 32, batch_size: int = 500
) -> torch.Tensor:
    """Predicted labels (int64) for [-1, 1] images."""
    device = model.head.weight.device
    logits = embed(lambda x: model(prepare(x, size).to(device)), images, batch_size)
    return torch.from_numpy(logits.argmax(1))


class DigitFeatures(nn.Module):
    """The digit classifier's 128-D penultimate layer as a FID feature network for digits."""

    def __init__(self, seed: int = 0, size: int = 32, epochs: int = DEFAULT_EPOCHS):
        super().__init__()
        self.model, self.held_out_accuracy = train_digit_classifier(seed, epochs, size)
        self.model.requires_grad_(False)
        self.size = size
        self.name = f"digits-cnn-{RECIPE}-seed{seed}-size{size}-epochs{epochs}"
        self.weights_hash = file_sha256(weights_file(seed, size, epochs))
        self.resize = resize_method(size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(prepare(images, self.size).to(self.model.head.weight.device))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.head(self(images))


class DigitVerdicts:
    """How the digit classifier judges generated digits, batch by batch: per image only its
    predicted class and confidence are kept."""

    def __init__(self, features: DigitFeatures | None = None):
        self.net = features if features is not None else DigitFeatures()
        self.predicted: list[torch.Tensor] = []
        self.confidence: list[torch.Tensor] = []

    def update(self, images: torch.Tensor) -> None:
        probs = torch.from_numpy(embed(self.net.logits, images)).softmax(dim=1)
        confidence, predicted = probs.max(dim=1)
        self.confidence.append(confidence)
        self.predicted.append(predicted)

    def compute(self, requested_labels: torch.Tensor | None = None) -> dict:
        """The class histogram, the number of classes covered, the mean max-softmax confidence,
        the share classified with confidence >= 0.9 and, with `requested_labels` (one per image
        seen), the share classified as the requested class."""
        confidence, predicted = torch.cat(self.confidence), torch.cat(self.predicted)
        histogram = torch.bincount(predicted, minlength=NUM_CLASSES)
        result = {
            "num_samples": len(predicted),
            "class_histogram": histogram.tolist(),
            "classes_covered": int((histogram > 0).sum()),
            "mean_confidence": float(confidence.mean()),
            "confident_share": float((confidence >= CONFIDENT).double().mean()),
            "classifier": self.net.name,
            "classifier_weights_hash": self.net.weights_hash,
            "classifier_held_out_accuracy": self.net.held_out_accuracy,
        }
        if requested_labels is not None:
            requested = torch.as_tensor(requested_labels).long().cpu()
            if requested.shape != predicted.shape:
                raise UserError(
                    "requested_labels must hold one label per image: "
                    f"got {tuple(requested.shape)} for {len(predicted)} images"
                )
            result["requested_class_share"] = float((predicted == requested).double().mean())
        return result


def digit_quality(
    images: torch.Tensor,
    requested_labels: torch.Tensor | None = None,
    features: DigitFeatures | None = None,
) -> dict:
    """`DigitVerdicts` on one tensor of [-1, 1] images (see `DigitVerdicts.compute`)."""
    verdicts = DigitVerdicts(features)
    verdicts.update(images)
    return verdicts.compute(requested_labels)
