"""Torch-free deploy runtime: run an exported ganzoo .onnx file with onnxruntime + numpy.

Only onnxruntime's public Python API is used, so any onnxruntime build (CPU, GPU, DirectML,
OpenVINO...) that provides the ``onnxruntime`` module works.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ganzoo_export.errors import MetadataError, RuntimeInputError
from ganzoo_export.images import from_uint8, to_uint8
from ganzoo_export.latents import check_seed, latents
from ganzoo_export.metadata import LATENT_DISTRIBUTIONS, InputSpec, ModelMetadata
from ganzoo_export.tiling import translate_image

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_TILE = 512  # tile side for translators whose metadata names no max_size (format 1)
DEFAULT_OVERLAP = 32  # pixels neighbouring tiles share; the outer quarter of it is discarded
# onnxruntime's intra-op threads on the CPU when the caller names none (None: the physical cores).
# One: on the 2-core machine it was 1.6-2x faster than two at batch 1 and never slower at batch 64
# or on a 256 px translation (docs/benchmarks.md#onnxruntime-threads).
DEFAULT_THREADS: int | None = 1
MEMORY_SHARE = 0.5  # generate() refuses results larger than this share of the available memory
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
        return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested providers (if installed), else CUDA when a GPU is usable, else CPU."""
    available = ort.get_available_providers()
    if requested:
        unknown = [name for name in requested if name not in available]
        if unknown:
            raise RuntimeInputError(f"execution provider(s) {unknown} are not installed; choose from {available}")
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


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _is_onnxruntime_error(exc: Exception) -> bool:
    # onnxruntime's exception classes live in its private binding module; telling them apart by
    # module keeps this file on the public API.
    return type(exc).__module__.startswith("onnxruntime")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or DEFAULT_THREADS or physical_cores()
    options.log_severity_level = 3  # hide optimiser warnings that are not actionable for users
    return options


