"""Scores for a trained run or an exported ONNX generator, recorded in the run's metrics.json.

    from ganzoo.reporting.run_eval import evaluate_path
    record = evaluate_path("runs/dcgan-...", metrics=("fid", "kid", "pr", "nn"), features="digits")

A run is sampled through its plugin (``load_run(RUN).sample``), so every plugin works, third-party
ones included; its reference images are the run's own training data (domain B for unpaired
translation plugins) unless ``data`` names another set. An ONNX file is sampled with the torch-free
runtime and needs ``data``; inside RUN/exports/ it reports into that run, elsewhere into
``<model>.metrics.json`` beside the file. Each record keeps the sample source, the step, the feature network and
everything ``ganzoo.metrics.evaluate`` reports about how the numbers were made.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganzoo import files
from ganzoo.data.catalog import open_data
from ganzoo.data.image_batches import ImageBatches
from ganzoo.data.imageset import ImageSet, uint8_to_float
from ganzoo.data.options import DataConfig
from ganzoo.errors import UserError
from ganzoo.metrics.records import METRICS_FILE
from ganzoo.plugin import Accepts

if TYPE_CHECKING:
    from ganzoo.reporting.memorization import PictureSamples

# Command-line names -> ganzoo.metrics.evaluate names; the long names are accepted too.
METRIC_ALIASES = {"pr": "precision_recall", "nn": "memorization"}
DIGIT_SETS = ("digits", "digit-styles", "digit-pairs", "mnist")
# Enough real images for stable statistics at the usual sample counts without decoding a whole
# large folder into memory; the count goes into the record.
DEFAULT_REAL_LIMIT = 10_000
NN_ROWS = 8  # generated samples shown in the memorization grid
NN_NEIGHBOURS = 3
NN_KEPT = 500  # generated samples whose nearest-neighbour distances are plotted

SampleFn = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class EvalSubject:
    """What is scored: how to draw samples, the real reference images, where results go."""

    kind: str  # "run" or "onnx"
    source: Path
    sample: SampleFn  # (n, generator) -> NCHW float in [-1, 1]
    real: ImageBatches  # read batch by batch: never all in memory as floats
    dataset: str
    out_dir: Path  # receives metrics.json and the memorization pictures
    prefix: str = ""  # file-name prefix there ("" in a run folder, "<model>." beside a loose model)
    details: dict[str, Any] = field(default_factory=dict)
    plugin_scores: Callable[[], Mapping[str, float]] | None = None


def parse_metrics(text: str | Sequence[str]) -> tuple[str, ...]:
    """"fid,kid,pr,nn" -> the names ``ganzoo.metrics.evaluate`` takes."""
    from ganzoo.metrics.evaluate import METRICS

    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    resolved = [METRIC_ALIASES.get(n, n) for n in names]
    unknown = [n for n, r in zip(names, resolved) if r not in METRICS]
    if unknown or not names:
        choices = ", ".join([*METRIC_ALIASES, *METRICS])
        raise UserError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}: choose from {choices}")
    return tuple(dict.fromkeys(resolved))


def seed_from(generator: torch.Generator) -> int:
    """A seed for samplers that take one, drawn from evaluate's generator (so runs are reproducible)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


# -- subjects ------------------------------------------------------------------------------------
def reference_images(images: ImageSet, size: int, limit: int, seed: int) -> ImageBatches:
    """At most ``limit`` images of a set (a seeded subset), centre-cropped to ``size``, in [-1, 1],
    read batch by batch."""
    if limit < 2:
        raise UserError(f"the reference set needs at least 2 images; got a limit of {limit}")
    data = images.images
    if data.dim() != 4:
        raise UserError(f"{images.name} holds points, not images: image metrics need an image dataset")
    order = None
    if len(data) > limit:
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:limit]
    return ImageBatches(data, order, crop=size)


