"""Errors of the deploy runtime: plain exceptions, so the runtime needs nothing from ganzoo core."""


class GanzooRuntimeError(ValueError):
    """A problem the caller can fix; the message is one line that names the problem and the fix."""

    user_facing = True  # command lines (ganzoo, ganzoo-run) print it as one line, no traceback


class MetadataError(GanzooRuntimeError):
    """An ONNX file lacks ganzoo metadata or carries metadata this version cannot read."""


class RuntimeInputError(GanzooRuntimeError):
    """An argument to the runtime (model file, n, seed, labels, image, provider) does not fit."""
