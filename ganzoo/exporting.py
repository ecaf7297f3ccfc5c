"""From a loaded run to ONNX files: the plugin names what to export, this writes the model card.

The run is taken as any object with the attributes ``ExportableRun`` lists (``ganzoo.api``'s
``LoadedRun`` is one), so this module never imports the api.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

import ganzoo
from ganzoo.errors import UserError
from ganzoo.files import DiskFullError, disk_full_code
from ganzoo.plugin import Accepts, DataInfo, ExportSpec
from ganzoo_export.metadata import InputSpec, ModelMetadata

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_MAX_SIZE = 512  # largest side fed to a translator at once; larger images run as tiles
CALIBRATION_COUNT = 64  # int8: inputs whose activation ranges set the quantization scales
CALIBRATION_BATCH = 8
QUALITY_COUNT = 4  # int8 translators: held-out training images the PSNR check is made on
# Options `ganzoo export` reads itself; the rest go to the plugin's exports().
CARD_OPTIONS = ("data_name", "data_license", "description")
# ExportSpec.metadata keys with a field of their own in the card; other keys go to ganzoo.extra.*
SPEC_FIELDS = ("direction", "size_multiple", "resolution", "padding_mode", "min_size", "max_size", "description")
# Licences of the datasets ganzoo knows by name (docs/data.md); folders are "unknown" unless given.
# (digit-styles is rendered from MNIST digits; CIFAR-10 states no licence.)
KNOWN_LICENSES = {
    "digits": "CC-BY-SA-3.0", "digit-styles": "CC-BY-SA-3.0", "digit-pairs": "CC-BY-SA-3.0",
    "mnist": "CC-BY-SA-3.0", "fashion-mnist": "MIT",
}


class PluginLike(Protocol):
    data: DataInfo
    accepts: Accepts
    description: str
    version: str

    def exports(self, nets: Mapping[str, nn.Module], options: Mapping[str, Any]) -> list[ExportSpec]: ...


class RunSpecLike(Protocol):
    plugin: str
    data: Any  # ganzoo.data.options.DataConfig: where the training images come from (int8 calibration)
    train: Any  # ganzoo.engine.options.TrainConfig: its seed


class ExportableRun(Protocol):
    """What exporting needs from a loaded run."""

    path: Path
    spec: RunSpecLike
    plugin: PluginLike
    nets: Mapping[str, nn.Module]
    step: int
    images_seen: int


@dataclass(frozen=True)
class CardFacts:
    """What the model card says about the run, shared by every file it exports."""

    plugin: str
    plugin_version: str
    plugin_description: str
    data: DataInfo
    data_name: str
    data_license: str
    steps: int | None
    images_seen: int | None
    evaluation: dict[str, Any] | None
    description: str | None  # the user's paragraph, instead of the written one


def export_run(run: ExportableRun, out_dir: Path, options: Mapping[str, Any]) -> list[Path]:
    from ganzoo.export.trace import export_onnx

    options = dict(options)
    precision = check_precision(str(options.pop("precision", "fp32")))
    facts = card_facts(run, {key: options.pop(key) for key in CARD_OPTIONS if key in options})
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in run.plugin.exports(run.nets, options):
        module = spec.module.cpu().eval()
        with torch.no_grad():
            output = module(*spec.example_inputs)
        metadata = metadata_for(spec, output, facts)
        parity_inputs = list(spec.parity_inputs)
        if spec.task == "translate" and metadata.min_size:
            # The smallest size the card promises is proven on the ONNX graph too.
            side = metadata.min_size
            parity_inputs.append((torch.rand(1, int(spec.example_inputs[0].shape[1]), side, side) * 2 - 1,))
        calibration, quality = calibration_feeds(run, spec) if precision == "int8" else ([], None)
        path = out_dir / f"{run.spec.plugin}-{spec.name}{'' if precision == 'fp32' else '-' + precision}.onnx"
        try:
            export_onnx(
                module,
                spec.example_inputs,
                path,
                input_names=list(spec.input_names),
                output_names=["image"],
                dynamic_axes=spec.dynamic_axes,
                metadata=metadata,
                parity_inputs=parity_inputs,
                precision=precision,
                calibration=calibration,
                quality_inputs=quality,
            )
        except Exception as exc:  # export_onnx leaves nothing at path when it fails
            code = disk_full_code(exc)
            if code is None:
                raise
            raise DiskFullError(path, code) from exc
        written.append(path)
    return written


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r} is not supported: use precision=fp32, fp16 or int8")
    return precision


# -- the model card ------------------------------------------------------------------------------
def card_facts(run: ExportableRun, given: Mapping[str, Any]) -> CardFacts:
    info = run.plugin.data
    dataset = info.name or str(getattr(run.spec.data, "dataset", ""))
    # A folder's full path would leak the exporting machine's layout into a shipped file.
    name = str(given.get("data_name") or (PurePath(dataset).name if _is_path(dataset) else dataset))
    license_ = str(given.get("data_license") or info.licence or KNOWN_LICENSES.get(dataset.lower(), "unknown"))
    return CardFacts(
        plugin=run.spec.plugin,
        plugin_version=run.plugin.version,
        plugin_description=run.plugin.description,
        data=info,
        data_name=name,
        data_license=license_,
        steps=run.step,
        images_seen=run.images_seen,
        evaluation=evaluation_at(run.path, run.step),
        description=str(given["description"]) if given.get("description") else None,
    )


def _is_path(dataset: str) -> bool:
    return "/" in dataset or "\\" in dataset or dataset.startswith(".") or Path(dataset).expanduser().exists()


def evaluation_at(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The newest `ganzoo eval` record of the run at ``step`` (headline scores), if there is one."""
    from ganzoo.metrics.records import METRICS_FILE, headline

    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged metrics file must not stop an export; the card just has no scores
    matching = [r for r in records if isinstance(r, dict) and r.get("kind") == "run" and r.get("step") == step]
    if not matching:
        return None
    record = matching[-1]
    return {"step": step, "reference_set": record.get("reference_set"), "scores": headline(record)}


