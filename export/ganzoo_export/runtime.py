"""Torch-free deploy runtime: run an exported ganzoo .onnx file with onnxruntime + numpy."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidGraph, InvalidProtobuf

from ganzoo_export.errors import MetadataError, RuntimeInputError
from ganzoo_export.images import from_uint8, to_uint8
from ganzoo_export.metadata import InputSpec, ModelMetadata
from ganzoo_export.tiling import translate_image

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_ORT_DEFAULT_LOG_SEVERITY = 2  # WARNING: onnxruntime's own default
_ORT_SILENT = 4  # FATAL only
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_NAMES_SHOWN_IN_ERRORS = 20

Label = int | str


def cuda_device_present() -> bool:
    """Whether the NVIDIA driver starts and sees a GPU.

    onnxruntime-gpu lists CUDAExecutionProvider on every machine, so its provider list alone
    cannot tell a GPU box from a CPU-only one; asking the driver can, without any log noise.
    """
    for library in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(library)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return (
            driver.cuInit(0) == 0
            and driver.cuDeviceGetCount(ctypes.byref(count)) == 0
            and count.value > 0
        )
    return False


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested providers (if installed), else CUDA when a GPU is usable, else CPU."""
    available = ort.get_available_providers()
    if requested:
        unknown = [name for name in requested if name not in available]
        if unknown:
            raise RuntimeInputError(
                f"execution provider(s) {unknown} are not installed; choose from {available}"
            )
        return list(requested)
    if CUDA in available and cuda_device_present():
        return [CUDA, CPU]
    return [CPU]


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads slow onnxruntime's intra-op pool)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return len(allowed) if allowed else os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    processor, package = -1, ""
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            processor = int(value)
        elif key == "physical id":
            package = value
        elif key == "core id" and (allowed is None or processor in allowed):
            cores.add((package, value))
    if cores:
        return len(cores)
    return len(allowed) if allowed else os.cpu_count() or 1


def _session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    options.log_severity_level = 3  # hide optimiser warnings that are not actionable for users
    return options


def _create_session(
    path: Path, providers: list[str], quiet: bool, threads: int | None = None
) -> ort.InferenceSession:
    silence = quiet and CUDA in providers
    if CUDA in providers and hasattr(ort, "preload_dlls"):
        # Without torch imported first, CUDA/cuDNN from the nvidia pip wheels are not on the
        # loader path; preloading them is what lets the CUDA provider start.
        ort.preload_dlls()
    if silence:
        # A failing CUDA provider logs through the global logger, not the session's, before
        # onnxruntime falls back to CPU; an automatic choice should fall back quietly.
        ort.set_default_logger_severity(_ORT_SILENT)
    try:
        return ort.InferenceSession(str(path), _session_options(threads), providers=providers)
    except (InvalidProtobuf, InvalidGraph) as exc:
        raise RuntimeInputError(
            f"'{path}' is not a valid ONNX model ({str(exc).splitlines()[0]}); re-export it"
        ) from exc
    finally:
        if silence:
            ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)


