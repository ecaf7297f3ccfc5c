"""Errors of the export package; plain exceptions so the runtime needs nothing from ganzoo core."""


class MetadataError(ValueError):
    """An ONNX file lacks ganzoo metadata or carries metadata this version cannot read."""


class RuntimeInputError(ValueError):
    """An argument to the deploy runtime (labels, image, provider) does not fit the model."""


class ExportError(Exception):
    """A module could not be exported as asked."""


class ExportParityError(ExportError):
    """The exported ONNX graph does not reproduce the PyTorch module's outputs."""
