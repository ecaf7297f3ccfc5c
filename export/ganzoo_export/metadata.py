"""The ganzoo model card kept in an ONNX file's ``metadata_props`` (all values strings).

Format 2 (this version writes it; docs/model-format.md specifies it field by field) tells an app
everything it needs to use the model with no other file. Format 1 files still load: the fields
format 2 added take the values format 1 implied (normal latents, reflect padding) or stay unknown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ganzoo_export.errors import MetadataError

FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", "2")
PREFIX = "ganzoo."
EXTRA_PREFIX = "ganzoo.extra."

KEY_FORMAT = "ganzoo.format"
KEY_INPUTS = "ganzoo.inputs"
KEY_CLASS_NAMES = "ganzoo.class_names"
KEY_VALUE_RANGE = "ganzoo.value_range"
KEY_HEIGHT = "ganzoo.height"
KEY_WIDTH = "ganzoo.width"
KEY_EVALUATION = "ganzoo.evaluation"

TASKS = ("generate", "translate")
ROLES = ("latent", "label", "image")
DYNAMIC_DIMS = ("batch", "height", "width")
DYNAMIC = "dynamic"
LATENT_DISTRIBUTIONS = ("normal",)
PADDING_MODES = ("reflect", "edge")
PRECISIONS = ("fp32", "fp16", "int8")

Task = Literal["generate", "translate"]
Role = Literal["latent", "label", "image"]
Precision = Literal["fp32", "fp16", "int8"]


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
                    f"input '{self.name}' has dimension {dim!r}; use an int or one of {DYNAMIC_DIMS}"
                )

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> InputSpec:
        try:
            return cls(name=data["name"], role=data["role"], shape=tuple(data["shape"]))
        except (KeyError, TypeError) as exc:
            raise MetadataError(f"'{KEY_INPUTS}' entry {data!r} needs name, role and shape") from exc


@dataclass
class ModelMetadata:
    """The model card: how to drive the model, and what it is."""

    # -- how to use it ----------------------------------------------------------------------
    plugin: str
    plugin_version: str
    ganzoo_version: str
    task: Task
    inputs: list[InputSpec]
    channels: int
    latent_dim: int | None = None
    latent_distribution: str | None = None  # "normal" (N(0, 1)) for models with a latent input
    num_classes: int | None = None
    class_names: list[str] | None = None
    height: int | None = None  # output size of generators; translators keep the input's size
    width: int | None = None
    value_range: tuple[float, float] = (-1, 1)
    layout: str = "NCHW"
    color: str | None = None  # "grayscale" for 1 channel, else "RGB", when not given
    direction: str | None = None
    padding_mode: str | None = None  # how translators' inputs are padded to size_multiple
    size_multiple: int | None = None
    min_size: int | None = None  # smallest height/width the graph accepts
    max_size: int | None = None  # largest side fed at once; larger images run as tiles of it
    resolution: int | None = None
    precision: Precision = "fp32"
    # -- what it is ---------------------------------------------------------------------------
    training_size: int | None = None  # side of the training images
    data_name: str | None = None
    data_license: str | None = None
    steps: int | None = None
    images_seen: int | None = None
    evaluation: dict[str, Any] | None = None  # the run's scores at this step (`ganzoo eval`)
    description: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT_VERSION  # the version the file was written in (writing always writes the newest)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise MetadataError(f"task '{self.task}' is unknown; use one of {TASKS}")
        if self.precision not in PRECISIONS:
            raise MetadataError(f"precision '{self.precision}' is unknown; use one of {PRECISIONS}")
        if self.color is None:
            self.color = "grayscale" if self.channels == 1 else "RGB"
        if self.latent_distribution is None and self.input_with_role("latent") is not None:
            self.latent_distribution = "normal"
        if self.padding_mode is None and self.task == "translate":
            self.padding_mode = "reflect"
        if self.padding_mode is not None and self.padding_mode not in PADDING_MODES:
            raise MetadataError(f"padding mode '{self.padding_mode}' is unknown; use one of {PADDING_MODES}")
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
    def input_channels(self) -> int:
        """Channels of the image a translator reads: its input's, which may differ from the output's
        ``channels`` (a pix2pix edges -> photo model reads 1 and writes 3)."""
        image = self.input_with_role("image")
        if image is not None and len(image.shape) == 4 and isinstance(image.shape[1], int):
            return image.shape[1]
        return self.channels

    @property
    def is_conditional(self) -> bool:
        return self.num_classes is not None

    def to_props(self) -> dict[str, str]:
        props = {
            KEY_FORMAT: FORMAT_VERSION,
            KEY_INPUTS: json.dumps([spec.to_json() for spec in self.inputs]),
            KEY_VALUE_RANGE: json.dumps(list(self.value_range)),
            # Translators run at the input image's size, so their output size is "dynamic".
            KEY_HEIGHT: DYNAMIC if self.height is None else str(self.height),
            KEY_WIDTH: DYNAMIC if self.width is None else str(self.width),
        }
        for name in _TEXT_FIELDS + _INT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                props[PREFIX + name] = str(value)
        if self.class_names is not None:
            props[KEY_CLASS_NAMES] = json.dumps(self.class_names)
        if self.evaluation is not None:
            props[KEY_EVALUATION] = json.dumps(self.evaluation)
        props.update({EXTRA_PREFIX + key: value for key, value in self.extra.items()})
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata:
        version = props.get(KEY_FORMAT)
        if version is None:
            raise MetadataError(
                f"the model has no '{KEY_FORMAT}' metadata; export it with ganzoo (or `ganzoo import` "
                "a foreign generator) to run it here"
            )
        if version not in READABLE_FORMATS:
            raise MetadataError(
                f"ganzoo model format {version} is not supported (this version reads "
                f"{', '.join(READABLE_FORMATS)}); upgrade ganzoo-runtime or re-export the model"
            )
        missing = [PREFIX + key for key in _REQUIRED if PREFIX + key not in props]
        if missing:
            raise MetadataError(f"the model's metadata lacks {missing}; re-export the model")
        try:
            fields: dict[str, Any] = {name: props.get(PREFIX + name) for name in _TEXT_FIELDS}
            fields.update({name: _optional_int(props.get(PREFIX + name)) for name in _INT_FIELDS})
            fields["precision"] = fields["precision"] or "fp32"
            fields["layout"] = fields["layout"] or "NCHW"
            return cls(
                **fields,
                format=version,
                inputs=[InputSpec.from_json(item) for item in json.loads(props[KEY_INPUTS])],
                class_names=_optional_json(props.get(KEY_CLASS_NAMES)),
                height=_optional_int(props.get(KEY_HEIGHT)),
                width=_optional_int(props.get(KEY_WIDTH)),
                value_range=tuple(json.loads(props.get(KEY_VALUE_RANGE, "[-1, 1]"))),
                evaluation=_optional_json(props.get(KEY_EVALUATION)),
                extra={
                    key[len(EXTRA_PREFIX):]: value for key, value in props.items() if key.startswith(EXTRA_PREFIX)
                },
            )
        except MetadataError:
            raise
        except (ValueError, TypeError) as exc:
            raise MetadataError(f"the model's ganzoo metadata is malformed ({exc}); re-export it") from exc


# Fields stored as plain strings / as decimal integers under "ganzoo.<field name>".
_TEXT_FIELDS = (
    "plugin", "plugin_version", "ganzoo_version", "task", "latent_distribution", "layout", "color",
    "direction", "padding_mode", "precision", "data_name", "data_license", "description",
)
_INT_FIELDS = (
    "channels", "latent_dim", "num_classes", "size_multiple", "min_size", "max_size", "resolution",
    "training_size", "steps", "images_seen",
)
_REQUIRED = ("plugin", "plugin_version", "ganzoo_version", "task", "inputs", "channels")


def _optional_int(value: str | None) -> int | None:
    return None if value is None or value == DYNAMIC else int(value)


def _optional_json(value: str | None):
    return None if value is None else json.loads(value)