class GanzooModel:
    """An exported generator or translator, driven by the ganzoo metadata inside the file."""

    def __init__(
        self, path: str | Path, providers: list[str] | None = None, threads: int | None = None
    ):
        """``threads``: onnxruntime's intra-op threads on the CPU (default: the physical cores)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise RuntimeInputError(f"model file '{self.path}' does not exist; check the path")
        chosen = choose_providers(providers)
        self.session = _create_session(self.path, chosen, quiet=providers is None, threads=threads)
        self.providers: list[str] = self.session.get_providers()
        if providers is not None and CUDA in chosen and CUDA not in self.providers:
            raise RuntimeInputError(
                "CUDAExecutionProvider could not start (see the onnxruntime log above for the "
                "missing library); install matching CUDA/cuDNN or use CPUExecutionProvider"
            )
        self.metadata = ModelMetadata.from_props(self.session.get_modelmeta().custom_metadata_map)
        self._input_dtypes = {
            item.name: _ORT_DTYPES[item.type] for item in self.session.get_inputs()
        }
        self._output_names = [item.name for item in self.session.get_outputs()]
        missing = [
            spec.name for spec in self.metadata.inputs if spec.name not in self._input_dtypes
        ]
        if missing:
            raise MetadataError(
                f"metadata names inputs {missing} that the graph lacks; re-export the model"
            )
        self._on_cuda = CUDA in self.providers

    def generate(
        self,
        n: int,
        seed: int = 0,
        labels: Label | Sequence[Label] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        """``n`` images as NHWC uint8; the same seed gives the same images at any batch size.

        ``labels`` (conditional models): one class for all images or one per image, as indices
        or class names; left out, the images cycle through the classes.
        """
        self._require_task("generate")
        if n < 1 or batch_size < 1:
            raise RuntimeInputError(
                f"n and batch_size must be at least 1, got {n} and {batch_size}"
            )
        latent = self._spec("latent")
        latents = np.random.default_rng(seed).standard_normal(
            (n, *_fixed_dims(latent)), dtype=np.float32
        )
        feeds = {latent.name: latents}
        label_spec = self.metadata.input_with_role("label")
        if label_spec is not None:
            feeds[label_spec.name] = self._label_indices(labels, n)
        elif labels is not None:
            raise RuntimeInputError("this model is unconditional; leave labels out")
        batches = [
            to_uint8(self._run({name: value[start:stop] for name, value in feeds.items()}))
            for start, stop in _batch_bounds(n, batch_size)
        ]
        return np.concatenate(batches)

    def translate(self, image: np.ndarray, tile: int = 512, overlap: int = 32) -> np.ndarray:
        """Translate an HWC (or HW grayscale) uint8 image at its own resolution to HWC uint8."""
        self._require_task("translate")
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        if image.dtype != np.uint8 or image.ndim != 3:
            raise RuntimeInputError(
                f"expected an HWC uint8 image, got {image.dtype} of shape {image.shape}"
            )
        channels = self.metadata.channels
        if image.shape[2] != channels:
            raise RuntimeInputError(
                f"the model takes {channels}-channel images but this one has {image.shape[2]}; "
                f"load it as {self.metadata.color}"
            )
        spec = self._spec("image")
        if tuple(spec.shape[2:]) != ("height", "width"):
            raise MetadataError(
                f"input '{spec.name}' has fixed size {spec.shape[2:]}; re-export the translator "
                "with dynamic height and width"
            )
        translated = translate_image(
            from_uint8(image),
            lambda batch: self._run({spec.name: batch}),
            self.metadata.size_multiple or 1,
            tile=tile,
            overlap=overlap,
        )
        return to_uint8(translated.transpose(2, 0, 1)[None])[0]

    def run_raw(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the graph on named numpy inputs; returns every output by name."""
        unknown = sorted(set(inputs) - set(self._input_dtypes))
        if unknown:
            raise RuntimeInputError(
                f"unknown input(s) {unknown}; the model takes {sorted(self._input_dtypes)}"
            )
        feeds = {name: np.asarray(value) for name, value in inputs.items()}
        outputs = self.session.run(None, feeds)
        return dict(zip(self._output_names, outputs))

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {
            name: np.ascontiguousarray(value, dtype=self._input_dtypes[name])
            for name, value in feeds.items()
        }
        if not self._on_cuda:
            return self.session.run(self._output_names[:1], feeds)[0]
        # I/O binding lets the output stay on the GPU until one explicit copy, instead of the
        # extra staging copies a plain run() makes.
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output(self._output_names[0], "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def _require_task(self, task: str) -> None:
        if self.metadata.task != task:
            other = "translate" if task == "generate" else "generate"
            raise RuntimeInputError(
                f"'{self.path.name}' is a {self.metadata.task} model; use {other} instead of {task}"
            )

    def _spec(self, role: str) -> InputSpec:
        spec = self.metadata.input_with_role(role)
        if spec is None:
            raise MetadataError(f"the model's metadata declares no '{role}' input; re-export it")
        return spec

    def _label_indices(self, labels: Label | Sequence[Label] | None, n: int) -> np.ndarray:
        num_classes = self.metadata.num_classes
        if num_classes is None:
            raise MetadataError("the model takes labels but its metadata lacks ganzoo.num_classes")
        if labels is None:
            return np.arange(n, dtype=np.int64) % num_classes
        if isinstance(labels, (str, int, np.integer)):
            labels = [labels] * n
        labels = list(labels)
        if len(labels) != n:
            raise RuntimeInputError(
                f"got {len(labels)} labels for {n} images; give one label or one per image"
            )
        return np.array([self._label_index(label) for label in labels], dtype=np.int64)

    def _label_index(self, label: Label) -> int:
        names = self.metadata.class_names or []
        num_classes = self.metadata.num_classes
        if isinstance(label, str) and label in names:
            return names.index(label)
        if isinstance(label, str) and label.strip().lstrip("-").isdigit():
            label = int(label)
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if 0 <= label < num_classes:
                return int(label)
        valid = f"an index in 0..{num_classes - 1}"
        if names:
            shown = ", ".join(names[:_NAMES_SHOWN_IN_ERRORS])
            more = ", ..." if len(names) > _NAMES_SHOWN_IN_ERRORS else ""
            valid += f" or one of: {shown}{more}"
        raise RuntimeInputError(f"class {label!r} is not valid for this model; use {valid}")


def _batch_bounds(total: int, batch_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + batch_size, total)) for start in range(0, total, batch_size)]


def _fixed_dims(spec: InputSpec) -> tuple[int, ...]:
    dims = spec.shape[1:]
    if not all(isinstance(dim, int) for dim in dims):
        raise MetadataError(
            f"input '{spec.name}' must have fixed sizes after the batch dimension, got {spec.shape}"
        )
    return tuple(dims)