def open_session(path: Path, providers: list[str], quiet: bool, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime session for ``path``, or a one-line error for a missing, empty or broken file."""
    if not path.is_file():
        raise RuntimeInputError(f"model file '{path}' does not exist; check the path")
    if path.stat().st_size == 0:
        raise RuntimeInputError(f"model file '{path}' is empty (0 bytes); export or download it again")
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
    except Exception as exc:
        if not _is_onnxruntime_error(exc):
            raise
        raise RuntimeInputError(
            f"'{path}' is not a valid ONNX model, or is truncated ({_first_line(exc)}); "
            "export or download it again"
        ) from exc
    finally:
        if silence:
            ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)


def read_metadata(session: ort.InferenceSession) -> ModelMetadata:
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (numpy integers too, bools not), or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RuntimeInputError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise RuntimeInputError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


class GanzooModel:
    """An exported generator or translator, driven by the ganzoo metadata inside the file."""

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int | None = None):
        """``threads``: onnxruntime's intra-op threads on the CPU (default ``DEFAULT_THREADS``)."""
        self.path = Path(path)
        chosen = choose_providers(providers)
        self.session = open_session(self.path, chosen, quiet=providers is None, threads=threads)
        self.providers: list[str] = self.session.get_providers()
        if providers is not None and CUDA in chosen and CUDA not in self.providers:
            raise RuntimeInputError(
                "CUDAExecutionProvider could not start (see the onnxruntime log above for the "
                "missing library); install matching CUDA/cuDNN or use CPUExecutionProvider"
            )
        self.metadata = read_metadata(self.session)
        self._input_dtypes = {item.name: _ORT_DTYPES[item.type] for item in self.session.get_inputs()}
        self._output_names = [item.name for item in self.session.get_outputs()]
        missing = [spec.name for spec in self.metadata.inputs if spec.name not in self._input_dtypes]
        if missing:
            raise MetadataError(f"metadata names inputs {missing} that the graph lacks; re-export the model")
        self._on_cuda = CUDA in self.providers

    # -- generators -----------------------------------------------------------------------------
    def generate(
        self, n: int, seed: int = 0, labels: Label | Sequence[Label] | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """``n`` images as NHWC uint8; the same seed gives the same images at any batch size.

        ``labels`` (conditional models): one class for all images or one per image, as indices
        or class names; left out, the images cycle through the classes. Results that would not
        fit in memory are refused: ``iter_generate`` yields them batch by batch instead.
        """
        n = check_count("n", n)
        self._check_fits_in_memory(n)
        result: np.ndarray | None = None
        for start, images in self.iter_generate(n, seed, labels, batch_size):
            if result is None:
                result = np.empty((n, *images.shape[1:]), dtype=np.uint8)
            result[start : start + len(images)] = images
        assert result is not None
        return result

    def iter_generate(
        self, n: int, seed: int = 0, labels: Label | Sequence[Label] | None = None, batch_size: int = 64
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(index of the first image, NHWC uint8 batch) for ``n`` images, one batch at a time.

        Latents are drawn per batch (they depend only on the seed and the image's index), so
        memory stays bounded by ``batch_size`` however large ``n`` is.
        """
        self._require_task("generate")
        n, batch_size, seed = check_count("n", n), check_count("batch_size", batch_size), check_seed(seed)
        latent = self._spec("latent")
        if self.metadata.latent_distribution not in LATENT_DISTRIBUTIONS:
            raise MetadataError(
                f"the model wants '{self.metadata.latent_distribution}' latents; this runtime draws "
                f"{', '.join(LATENT_DISTRIBUTIONS)}: upgrade ganzoo-runtime"
            )
        label_spec = self.metadata.input_with_role("label")
        if label_spec is None and labels is not None:
            raise RuntimeInputError("this model is unconditional; leave labels out")
        label_of = self._label_picker(labels, n) if label_spec is not None else None
        shape = _fixed_dims(latent)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            feeds = {latent.name: latents(seed, start, stop - start, shape)}
            if label_spec is not None and label_of is not None:
                feeds[label_spec.name] = np.array([label_of(i) for i in range(start, stop)], dtype=np.int64)
            yield start, to_uint8(self._run(feeds))

    def _check_fits_in_memory(self, n: int) -> None:
        meta = self.metadata
        if meta.height is None or meta.width is None:
            return
        needed = n * meta.height * meta.width * meta.channels
        available = available_memory()
        if available is not None and needed > MEMORY_SHARE * available:
            raise RuntimeInputError(
                f"{n:,} images of {meta.height}x{meta.width}x{meta.channels} need {needed / 2**30:.1f} GiB, "
                f"more than half the {available / 2**30:.1f} GiB of free memory; draw them in batches "
                "with iter_generate() (or write them to a folder: --out DIR)"
            )

    def _label_picker(self, labels: Label | Sequence[Label] | None, n: int):
        """image index -> class index, without building a list of n labels for one class."""
        num_classes = self.metadata.num_classes
        if num_classes is None:
            raise MetadataError("the model takes labels but its metadata lacks ganzoo.num_classes; re-export it")
        if labels is None:
            return lambda index: index % num_classes
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence | np.ndarray):
            fixed = self.label_index(labels)
            return lambda index: fixed
        chosen = [self.label_index(label) for label in labels]
        if len(chosen) != n:
            raise RuntimeInputError(f"got {len(chosen)} labels for {n} images; give one label or one per image")
        return chosen.__getitem__

    def label_index(self, label: Label) -> int:
        """A class index from an index or a class name (digit strings count as indices)."""
        names = self.metadata.class_names or []
        num_classes = self.metadata.num_classes or 0
        if isinstance(label, str) and label in names:
            return names.index(label)
        if isinstance(label, str) and label.strip().lstrip("-").isdigit():
            label = int(label)
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < num_classes:
            return int(label)
        valid = f"an index in 0..{num_classes - 1}"
        if names:
            shown = ", ".join(names[:_NAMES_SHOWN_IN_ERRORS])
            more = ", ..." if len(names) > _NAMES_SHOWN_IN_ERRORS else ""
            valid += f" or one of: {shown}{more}"
        raise RuntimeInputError(f"class {label!r} is not valid for this model; use {valid}")

    # -- translators ----------------------------------------------------------------------------
    def translate(self, image: np.ndarray, tile: int | None = None, overlap: int | None = None) -> np.ndarray:
        """Translate an HWC (or HW grayscale) uint8 image at its own resolution to HWC uint8.

        ``tile`` (default: the model's max_size): larger images run as overlapping tiles;
        ``overlap`` (default: ``DEFAULT_OVERLAP``, at most a quarter of the tile) is cross-faded.
        """
        self._require_task("translate")
        meta = self.metadata
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        if image.dtype != np.uint8 or image.ndim != 3:
            raise RuntimeInputError(f"expected an HWC uint8 image, got {image.dtype} of shape {image.shape}")
        if image.shape[2] != meta.input_channels:
            raise RuntimeInputError(
                f"the model takes {meta.input_channels}-channel images but this one has {image.shape[2]}; "
                f"load it as {'grayscale' if meta.input_channels == 1 else 'RGB'}"
            )
        multiple = meta.size_multiple or 1
        smallest = max(meta.min_size or 1, multiple)
        padded = [-(-side // multiple) * multiple for side in image.shape[:2]]
        if min(padded) < smallest:
            raise RuntimeInputError(
                f"the image is {image.shape[1]}x{image.shape[0]} pixels; this model needs at least "
                f"{smallest}x{smallest}: upscale it first"
            )
        tile = (meta.max_size or DEFAULT_TILE) if tile is None else check_count("tile", tile)
        if tile // multiple * multiple < smallest:
            raise RuntimeInputError(f"tile {tile} is smaller than the {smallest} pixels this model needs")
        if overlap is None:
            overlap = min(DEFAULT_OVERLAP, tile // multiple * multiple // 4)
        spec = self._spec("image")
        if tuple(spec.shape[2:]) != ("height", "width"):
            raise MetadataError(
                f"input '{spec.name}' has fixed size {spec.shape[2:]}; re-export the translator "
                "with dynamic height and width"
            )
        translated = translate_image(
            from_uint8(image),
            lambda batch: self._run({spec.name: batch}),
            multiple,
            tile=tile,
            overlap=overlap,
            padding_mode=meta.padding_mode or "reflect",
        )
        return to_uint8(translated.transpose(2, 0, 1)[None])[0]

    # -- any model ------------------------------------------------------------------------------
    def run_raw(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the graph on named numpy inputs; returns every output by name."""
        unknown = sorted(set(inputs) - set(self._input_dtypes))
        if unknown:
            raise RuntimeInputError(f"unknown input(s) {unknown}; the model takes {sorted(self._input_dtypes)}")
        feeds = {name: np.asarray(value) for name, value in inputs.items()}
        outputs = self.session.run(None, feeds)
        return dict(zip(self._output_names, outputs))

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {
            name: np.ascontiguousarray(value, dtype=self._input_dtypes[name]) for name, value in feeds.items()
        }
        try:
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
        except Exception as exc:
            if not _is_onnxruntime_error(exc):
                raise
            shapes = {name: value.shape for name, value in feeds.items()}
            raise RuntimeInputError(
                f"onnxruntime failed on inputs of shape {shapes} ({_first_line(exc)}); "
                "check the input against `ganzoo-run info` for this model"
            ) from exc

    def _require_task(self, task: str) -> None:
        if self.metadata.task != task:
            other = "translate" if task == "generate" else "generate"
            raise RuntimeInputError(f"'{self.path.name}' is a {self.metadata.task} model; use {other} instead of {task}")

    def _spec(self, role: str) -> InputSpec:
        spec = self.metadata.input_with_role(role)
        if spec is None:
            raise MetadataError(f"the model's metadata declares no '{role}' input; re-export it")
        return spec


def _fixed_dims(spec: InputSpec) -> tuple[int, ...]:
    dims = spec.shape[1:]
    if not all(isinstance(dim, int) for dim in dims):
        raise MetadataError(f"input '{spec.name}' must have fixed sizes after the batch dimension, got {spec.shape}")
    return tuple(int(dim) for dim in dims)
