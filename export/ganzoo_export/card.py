"""The model card inside an ONNX file, as text for people (`ganzoo info`, `ganzoo-run info`)."""

from __future__ import annotations

import json
import textwrap

from ganzoo_export.metadata import ModelMetadata

WIDTH = 100
LABEL_WIDTH = 15
_NAMES_SHOWN = 12


def format_card(meta: ModelMetadata, title: str) -> str:
    """A few aligned lines: how to use the model, then what it is."""
    lines = [f"{title}: a {meta.task} model (ganzoo model format {meta.format})"]
    if meta.description:
        lines += textwrap.wrap(
            meta.description, WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
        )
    usage, identity = _usage(meta), _identity(meta)
    width = max(LABEL_WIDTH, *(len(label) for label, _ in usage + identity))
    return "\n".join([*lines, "use", *_rows(usage, width), "what it is", *_rows(identity, width)])


def card_json(meta: ModelMetadata) -> str:
    """The card's raw ``ganzoo.*`` properties as JSON (strings, as stored in the file)."""
    return json.dumps(meta.to_props(), indent=2, sort_keys=True)


def _rows(rows: list[tuple[str, str]], width: int) -> list[str]:
    return [f"  {label:<{width}} {value}" for label, value in rows if value]


def _usage(meta: ModelMetadata) -> list[tuple[str, str]]:
    inputs = ", ".join(f"{spec.name} ({spec.role}) {list(spec.shape)}" for spec in meta.inputs)
    low, high = meta.value_range
    channels = f"{meta.channels} channel{'s' if meta.channels != 1 else ''}"
    if meta.height is not None:
        output = f"{meta.height}x{meta.width} {meta.color} ({channels})"
    else:
        output = f"the input's size, {meta.color} ({channels})"
    rows = [
        ("inputs", inputs),
        ("output", f"{output}, {meta.layout} float in [{low:g}, {high:g}]"),
    ]
    if meta.latent_dim is not None:
        distribution = "standard normal N(0, 1)" if meta.latent_distribution == "normal" else meta.latent_distribution
        rows.append(("latent", f"{meta.latent_dim} values, {distribution}"))
    if meta.num_classes is not None:
        names = meta.class_names or []
        shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
        rows.append(("classes", f"{meta.num_classes}" + (f": {shown}" if names else " (by index)")))
    if meta.task == "translate":
        multiple = meta.size_multiple or 1
        sizes = f"sides padded ({meta.padding_mode}) to a multiple of {multiple}"
        if meta.min_size:
            sizes += f", at least {meta.min_size} px"
        if meta.max_size:
            sizes += f"; images over {meta.max_size} px run as overlapping tiles"
        rows.append(("direction", meta.direction or ""))
        rows.append(("sizes", sizes))
    if meta.resolution is not None and meta.task == "generate":
        rows.append(("resolution", f"{meta.resolution}"))
    rows.append(("precision", meta.precision))
    return rows


def _identity(meta: ModelMetadata) -> list[tuple[str, str]]:
    data = meta.data_name or ""
    if data and meta.data_license:
        data += f" (licence: {meta.data_license})"
    if data and meta.training_size:
        data += f", {meta.training_size}x{meta.training_size} images"
    training = ""
    if meta.steps is not None:
        training = f"{meta.steps:,} steps" + (f", {meta.images_seen:,} images seen" if meta.images_seen else "")
    rows = [
        ("plugin", f"{meta.plugin} {meta.plugin_version} (ganzoo {meta.ganzoo_version})"),
        ("training data", data),
        ("training", training),
        ("evaluation", _evaluation(meta.evaluation)),
    ]
    rows += [(f"extra.{key}", value) for key, value in sorted(meta.extra.items())]
    return rows


def _evaluation(evaluation: dict | None) -> str:
    if not evaluation:
        return ""
    scores = ", ".join(f"{name} {value}" for name, value in evaluation.get("scores", {}).items())
    where = f" (step {evaluation['step']}" if "step" in evaluation else " ("
    where += f", against {evaluation['reference_set']})" if "reference_set" in evaluation else ")"
    return scores + (where if where != " ()" else "")
