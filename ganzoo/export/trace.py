"""Export a PyTorch module to one self-contained, parity-checked .onnx file with ganzoo metadata."""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from ganzoo import files
from ganzoo.export import ExportError, ExportParityError
from ganzoo.export.precision import Feeds, quantize_int8, to_fp16
from ganzoo_export.metadata import ModelMetadata
from ganzoo_export.runtime import cuda_device_present

Precision = Literal["fp32", "fp16", "int8"]
# The largest difference from the float32 PyTorch module each precision may show on any output
# value in [-1, 1]: fp16 keeps ~3 significant digits; int8 keeps 256 levels per tensor, so its
# check is on the whole image instead (INT8_MIN_PSNR).
DEFAULT_ATOL = {"fp32": 1e-4, "fp16": 1e-2, "int8": 2.0}
INT8_MIN_PSNR = 20.0  # dB over [-1, 1] (RMS error 0.2): a guard against broken ranges; benchmarks.md has real figures

Shapes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_error: float
    sizes_checked: list[Shapes]  # input shapes of every parity check, example inputs first
    psnr_db: float  # the lowest PSNR (dB, over [-1, 1]) against PyTorch on the quality inputs


def export_onnx(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str] = ("image",),
    dynamic_axes: dict[str, dict[int, str]],
    metadata: ModelMetadata,
    atol: float | None = None,
    parity_inputs: list[tuple[torch.Tensor, ...]] | None = None,
    opset: int = 18,
    precision: Precision = "fp32",
    calibration: Sequence[Feeds] = (),
    quality_inputs: list[tuple[torch.Tensor, ...]] | None = None,
) -> ExportReport:
    """Export an eval-mode copy of ``module`` to ``path`` and prove onnxruntime reproduces it.

    Parity is checked on ``example_inputs`` and every ``parity_inputs`` tuple (use other batch
    sizes and image sizes to prove the dynamic axes) against the float32 module: every value
    within ``atol`` (default ``DEFAULT_ATOL[precision]``) and, for int8, at least ``INT8_MIN_PSNR``
    on ``quality_inputs`` (default: every input set; give real data where the parity inputs are
    noise an int8 graph calibrated on real data was never meant for). On failure nothing is left
    at ``path``. The caller's module is not modified.

    fp16: on a machine where PyTorch and onnxruntime both reach a CUDA GPU the module is traced
    and checked in half precision there; elsewhere the float32 graph is converted (keep-io-types)
    and checked on the CPU. int8: static quantization with ranges from ``calibration`` (feeds by
    input name). Inputs and outputs stay float32 in every precision.
    """
    path = Path(path)
    _check_names(metadata, input_names, output_names, dynamic_axes)
    if precision not in DEFAULT_ATOL:
        raise ValueError(f"precision must be one of {sorted(DEFAULT_ATOL)}, got {precision!r}")
    if precision == "int8" and not calibration:
        raise ValueError("int8 export needs calibration feeds (real inputs) to measure activation ranges")
    tolerance = DEFAULT_ATOL[precision] if atol is None else atol
    half_on_cuda = precision == "fp16" and cuda_usable()
    device = torch.device("cuda" if half_on_cuda else "cpu")
    providers = ["CUDAExecutionProvider"] if half_on_cuda else ["CPUExecutionProvider"]
    prepared = _prepare_module(module, half_on_cuda, device)
    structural = [example_inputs, *(parity_inputs or [])]
    quality = quality_inputs or structural
    input_sets = [tuple(tensor.to(device) for tensor in inputs) for inputs in [*structural, *(quality_inputs or [])]]
    path.parent.mkdir(parents=True, exist_ok=True)
    # A private folder next to the target: any external-data file the exporter wrote would show
    # up in it, and os.replace from the same filesystem makes the final write atomic.
    workdir = Path(tempfile.mkdtemp(prefix=f".{path.stem}-export-", dir=path.parent))
    try:
        staged = workdir / path.name
        _trace_to_onnx(prepared, input_sets[0], staged, input_names, output_names, dynamic_axes, opset)
        extra_files = sorted(item.name for item in workdir.iterdir() if item != staged)
        if extra_files:
            raise ExportError(f"the exporter wrote files besides the model: {extra_files}")
        proto = onnx.load(str(staged))
        onnx.checker.check_model(proto, full_check=True)
        graph_inputs = [item.name for item in proto.graph.input]
        if graph_inputs != list(input_names):
            # Tracing drops inputs that forward() never uses.
            raise ExportError(
                f"the exported graph takes inputs {graph_inputs} instead of "
                f"{list(input_names)}; every input must be used by forward()"
            )
        if precision == "fp16" and not half_on_cuda:
            proto = to_fp16(proto)
        elif precision == "int8":
            quantized = workdir / "int8.onnx"
            quantize_int8(staged, quantized, calibration)
            proto = onnx.load(str(quantized))
            quantized.unlink()
        _write_metadata(proto, replace(metadata, precision=precision))
        onnx.save_model(proto, str(staged))
        max_error, psnrs, sizes = _check_parity(prepared, staged, input_sets, input_names, tolerance, providers)
        lowest = min(psnrs[-len(quality):])
        if precision == "int8" and lowest < INT8_MIN_PSNR:
            raise ExportParityError(
                f"int8 quantization leaves the output at {lowest:.1f} dB PSNR against float32 (below "
                f"{INT8_MIN_PSNR:g} dB); export precision=fp16 or fp32 instead"
            )
        files.publish(staged, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ExportReport(path=path, max_abs_error=max_error, sizes_checked=sizes[: len(structural)], psnr_db=lowest)


def cuda_usable() -> bool:
    """Whether PyTorch and onnxruntime both reach a CUDA GPU (fp16 is then traced on the GPU)."""
    return (
        torch.cuda.is_available()
        and "CUDAExecutionProvider" in ort.get_available_providers()
        and cuda_device_present()
    )



def _check_names(
    metadata: ModelMetadata,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    declared = [spec.name for spec in metadata.inputs]
    if declared != list(input_names):
        raise ValueError(
            f"metadata.inputs names {declared} must equal input_names {list(input_names)}"
        )
    shared = sorted(set(input_names) & set(output_names))
    if shared:
        # The exporter would silently rename the input (e.g. "image" -> "image.1").
        raise ValueError(f"names {shared} are both inputs and outputs; give each a unique name")
    unknown = sorted(set(dynamic_axes) - set(input_names) - set(output_names))
    if unknown:
        raise ValueError(f"dynamic_axes names {unknown} are neither inputs nor outputs")


class _HalfPrecision(nn.Module):
    """Runs the wrapped module in fp16 behind float32 inputs and outputs."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.half()

    def forward(self, *inputs: torch.Tensor):
        outputs = self.module(*(x.half() if x.is_floating_point() else x for x in inputs))
        if isinstance(outputs, torch.Tensor):
            return outputs.float()
        return tuple(output.float() for output in outputs)


def _prepare_module(module: nn.Module, half: bool, device: torch.device) -> nn.Module:
    prepared = copy.deepcopy(module).to(device).eval()
    if half:
        prepared = _HalfPrecision(prepared).eval()
    return prepared


def _trace_to_onnx(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    # The TorchScript exporter (dynamo=False) is chosen after exporting conv / convtranspose /
    # batch-norm / instance-norm / reflection-pad / embedding / upsample nets with both exporters
    # on torch 2.14: both give correct graphs with dynamic batch, height and width, but the
    # dynamo exporter takes 1.5-5 s per tiny model instead of ~0.2 s, writes weights to a
    # separate .data file unless told external_data=False, and renames output axes to symbolic
    # expressions ("2*(((height - 1)//2)) + 2") instead of the names given here. Tracing can
    # bake shape-dependent Python values into the graph; the parity check at other shapes
    # catches exactly that.
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy-exporter notice, and torch.onnx's deprecation notices about its own internals.
        warnings.filterwarnings("ignore", "You are using the legacy", DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        # Shape sanity checks inside torch.nn (e.g. instance norm's channel count) are traced
        # as constants, harmlessly; warnings from the exported model's own code stay visible.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn")
        # Benign: slicing with steps is simply not pre-computed (reflection padding).
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
        # Benign: instance norm uses the input's own statistics in eval mode too.
        warnings.filterwarnings("ignore", ".*operator 'instance_norm' is set to train=True")
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )


def _write_metadata(proto: onnx.ModelProto, metadata: ModelMetadata) -> None:
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata.to_props())
    # Generic ONNX viewers (Netron...) show the model's doc string: make it the card's paragraph.
    proto.doc_string = metadata.description or ""


def _check_parity(
    module: nn.Module,
    onnx_path: Path,
    input_sets: list[tuple[torch.Tensor, ...]],
    input_names: Sequence[str],
    atol: float,
    providers: list[str],
) -> tuple[float, float, list[Shapes]]:
    """(max abs error, PSNR in dB of each input set, shapes checked) of the file against the module."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=providers)
    if providers[0] not in session.get_providers():
        raise ExportError(
            f"onnxruntime could not start {providers[0]} to check the export; "
            "install the CUDA and cuDNN versions onnxruntime-gpu needs, or export fp32"
        )
    hint = "shape-dependent Python code in forward() was probably fixed to the example shapes"
    worst, psnrs, checked = 0.0, [], []
    for inputs in input_sets:
        shapes = tuple(tuple(tensor.shape) for tensor in inputs)
        with torch.no_grad():
            expected = _to_numpy_list(module(*inputs))
        feeds = {name: tensor.detach().cpu().numpy() for name, tensor in zip(input_names, inputs)}
        try:
            actual = session.run(None, feeds)
        except Exception as exc:  # onnxruntime's error types are private; any failure here is one
            raise ExportParityError(
                f"the exported graph fails at input shapes {shapes} ({str(exc).splitlines()[0]}); {hint}"
            ) from exc
        set_psnr = math.inf
        for reference, output in zip(expected, actual):
            if reference.shape != output.shape:
                raise ExportParityError(
                    f"the exported graph returns shape {output.shape} instead of "
                    f"{reference.shape} at input shapes {shapes}; {hint}"
                )
            if not (np.isfinite(reference).all() and np.isfinite(output).all()):
                side = "PyTorch module" if not np.isfinite(reference).all() else "exported graph"
                raise ExportParityError(
                    f"the {side} outputs NaN or infinity at input shapes {shapes}: the weights are "
                    "probably damaged (a diverged run); export an earlier checkpoint with --checkpoint"
                )
            if reference.size:
                difference = reference.astype(np.float64) - output
                worst = max(worst, float(np.max(np.abs(difference))))
                set_psnr = min(set_psnr, psnr(float(np.mean(difference**2))))
        if not worst <= atol:
            raise ExportParityError(
                f"the exported graph differs from the PyTorch module by {worst:.3g} "
                f"(atol {atol:g}) at input shapes {shapes}; {hint}"
            )
        checked.append(shapes)
        psnrs.append(set_psnr)
    return worst, psnrs, checked


def psnr(mse: float, value_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error over a ``value_range`` (2 for [-1, 1])."""
    return math.inf if mse == 0 else 10.0 * math.log10(value_range**2 / mse)


def _to_numpy_list(outputs) -> list[np.ndarray]:
    tensors = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    return [tensor.detach().float().cpu().numpy() for tensor in tensors]