def metadata_for(spec: ExportSpec, output: torch.Tensor, facts: CardFacts) -> ModelMetadata:
    inputs = []
    for name, role, example in zip(spec.input_names, spec.input_roles, spec.example_inputs):
        dynamic = spec.dynamic_axes.get(name, {})
        inputs.append(InputSpec(name, role, tuple(dynamic.get(i, int(d)) for i, d in enumerate(example.shape))))
    latent = next((x for x, r in zip(spec.example_inputs, spec.input_roles) if r == "latent"), None)
    has_label = "label" in spec.input_roles
    info = facts.data
    extra = dict(spec.metadata)
    fields: dict[str, Any] = {key: extra.pop(key) for key in SPEC_FIELDS if key in extra}
    fields.update(
        plugin=facts.plugin,
        plugin_version=facts.plugin_version,
        ganzoo_version=ganzoo.__version__,
        task=spec.task,
        inputs=inputs,
        channels=int(output.shape[1]),
        latent_dim=int(np.prod(latent.shape[1:])) if latent is not None else None,
        num_classes=info.num_classes if has_label else None,
        class_names=list(info.class_names) if has_label and info.class_names else None,
        height=int(output.shape[2]) if spec.task == "generate" else None,
        width=int(output.shape[3]) if spec.task == "generate" else None,
        training_size=info.size or None,
        data_name=facts.data_name,
        data_license=facts.data_license,
        steps=facts.steps,
        images_seen=facts.images_seen,
        evaluation=facts.evaluation,
    )
    if spec.task == "translate":
        fields.update(translator_sizes(spec.module, int(spec.example_inputs[0].shape[1]), fields))
    metadata = ModelMetadata(**fields, extra={k: str(v) for k, v in extra.items()})
    if facts.description or not metadata.description:
        metadata.description = facts.description or describe(metadata, facts.plugin_description)
    return metadata


def translator_sizes(module: nn.Module, channels: int, given: Mapping[str, Any]) -> dict[str, int]:
    """size_multiple, min_size and max_size, measured where the plugin did not give them."""
    from ganzoo.export.probe import size_multiple, smallest_size

    multiple = int(given.get("size_multiple") or size_multiple(module, channels))
    return {
        "size_multiple": multiple,
        "min_size": int(given.get("min_size") or smallest_size(module, channels, multiple)),
        "max_size": int(given.get("max_size") or DEFAULT_MAX_SIZE),
    }


