"""Smaller ONNX files from a float32 graph: float16 weights (keep-io-types) and static int8.

Both run on onnxruntime's CPU provider: for float16 nodes it has no kernel for, onnxruntime
inserts casts to float32 itself, so the file halves in size while inputs and outputs stay float32
and the runtime feeds every precision alike. docs/benchmarks.md has size, speed and quality.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

Feeds = Mapping[str, np.ndarray]


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """float32 weights and activations -> float16, with float32 graph inputs and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # Random-uniform/-normal ops and the like have no float16 kernels anywhere; ganzoo's graphs
    # have none, and onnxruntime's default block list covers the rest.
    with _quiet_onnxruntime_tools():
        return convert_float_to_float16(proto, keep_io_types=True)


def quantize_int8(source: Path, target: Path, calibration: Iterable[Feeds]) -> None:
    """Static QDQ quantization of ``source`` into ``target``, ranges calibrated on ``calibration``.

    Weights are int8 per output channel, activations uint8 with min/max ranges seen on the
    calibration feeds; the graph is pre-processed first (shape inference, batch norm folded into
    convolutions), as onnxruntime's quantization guide recommends.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="ganzoo-int8-") as work, _quiet_onnxruntime_tools():
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


@contextmanager
def _quiet_onnxruntime_tools():
    """onnxruntime's conversion tools log advice through the root logger; keep the CLI's output clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
