"""From a loaded run to ONNX files: the plugin names what to export, this fills in the metadata."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import ganzoo
from ganzoo.errors import UserError
from ganzoo.files import DiskFullError, disk_full_code
from ganzoo.plugin import ExportSpec

if TYPE_CHECKING:
    from ganzoo.api import LoadedRun


def metadata_for(run: LoadedRun, spec: ExportSpec, output: torch.Tensor):
    from ganzoo_export.metadata import InputSpec, ModelMetadata

    inputs = []
    for name, role, example in zip(spec.input_names, spec.input_roles, spec.example_inputs):
        dynamic = spec.dynamic_axes.get(name, {})
        inputs.append(InputSpec(name, role, tuple(dynamic.get(i, int(d)) for i, d in enumerate(example.shape))))
    latent = next((x for x, r in zip(spec.example_inputs, spec.input_roles) if r == "latent"), None)
    has_label = "label" in spec.input_roles
    info = run.data_info
    fields: dict[str, Any] = dict(
        plugin=run.spec.plugin,
        plugin_version=run.spec.plugin_cls.version,
        ganzoo_version=ganzoo.__version__,
        task=spec.task,
        inputs=inputs,
        channels=int(output.shape[1]),
        latent_dim=int(latent.shape[1]) if latent is not None else None,
        num_classes=info.num_classes if has_label else None,
        class_names=list(info.class_names) if has_label and info.class_names else None,
        height=int(output.shape[2]) if spec.task == "generate" else None,
        width=int(output.shape[3]) if spec.task == "generate" else None,
    )
    extra = dict(spec.metadata)
    for key in ("direction", "size_multiple", "resolution"):
        if key in extra:
            fields[key] = extra.pop(key)
    return ModelMetadata(**fields, extra={k: str(v) for k, v in extra.items()})


def check_precision(precision: str) -> str:
    """``precision`` (an export option) if this machine can export it; fp16 graphs are traced and checked on CUDA."""
    if precision not in ("fp32", "fp16"):
        raise UserError(f"precision={precision!r} is not supported: use precision=fp32 or precision=fp16")
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError(
            "precision=fp16 needs a CUDA GPU (onnxruntime's CPU kernels lack fp16 convolutions, so the "
            "graph is checked on the GPU): export on a GPU machine, or use precision=fp32"
        )
    return precision


def export_run(run: LoadedRun, out_dir: Path, options: Mapping[str, Any]) -> list[Path]:
    from ganzoo_export.onnx_export import export_onnx

    options = dict(options)
    precision = check_precision(str(options.pop("precision", "fp32")))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in run.plugin.exports(run.nets, options):
        module = spec.module.cpu().eval()
        with torch.no_grad():
            output = module(*spec.example_inputs)
        path = out_dir / f"{run.spec.plugin}-{spec.name}{'' if precision == 'fp32' else '-' + precision}.onnx"
        try:
            export_onnx(
                module,
                spec.example_inputs,
                path,
                input_names=list(spec.input_names),
                output_names=["image"],
                dynamic_axes=spec.dynamic_axes,
                metadata=metadata_for(run, spec, output),
                parity_inputs=spec.parity_inputs,
                precision=precision,
            )
        except Exception as exc:  # export_onnx leaves nothing at path when it fails
            code = disk_full_code(exc)
            if code is None:
                raise
            raise DiskFullError(path, code) from exc
        written.append(path)
    return written