def run_subject(
    run: Path,
    data: str | None = None,
    checkpoint: Path | None = None,
    real_limit: int = DEFAULT_REAL_LIMIT,
    device: str = "cpu",
) -> EvalSubject:
    from ganzoo.api import load_run

    loaded = load_run(run, checkpoint, device=device)
    spec, plugin = loaded.spec, loaded.plugin
    if data is None:
        opened = open_data(spec.data, type(plugin).accepts, seed=spec.train.seed)
        # Unpaired translators sample domain B (A->B translations), so B is their reference.
        if opened.b is not None:
            reference, dataset = opened.b, f"{spec.data.dataset} (domain B)"
        else:
            reference, dataset = opened.a, spec.data.dataset
    else:
        other = dataclasses.replace(spec.data, dataset=data, dataset_b=None, load_size=None)
        reference, dataset = open_data(other, Accepts("images"), seed=spec.train.seed).a, data

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        images = loaded.sample(n, seed_from(generator))
        if len(images) > n:  # some plugins round up, e.g. to whole rows per class: keep a random n
            images = images[torch.randperm(len(images), generator=generator)[:n].to(images.device)]
        return images

    return EvalSubject(
        kind="run",
        source=loaded.path,
        sample=sample,
        real=reference_images(reference, loaded.data_info.size, real_limit, spec.train.seed),
        dataset=dataset,
        out_dir=loaded.path,
        details={
            "plugin": spec.plugin,
            "plugin_version": type(plugin).version,
            "step": loaded.step,
            "images_seen": loaded.images_seen,
            "checkpoint": str(checkpoint) if checkpoint else "latest",
        },
        plugin_scores=lambda: plugin.evaluate(loaded.nets, {"seed": spec.train.seed, "direction": spec.data.direction}),
    )


def model_subject(model: Path, data: str | None, real_limit: int = DEFAULT_REAL_LIMIT) -> EvalSubject:
    from ganzoo.metrics.cache import file_sha256
    from ganzoo_export.runtime import GanzooModel

    if data is None:
        raise UserError(f"evaluating {model.name} needs a reference set: pass --data (e.g. --data digits or a folder)")
    session = GanzooModel(model)
    meta = session.metadata
    if meta.task != "generate" or meta.height is None:
        raise UserError(f"{model.name} is a {meta.task} model: eval scores generators; evaluate its run folder instead")
    opened = open_data(DataConfig(dataset=data, size=meta.height, channels=meta.channels), Accepts("images"))

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        images = torch.from_numpy(session.generate(n, seed=seed_from(generator)))
        return uint8_to_float(images.permute(0, 3, 1, 2).contiguous())

    run_dir = model.resolve().parent.parent
    in_run = (run_dir / "config.json").is_file()  # RUN/exports/<model>.onnx reports into its run
    return EvalSubject(
        kind="onnx",
        source=model,
        sample=sample,
        real=reference_images(opened.a, meta.height, real_limit, 0),
        dataset=data,
        out_dir=run_dir if in_run else model.parent,
        prefix="" if in_run else f"{model.stem}.",
        details={
            "plugin": meta.plugin,
            "plugin_version": meta.plugin_version,
            "model_file": model.name,
            "model_sha256": file_sha256(model),
            "onnx_providers": list(session.providers),
        },
    )


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name} was asked for but no CUDA GPU is visible: use --device auto or cpu")
    return name


def open_subject(
    target: Path, data: str | None = None, checkpoint: Path | None = None, device: str = "auto",
    real_limit: int = DEFAULT_REAL_LIMIT,
) -> EvalSubject:
    target = Path(target)
    if target.suffix.lower() == ".onnx":
        if not target.is_file():
            raise UserError(f"no model file at {target}: pass a .onnx file written by `ganzoo export`")
        return model_subject(target, data, real_limit)
    return run_subject(target, data, checkpoint, real_limit, resolve_device(device))


# -- feature networks ----------------------------------------------------------------------------
def default_features(dataset: str) -> str:
    """The digit classifier for digit data (works offline), the FID Inception network otherwise."""
    return "digits" if dataset.split(" ")[0].lower() in DIGIT_SETS else "inception"


def feature_network(choice: str, weights: Path | None = None, download: bool = False, device: str = "auto"):
    """``inception``, ``digits`` or ``torchvision:<model name>`` (``weights``: its state dict)."""
    from ganzoo.metrics import features as feats

    if choice == "inception":
        net = feats.InceptionFeatures(weights, allow_download=download)
    elif choice == "digits":
        from ganzoo.metrics.classifier import DigitFeatures

        net = DigitFeatures()
    elif choice.startswith("torchvision:") and choice.partition(":")[2]:
        net = feats.TorchvisionFeatures(choice.partition(":")[2], weights)
    else:
        raise UserError(f"unknown feature network '{choice}': use inception, digits or torchvision:<model>, e.g. torchvision:resnet18")
    return net.to(resolve_device(device))


