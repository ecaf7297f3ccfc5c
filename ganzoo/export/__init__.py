"""PyTorch modules -> ONNX files: tracing, precision conversion, probing, foreign generators.

Needs torch and onnx; the deploy runtime (``ganzoo_export``, the ganzoo-runtime distribution) does not.
"""


class ExportError(Exception):
    """A module could not be exported as asked."""


class ExportParityError(ExportError):
    """The exported ONNX graph does not reproduce the PyTorch module's outputs."""
