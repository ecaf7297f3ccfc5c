"""The ganzoo deploy runtime: run exported generators and translators with onnxruntime + numpy.

Importing this package does not load onnxruntime; ``GanzooModel`` loads it on first use.
"""

from importlib import import_module

from ganzoo_export.errors import GanzooRuntimeError, MetadataError, RuntimeInputError
from ganzoo_export.metadata import InputSpec, ModelMetadata

__version__ = "0.1.0"

_LAZY = {"GanzooModel": "ganzoo_export.runtime"}

__all__ = [
    "GanzooModel",
    "GanzooRuntimeError",
    "InputSpec",
    "MetadataError",
    "ModelMetadata",
    "RuntimeInputError",
    "__version__",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo_export' has no attribute {name!r}")
