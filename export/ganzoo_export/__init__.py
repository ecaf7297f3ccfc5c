"""ONNX export (needs torch) and the torch-free deploy runtime for ganzoo models.

Importing this package loads neither torch nor onnxruntime: ``export_onnx``/``ExportReport``
(torch) and ``GanzooModel`` (onnxruntime) are loaded on first use.
"""

from importlib import import_module

from ganzoo_export.errors import (
    ExportError,
    ExportParityError,
    MetadataError,
    RuntimeInputError,
)
from ganzoo_export.metadata import InputSpec, ModelMetadata

_LAZY = {
    "export_onnx": "ganzoo_export.onnx_export",
    "ExportReport": "ganzoo_export.onnx_export",
    "GanzooModel": "ganzoo_export.runtime",
}

__all__ = [
    "ExportError",
    "ExportParityError",
    "ExportReport",
    "GanzooModel",
    "InputSpec",
    "MetadataError",
    "ModelMetadata",
    "RuntimeInputError",
    "export_onnx",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganzoo_export' has no attribute {name!r}")