# -- evaluation ----------------------------------------------------------------------------------
def evaluate_subject(
    subject: EvalSubject,
    metrics: Sequence[str],
    features: str | None = None,
    weights: Path | None = None,
    download: bool = False,
    num_samples: int = 1000,
    seed: int = 0,
    nn_space: str = "features",
    device: str = "auto",
    batch_size: int = 250,
) -> dict[str, Any]:
    """Score ``subject``, append the record to its metrics.json and return it.

    With memorization among the metrics, also writes the nearest-neighbour grid and the distance
    histogram (in feature space, or in pixel space with ``nn_space="pixels"``).
    """
    from ganzoo.metrics.evaluate import MetricOptions, evaluate
    from ganzoo.reporting.memorization import PictureSamples

    metrics = parse_metrics(metrics)
    if nn_space not in ("features", "pixels"):
        raise UserError(f"nn_space must be features or pixels, got '{nn_space}'")
    net = feature_network(features or default_features(subject.dataset), weights, download, device)
    kept = PictureSamples(NN_ROWS, NN_KEPT, pixels=nn_space == "pixels")
    observers = [kept] if "memorization" in metrics else []
    results = evaluate(
        subject.sample, subject.real, list(metrics), net, num_samples, seed, reference=subject.dataset,
        options=MetricOptions(batch_size=batch_size), observers=observers,
    )
    record: dict[str, Any] = {
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "source": str(subject.source),
        "kind": subject.kind,
        **subject.details,
        "reference_set": subject.dataset,
        **results,
    }
    if subject.plugin_scores is not None:
        scores = dict(subject.plugin_scores())
        if scores:
            record["plugin_scores"] = scores
    if "memorization" in metrics:
        record["memorization_pictures"] = memorization_pictures(subject, kept, net, nn_space, seed)
    append_record(subject.out_dir / f"{subject.prefix}{METRICS_FILE}", record)
    return record


def memorization_pictures(subject: EvalSubject, kept: PictureSamples, net, nn_space: str, seed: int) -> dict[str, str]:
    """The nearest-neighbour grid and distance histogram of the samples ``kept``, in feature space (the real features come from the reference-statistics cache
    ``evaluate`` just filled) or in pixel space."""
    from ganzoo.metrics.evaluate import reference_stats
    from ganzoo.reporting.memorization import write_memorization_pictures

    if nn_space == "pixels":
        space = "pixels"
        real = torch.cat([images.flatten(1) for images in subject.real.batches(NN_KEPT)]).numpy()
    else:
        space, real = net.name, reference_stats(subject.real, net, subject.dataset).features
    pictures = write_memorization_pictures(
        kept.images, subject.real, kept.vectors, real, space, subject.out_dir, subject.prefix, NN_NEIGHBOURS, seed
    )
    return {"space": space, **{key: str(path) for key, path in pictures.items()}}


def evaluate_path(
    target: str | Path,
    metrics: Sequence[str] | str = ("fid", "kid", "pr", "nn"),
    *,
    features: str | None = None,
    weights: str | Path | None = None,
    download: bool = False,
    num_samples: int = 1000,
    seed: int = 0,
    data: str | None = None,
    checkpoint: str | Path | None = None,
    nn_space: str = "features",
    device: str = "auto",
    real_limit: int = DEFAULT_REAL_LIMIT,
    batch_size: int = 250,
) -> dict[str, Any]:
    """Evaluate a run folder or an exported .onnx generator; see the module docstring."""
    metrics = parse_metrics(metrics)
    subject = open_subject(Path(target), data, Path(checkpoint) if checkpoint else None, device, real_limit)
    return evaluate_subject(
        subject, metrics, features, Path(weights) if weights else None, download, num_samples, seed, nn_space, device,
        batch_size,
    )


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    records = json.loads(path.read_text()) if path.is_file() else []
    records.append(record)
    files.write_json(path, records)


# -- presenting ----------------------------------------------------------------------------------
