"""The ganzoo metadata schema kept in an ONNX file's ``metadata_props`` (all values strings)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from ganzoo_export.errors import MetadataError

FORMAT_VERSION = "1"
PREFIX = "ganzoo."
EXTRA_PREFIX = "ganzoo.extra."

KEY_FORMAT = "ganzoo.format"
KEY_PLUGIN = "ganzoo.plugin"
KEY_PLUGIN_VERSION = "ganzoo.plugin_version"
KEY_GANZOO_VERSION = "ganzoo.ganzoo_version"
KEY_TASK = "ganzoo.task"
KEY_INPUTS = "ganzoo.inputs"
KEY_LATENT_DIM = "ganzoo.latent_dim"
KEY_NUM_CLASSES = "ganzoo.num_classes"
KEY_CLASS_NAMES = "ganzoo.class_names"
KEY_CHANNELS = "ganzoo.channels"
KEY_HEIGHT = "ganzoo.height"
KEY_WIDTH = "ganzoo.width"
KEY_VALUE_RANGE = "ganzoo.value_range"
KEY_LAYOUT = "ganzoo.layout"
KEY_COLOR = "ganzoo.color"
KEY_DIRECTION = "ganzoo.direction"
KEY_SIZE_MULTIPLE = "ganzoo.size_multiple"
KEY_RESOLUTION = "ganzoo.resolution"
KEY_PRECISION = "ganzoo.precision"

TASKS = ("generate", "translate")
ROLES = ("latent", "label", "image")
DYNAMIC_DIMS = ("batch", "height", "width")
DYNAMIC = "dynamic"

Task = Literal["generate", "translate"]
Role = Literal["latent", "label", "image"]
Precision = Literal["fp32", "fp16"]


@dataclass(frozen=True)
class InputSpec:
    """One graph input: name, what it carries, shape (ints or "batch"/"height"/"width")."""

    name: str
    role: Role
    shape: tuple[int | str, ...]

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise MetadataError(f"input '{self.name}' has role '{self.role}'; use one of {ROLES}")
        for dim in self.shape:
            if not (isinstance(dim, int) or dim in DYNAMIC_DIMS):
                raise MetadataError(
                    f"input '{self.name}' has dimension {dim!r}; "
                    f"use an int or one of {DYNAMIC_DIMS}"
                )

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> InputSpec:
        try:
            return cls(name=data["name"], role=data["role"], shape=tuple(data["shape"]))
        except (KeyError, TypeError) as exc:
            raise MetadataError(
                f"'{KEY_INPUTS}' entry {data!r} needs name, role and shape"
            ) from exc


@dataclass
class ModelMetadata:
    """What the runtime needs to drive an exported model without knowing its architecture."""

    plugin: str
    plugin_version: str
    ganzoo_version: str
    task: Task
    inputs: list[InputSpec]
    channels: int
    latent_dim: int | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    height: int | None = None
    width: int | None = None
    value_range: tuple[float, float] = (-1, 1)
    layout: str = "NCHW"
    color: str | None = None  # "grayscale" for 1 channel, else "RGB", when not given
    direction: str | None = None
    size_multiple: int | None = None
    resolution: int | None = None
    precision: Precision = "fp32"
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise MetadataError(f"task '{self.task}' is unknown; use one of {TASKS}")
        if self.color is None:
            self.color = "grayscale" if self.channels == 1 else "RGB"
        if self.class_names is not None and self.num_classes is None:
            self.num_classes = len(self.class_names)
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise MetadataError(
                f"{len(self.class_names)} class names given for {self.num_classes} classes; "
                "give one name per class"
            )

    def input_with_role(self, role: Role) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.role == role), None)

    @property
    def is_conditional(self) -> bool:
        return self.num_classes is not None

    def to_props(self) -> dict[str, str]:
        props = {
            KEY_FORMAT: FORMAT_VERSION,
            KEY_PLUGIN: self.plugin,
            KEY_PLUGIN_VERSION: self.plugin_version,
            KEY_GANZOO_VERSION: self.ganzoo_version,
            KEY_TASK: self.task,
            KEY_INPUTS: json.dumps([spec.to_json() for spec in self.inputs]),
            KEY_CHANNELS: str(self.channels),
            KEY_VALUE_RANGE: json.dumps(list(self.value_range)),
            KEY_LAYOUT: self.layout,
            KEY_COLOR: self.color,
            KEY_PRECISION: self.precision,
            # Translators run at the input image's size, so their output size is "dynamic".
            KEY_HEIGHT: DYNAMIC if self.height is None else str(self.height),
            KEY_WIDTH: DYNAMIC if self.width is None else str(self.width),
        }
        optional = {
            KEY_LATENT_DIM: self.latent_dim,
            KEY_NUM_CLASSES: self.num_classes,
            KEY_DIRECTION: self.direction,
            KEY_SIZE_MULTIPLE: self.size_multiple,
            KEY_RESOLUTION: self.resolution,
        }
        props.update({key: str(value) for key, value in optional.items() if value is not None})
        if self.class_names is not None:
            props[KEY_CLASS_NAMES] = json.dumps(self.class_names)
        props.update({EXTRA_PREFIX + key: value for key, value in self.extra.items()})
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        version = props.get(KEY_FORMAT)
        if version is None:
            raise MetadataError(
                f"the model has no '{KEY_FORMAT}' metadata; export it with ganzoo to run it here"
            )
        if version != FORMAT_VERSION:
            raise MetadataError(
                f"ganzoo model format {version} is not supported (this version reads "
                f"{FORMAT_VERSION}); upgrade ganzoo or re-export the model"
            )
        missing = [key for key in _REQUIRED_KEYS if key not in props]
        if missing:
            raise MetadataError(f"the model's metadata lacks {missing}; re-export the model")
        try:
            return cls(
                plugin=props[KEY_PLUGIN],
                plugin_version=props[KEY_PLUGIN_VERSION],
                ganzoo_version=props[KEY_GANZOO_VERSION],
                task=props[KEY_TASK],
                inputs=[InputSpec.from_json(item) for item in json.loads(props[KEY_INPUTS])],
                channels=int(props[KEY_CHANNELS]),
                latent_dim=_optional_int(props.get(KEY_LATENT_DIM)),
                num_classes=_optional_int(props.get(KEY_NUM_CLASSES)),
                class_names=_optional_json(props.get(KEY_CLASS_NAMES)),
                height=_optional_int(props.get(KEY_HEIGHT)),
                width=_optional_int(props.get(KEY_WIDTH)),
                value_range=tuple(json.loads(props.get(KEY_VALUE_RANGE, "[-1, 1]"))),
                layout=props.get(KEY_LAYOUT, "NCHW"),
                color=props.get(KEY_COLOR),
                direction=props.get(KEY_DIRECTION),
                size_multiple=_optional_int(props.get(KEY_SIZE_MULTIPLE)),
                resolution=_optional_int(props.get(KEY_RESOLUTION)),
                precision=props.get(KEY_PRECISION, "fp32"),
                extra={
                    key[len(EXTRA_PREFIX):]: value
                    for key, value in props.items()
                    if key.startswith(EXTRA_PREFIX)
                },
            )
        except MetadataError:
            raise
        except (ValueError, TypeError) as exc:
            raise MetadataError(
                f"the model's ganzoo metadata is malformed ({exc}); re-export it"
            ) from exc


_REQUIRED_KEYS = (
    KEY_PLUGIN,
    KEY_PLUGIN_VERSION,
    KEY_GANZOO_VERSION,
    KEY_TASK,
    KEY_INPUTS,
    KEY_CHANNELS,
)


def _optional_int(value: str | None) -> int | None:
    return None if value is None or value == DYNAMIC else int(value)


def _optional_json(value: str | None):
    return None if value is None else json.loads(value)