def describe(meta: ModelMetadata, what: str, origin: str | None = None) -> str:
    """The card's one paragraph, written from its fields: what it is, where it comes from, how to use it."""
    if origin is None:
        origin = f"Trained with ganzoo {meta.ganzoo_version} on {meta.data_name}"
        if meta.steps:
            origin += f" for {meta.steps:,} steps ({meta.images_seen or 0:,} images shown)"
    if meta.task == "generate":
        label = f" and a class label (one of {meta.num_classes})" if meta.num_classes else ""
        use = (
            f"It turns {meta.latent_dim} standard-normal numbers{label} into a {meta.height}x{meta.width} "
            f"{meta.color} image with values in [-1, 1] (NCHW)."
        )
    else:
        use = (
            f"It translates {meta.direction or 'images'} at the input's own size: {meta.color} images in "
            f"[-1, 1] (NCHW) with sides a multiple of {meta.size_multiple} and at least {meta.min_size} pixels."
        )
    return f"{what.rstrip('.') + '. ' if what else ''}{origin}. {use}"


# -- int8 calibration ---------------------------------------------------------------------------
def calibration_feeds(
    run: ExportableRun, spec: ExportSpec
) -> tuple[list[dict[str, np.ndarray]], list[tuple[torch.Tensor, ...]] | None]:
    """Real inputs for int8: (calibration feeds, inputs to judge its quality on).

    Translators: training images, calibration and judging on different ones (the parity inputs
    are noise, which an int8 graph calibrated on photos is not meant for). Generators: seeded
    latents (and the classes in turn), their real inputs, judged on the usual parity inputs.
    """
    if spec.task == "translate":
        images = training_images(run, source_domain(spec), int(spec.example_inputs[0].shape[1]))
        held_out, images = images[:QUALITY_COUNT], images[QUALITY_COUNT:]
        batches = np.array_split(images, max(1, len(images) // CALIBRATION_BATCH))
        return [{spec.input_names[0]: batch} for batch in batches], [(torch.from_numpy(held_out),)]
    from ganzoo_export.latents import latents

    feeds = []
    for start in range(0, CALIBRATION_COUNT, CALIBRATION_BATCH):
        feed = {}
        for name, role, example in zip(spec.input_names, spec.input_roles, spec.example_inputs):
            if role == "latent":
                feed[name] = latents(run.spec.train.seed, start, CALIBRATION_BATCH, tuple(example.shape[1:]))
            elif role == "label":
                classes = max(1, run.plugin.data.num_classes)
                feed[name] = np.arange(start, start + CALIBRATION_BATCH, dtype=np.int64) % classes
        feeds.append(feed)
    return feeds, None


def source_domain(spec: ExportSpec) -> str:
    """"a" or "b": the domain a translator reads, from a direction named like "AtoB"."""
    direction = str(spec.metadata.get("direction", "AtoB"))
    return "b" if direction[:1].upper() == "B" else "a"


def training_images(run: ExportableRun, domain: str, channels: int) -> np.ndarray:
    """CALIBRATION_COUNT + QUALITY_COUNT training images of ``domain``, NCHW float32 in [-1, 1], at the training size."""
    from ganzoo.data.catalog import open_data
    from ganzoo.data.imageset import uint8_to_float
    from ganzoo.data.sources import center_crop

    recorded = run.plugin.data.name
    if recorded and recorded != run.spec.data.dataset:
        raise UserError(
            f"int8 calibration needs the run's training images, but this run's data is '{recorded}' "
            "(e.g. imported weights); use precision=fp16"
        )
    try:
        opened = open_data(run.spec.data, run.plugin.accepts, seed=run.spec.train.seed)
    except (UserError, OSError) as exc:
        raise UserError(
            f"int8 calibration reads the run's training images, which could not be opened ({exc}); "
            "export where they are, or use precision=fp16"
        ) from None
    imageset = opened.b if domain == "b" and opened.b is not None else opened.a
    images = getattr(imageset, "images", None)
    if images is None:  # a streamed folder: nothing decoded to draw from
        raise UserError("int8 calibration needs training images held in memory, and this run streams its folder; use fp16")
    if images.dim() != 4 or images.shape[1] != channels:
        raise UserError(f"the training set holds no {channels}-channel images to calibrate int8 with; use fp16")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(run.spec.train.seed))
    chosen = images[order[: CALIBRATION_COUNT + QUALITY_COUNT]]
    size = run.plugin.data.size or chosen.shape[-1]
    return uint8_to_float(center_crop(chosen, size)).numpy()
