"""ONNX export with parity checks, the torch-free runtime, tiling and image helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.export import ExportError, ExportParityError
from ganzoo.export.trace import export_onnx
from ganzoo_export import GanzooModel, InputSpec, MetadataError, ModelMetadata, RuntimeInputError, runtime
from ganzoo_export.images import from_uint8, load_image_exif, make_grid, save_image, to_uint8
from ganzoo_export.latents import latents
from ganzoo_export.tiling import translate_image
from tiny_models import (
    BATCH_AXES,
    CLASS_NAMES,
    LATENT_DIM,
    TinyConditionalGenerator,
    TinyGenerator,
    TinyTranslator,
    conditional_metadata,
    export_conditional,
    export_generator,
    export_translator,
    generator_metadata,
    translator_metadata,
)


class SignBranch(nn.Module):
    """Data-dependent Python branch: tracing keeps only the branch the example took."""

    def forward(self, z):
        return z if bool(z.mean() > 0) else -z


class FixedBatchReshape(nn.Module):
    """int() of a shape is frozen by tracing, so other batch sizes break the graph."""

    def forward(self, z):
        return torch.tanh(z.reshape(int(z.shape[0]), LATENT_DIM, 1, 1))


def weight_bytes(path) -> int:
    return sum(len(init.raw_data) for init in onnx.load(str(path)).graph.initializer)


def input_dims(proto: onnx.ModelProto) -> list[int | str]:
    shape = proto.graph.input[0].type.tensor_type.shape
    return [dim.dim_param or dim.dim_value for dim in shape.dim]


@pytest.fixture(scope="module")
def generator_export(tmp_path_factory):
    torch.manual_seed(0)
    module = TinyGenerator()
    path = tmp_path_factory.mktemp("generator") / "dcgan.onnx"
    report = export_generator(module, path)
    return module.eval(), path, report


@pytest.fixture(scope="module")
def conditional_export(tmp_path_factory):
    torch.manual_seed(1)
    module = TinyConditionalGenerator()
    path = tmp_path_factory.mktemp("conditional") / "cgan.onnx"
    export_conditional(module, path)
    return module.eval(), path


@pytest.fixture(scope="module")
def translator_export(tmp_path_factory):
    torch.manual_seed(2)
    module = TinyTranslator()
    path = tmp_path_factory.mktemp("translator") / "cyclegan.onnx"
    report = export_translator(module, path)
    return module.eval(), path, report


# --- export --------------------------------------------------------------------------------------


def test_generator_export_is_one_checked_file_with_dynamic_batch(generator_export):
    _, path, report = generator_export
    assert report.path == path
    assert [item.name for item in path.parent.iterdir()] == [path.name]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert not any(
        tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in proto.graph.initializer
    )
    assert input_dims(proto) == ["batch", LATENT_DIM]
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["ganzoo.format"] == "2"
    assert props["ganzoo.precision"] == "fp32"
    assert ModelMetadata.from_props(props) == generator_metadata()


def test_generator_parity_at_batch_1_and_5(generator_export):
    module, path, report = generator_export
    assert report.sizes_checked == [((2, LATENT_DIM),), ((1, LATENT_DIM),), ((5, LATENT_DIM),)]
    assert report.max_abs_error <= 1e-4
    z = np.random.default_rng(3).standard_normal((5, LATENT_DIM), dtype=np.float32)
    outputs = GanzooModel(path).run_raw(z=z)
    with torch.no_grad():
        expected = module(torch.from_numpy(z)).numpy()
    assert list(outputs) == ["image"]
    np.testing.assert_allclose(outputs["image"], expected, atol=1e-4)


def test_export_leaves_callers_module_untouched(tmp_path):
    module = TinyGenerator().train()
    before = {name: value.clone() for name, value in module.state_dict().items()}
    export_onnx(
        module,
        (torch.randn(2, LATENT_DIM),),
        tmp_path / "g.onnx",
        input_names=["z"],
        dynamic_axes=BATCH_AXES,
        metadata=generator_metadata(),
    )
    assert module.training
    assert all(torch.equal(before[name], value) for name, value in module.state_dict().items())


def test_parity_mismatch_raises_and_leaves_no_file(tmp_path):
    path = tmp_path / "out" / "broken.onnx"
    positive = torch.rand(2, LATENT_DIM) + 0.1
    with pytest.warns(torch.jit.TracerWarning):
        with pytest.raises(ExportParityError, match="differs from the PyTorch module"):
            export_onnx(
                SignBranch(),
                (positive,),
                path,
                input_names=["z"],
                dynamic_axes=BATCH_AXES,
                metadata=generator_metadata(),
                parity_inputs=[(-positive,)],
            )
    assert list(path.parent.iterdir()) == []


def test_graph_that_fails_at_another_batch_size_raises_parity_error(tmp_path):
    path = tmp_path / "fixed.onnx"
    with pytest.warns(torch.jit.TracerWarning):
        with pytest.raises(ExportParityError, match=r"fails at input shapes \(\(5, 8\),\)"):
            export_onnx(
                FixedBatchReshape(),
                (torch.randn(2, LATENT_DIM),),
                path,
                input_names=["z"],
                dynamic_axes=BATCH_AXES,
                metadata=generator_metadata(),
                parity_inputs=[(torch.randn(5, LATENT_DIM),)],
            )
    assert list(tmp_path.iterdir()) == []


def test_export_rejects_metadata_naming_other_inputs(tmp_path):
    with pytest.raises(ValueError, match="must equal input_names"):
        export_onnx(
            TinyGenerator(),
            (torch.randn(2, LATENT_DIM),),
            tmp_path / "g.onnx",
            input_names=["noise"],
            dynamic_axes={"noise": {0: "batch"}},
            metadata=generator_metadata(),
        )


def test_export_rejects_a_name_used_for_input_and_output(tmp_path):
    with pytest.raises(ValueError, match=r"\['image'\] are both inputs and outputs"):
        export_onnx(
            TinyTranslator(),
            (torch.randn(1, 3, 8, 8),),
            tmp_path / "t.onnx",
            input_names=["image"],
            output_names=["image"],
            dynamic_axes={"image": {0: "batch"}},
            metadata=translator_metadata(),
        )


class IgnoresLabel(nn.Module):
    def forward(self, z, label):
        return torch.tanh(z)


def test_export_refuses_a_graph_that_dropped_an_unused_input(tmp_path):
    with pytest.raises(ExportError, match=r"takes inputs \['z'\] instead of \['z', 'label'\]"):
        export_onnx(
            IgnoresLabel(),
            (torch.randn(2, LATENT_DIM), torch.tensor([0, 1])),
            tmp_path / "c.onnx",
            input_names=["z", "label"],
            dynamic_axes=BATCH_AXES,
            metadata=conditional_metadata(),
        )
    assert list(tmp_path.iterdir()) == []


def test_fp16_export_runs_on_the_cpu_with_float32_io(tmp_path, generator_export):
    module, fp32_path, _ = generator_export
    path = tmp_path / "g16.onnx"
    report = export_generator(module, path, precision="fp16")
    assert 0 < report.max_abs_error <= 1e-2  # not bit-equal: the weights really are float16
    proto = onnx.load(str(path))
    assert {init.data_type for init in proto.graph.initializer} >= {onnx.TensorProto.FLOAT16}
    model = GanzooModel(path, providers=["CPUExecutionProvider"])
    assert model.metadata.precision == "fp16"
    assert [item.type for item in model.session.get_inputs()] == ["tensor(float)"]
    assert weight_bytes(path) <= 0.55 * weight_bytes(fp32_path)
    full = GanzooModel(fp32_path).generate(6, seed=3)
    assert np.abs(model.generate(6, seed=3).astype(int) - full.astype(int)).max() <= 2


def test_int8_export_is_calibrated_and_checked_on_the_cpu(tmp_path, translator_export):
    module, fp32_path, _ = translator_export
    rng = np.random.default_rng(0)
    # Smooth images, like real ones, so the calibrated ranges fit the parity inputs too.
    smooth = lambda n, h, w: np.repeat(np.repeat(rng.uniform(-1, 1, (n, 3, h // 4, w // 4)), 4, 2), 4, 3)  # noqa: E731
    calibration = [{"image": smooth(4, 16, 16).astype(np.float32)} for _ in range(4)]
    path = tmp_path / "t8.onnx"
    report = export_onnx(
        module,
        (torch.from_numpy(smooth(1, 16, 16).astype(np.float32)),),
        path,
        input_names=["image"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
        output_names=["translated"],
        metadata=translator_metadata(),
        parity_inputs=[(torch.from_numpy(smooth(2, 24, 32).astype(np.float32)),)],
        precision="int8",
        calibration=calibration,
    )
    assert report.psnr_db >= 20.0
    proto = onnx.load(str(path))
    assert "QuantizeLinear" in {node.op_type for node in proto.graph.node}
    model = GanzooModel(path)
    assert model.metadata.precision == "int8"
    assert model.translate(np.zeros((20, 12, 3), np.uint8)).shape == (20, 12, 3)
    with pytest.raises(ValueError, match="calibration feeds"):
        export_onnx(
            module, (torch.zeros(1, 3, 16, 16),), tmp_path / "x.onnx", input_names=["image"],
            dynamic_axes={}, output_names=["translated"], metadata=translator_metadata(), precision="int8",
        )


@pytest.mark.skipif(
    not (torch.cuda.is_available() and runtime.cuda_device_present()), reason="needs a CUDA GPU"
)
def test_fp16_export_runs_on_cuda_with_float32_io(tmp_path):
    path = tmp_path / "g16.onnx"
    report = export_onnx(
        TinyGenerator(),
        (torch.randn(2, LATENT_DIM),),
        path,
        input_names=["z"],
        dynamic_axes=BATCH_AXES,
        metadata=generator_metadata(),
        parity_inputs=[(torch.randn(5, LATENT_DIM),)],
        precision="fp16",
    )
    assert report.max_abs_error <= 1e-2
    model = GanzooModel(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.metadata.precision == "fp16"
    assert model.generate(3).shape == (3, 16, 16, 1)


# --- conditional generator ------------------------------------------------------------------------


def test_conditional_generator_takes_labels_by_index_and_by_name(conditional_export):
    module, path = conditional_export
    model = GanzooModel(path)
    assert model.metadata.class_names == CLASS_NAMES
    by_index = model.generate(4, seed=7, labels=[0, 2, 1, 1])
    by_name = model.generate(4, seed=7, labels=["zero", "two", "one", "1"])
    np.testing.assert_array_equal(by_index, by_name)
    z = latents(7, 0, 4, (LATENT_DIM,))
    with torch.no_grad():
        expected = to_uint8(module(torch.from_numpy(z), torch.tensor([0, 2, 1, 1])).numpy())
    assert np.abs(by_index.astype(int) - expected.astype(int)).max() <= 1
    one_label = model.generate(3, seed=7, labels="two")
    np.testing.assert_array_equal(one_label, model.generate(3, seed=7, labels=[2, 2, 2]))
    cycled = model.generate(4, seed=7)
    np.testing.assert_array_equal(cycled, model.generate(4, seed=7, labels=[0, 1, 2, 0]))


@pytest.mark.parametrize("bad", [3, -1, "three", True])
def test_conditional_generator_rejects_invalid_class(conditional_export, bad):
    model = GanzooModel(conditional_export[1])
    valid = r"use an index in 0\.\.2 or one of: zero, one, two"
    with pytest.raises(RuntimeInputError, match=valid):
        model.generate(2, labels=bad)


def test_label_count_must_match(conditional_export):
    with pytest.raises(RuntimeInputError, match="3 labels for 2 images"):
        GanzooModel(conditional_export[1]).generate(2, labels=[0, 1, 2])


# --- runtime -------------------------------------------------------------------------------------


def test_generate_is_seeded_and_independent_of_batch_size(generator_export):
    model = GanzooModel(generator_export[1])
    images = model.generate(5, seed=11, batch_size=2)
    assert images.shape == (5, 16, 16, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.generate(5, seed=11, batch_size=64))
    assert not np.array_equal(images, model.generate(5, seed=12))


def test_generator_model_refuses_translation_and_labels(generator_export):
    model = GanzooModel(generator_export[1])
    with pytest.raises(RuntimeInputError, match="is a generate model; use generate"):
        model.translate(np.zeros((8, 8, 1), np.uint8))
    with pytest.raises(RuntimeInputError, match="unconditional"):
        model.generate(2, labels=0)
    with pytest.raises(RuntimeInputError, match="unknown input"):
        model.run_raw(noise=np.zeros((1, LATENT_DIM), np.float32))


def test_runtime_rejects_files_without_ganzoo_metadata(tmp_path, generator_export):
    proto = onnx.load(str(generator_export[1]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save_model(proto, str(bare))
    with pytest.raises(MetadataError, match="no 'ganzoo.format' metadata"):
        GanzooModel(bare)
    not_onnx = tmp_path / "text.onnx"
    not_onnx.write_text("not a model")
    with pytest.raises(RuntimeInputError, match="not a valid ONNX model"):
        GanzooModel(not_onnx)
    with pytest.raises(RuntimeInputError, match="does not exist"):
        GanzooModel(tmp_path / "missing.onnx")


def test_choose_providers(monkeypatch):
    available = ort.get_available_providers()
    monkeypatch.setattr(runtime, "cuda_device_present", lambda: False)
    assert runtime.choose_providers() == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        monkeypatch.setattr(runtime, "cuda_device_present", lambda: True)
        assert runtime.choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert runtime.choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeInputError, match="not installed"):
        runtime.choose_providers(["NoSuchExecutionProvider"])


def test_runtime_works_where_torch_cannot_be_imported(generator_export):
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        from ganzoo_export.runtime import GanzooModel
        model = GanzooModel({str(generator_export[1])!r})
        images = model.generate(3, seed=0)
        print(json.dumps({{"plugin": model.metadata.plugin, "shape": list(images.shape),
                          "dtype": str(images.dtype), "providers": model.providers}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["plugin"] == "dcgan"
    assert result["shape"] == [3, 16, 16, 1] and result["dtype"] == "uint8"
    if not runtime.cuda_device_present():
        assert result["providers"] == ["CPUExecutionProvider"]
        assert done.stderr == ""  # no CUDA-fallback error spam on CPU-only machines


def test_physical_cores_is_within_usable_cpus():
    assert 1 <= runtime.physical_cores() <= len(os.sched_getaffinity(0))


# --- translator ----------------------------------------------------------------------------------


def test_translator_has_dynamic_size_and_parity_at_two_sizes(translator_export):
    _, path, report = translator_export
    assert report.sizes_checked == [((1, 3, 16, 16),), ((2, 3, 24, 32),), ((1, 3, 10, 6),)]
    assert report.max_abs_error <= 1e-4
    proto = onnx.load(str(path))
    assert input_dims(proto) == ["batch", 3, "height", "width"]
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["ganzoo.height"] == "dynamic" and props["ganzoo.size_multiple"] == "2"


def test_translate_keeps_odd_image_size_and_matches_torch(translator_export):
    module, path, _ = translator_export
    model = GanzooModel(path)
    image = np.random.default_rng(4).integers(0, 256, (21, 15, 3), dtype=np.uint8)
    translated = model.translate(image)
    assert translated.shape == (21, 15, 3) and translated.dtype == np.uint8
    padded = np.pad(from_uint8(image), ((0, 1), (0, 1), (0, 0)), mode="reflect")
    with torch.no_grad():
        expected = module(torch.from_numpy(padded.transpose(2, 0, 1)[None].copy())).numpy()
    expected = to_uint8(expected)[0, :21, :15]
    assert np.abs(translated.astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(RuntimeInputError, match="takes 3-channel images but this one has 1"):
        model.translate(image[:, :, 0])
    with pytest.raises(RuntimeInputError, match="is a translate model"):
        model.generate(1)


# --- tiling --------------------------------------------------------------------------------------


def local_mean_3x3(batch: np.ndarray) -> np.ndarray:
    padded = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = batch.shape[2:]
    return sum(
        padded[:, :, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)
    ) / np.float32(9)


def test_tiling_identity_is_exact():
    image = np.random.default_rng(5).uniform(-1, 1, (70, 90, 3)).astype(np.float32)
    tiled = translate_image(image, lambda batch: batch, size_multiple=4, tile=32, overlap=8)
    np.testing.assert_array_equal(tiled, image)


def test_tiled_local_filter_matches_untiled_everywhere():
    image = np.random.default_rng(6).uniform(-1, 1, (70, 90, 2)).astype(np.float32)
    seen = []

    def recording_mean(batch):
        seen.append(batch.shape)
        return local_mean_3x3(batch)

    tiled = translate_image(image, recording_mean, size_multiple=4, tile=32, overlap=8)
    untiled = translate_image(image, local_mean_3x3, size_multiple=4, tile=512)
    assert len(seen) > 1 and all(shape[2] <= 32 and shape[3] <= 32 for shape in seen)
    assert all(shape[2] % 4 == 0 and shape[3] % 4 == 0 for shape in seen)
    np.testing.assert_allclose(tiled, untiled, atol=1e-5)


def test_tiling_without_blend_margin_would_show_seams():
    """Guards the test above: a hard seam (overlap 0) does differ from the untiled result."""
    image = np.random.default_rng(6).uniform(-1, 1, (70, 90, 2)).astype(np.float32)
    tiled = translate_image(image, local_mean_3x3, size_multiple=4, tile=32, overlap=0)
    untiled = translate_image(image, local_mean_3x3, size_multiple=4, tile=512)
    assert np.abs(tiled - untiled).max() > 1e-3


def test_tiling_pads_odd_sizes_and_crops_back():
    image = np.random.default_rng(7).uniform(-1, 1, (13, 7, 1)).astype(np.float32)
    seen = []

    def doubling(batch):
        seen.append(batch.shape)
        return batch * 2

    result = translate_image(image, doubling, size_multiple=8)
    assert seen == [(1, 1, 16, 8)]
    assert result.shape == (13, 7, 1)
    np.testing.assert_array_equal(result, image * 2)


def test_tiling_validates_arguments():
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        translate_image(image, lambda batch: batch, size_multiple=4, tile=16, overlap=16)
    with pytest.raises(ValueError, match="keep the batch size, height and width"):
        translate_image(image, lambda batch: batch[:, :, :4], size_multiple=4)


# --- metadata ------------------------------------------------------------------------------------


def test_metadata_props_are_strings_and_round_trip():
    metadata = conditional_metadata()
    props = metadata.to_props()
    assert all(isinstance(value, str) for value in props.values())
    assert props["ganzoo.value_range"] == "[-1, 1]"
    assert props["ganzoo.layout"] == "NCHW" and props["ganzoo.color"] == "grayscale"
    assert props["ganzoo.num_classes"] == "3"
    assert json.loads(props["ganzoo.class_names"]) == CLASS_NAMES
    label_input = {"name": "label", "role": "label", "shape": ["batch"]}
    assert json.loads(props["ganzoo.inputs"])[1] == label_input
    assert props["ganzoo.extra.dataset"] == "digits"
    assert ModelMetadata.from_props(props) == metadata
    translator = translator_metadata()
    assert ModelMetadata.from_props(translator.to_props()) == translator
    assert translator.to_props()["ganzoo.color"] == "RGB"


def test_metadata_rejects_unknown_format_and_bad_values():
    props = generator_metadata().to_props()
    with pytest.raises(MetadataError, match="format 3 is not supported"):
        ModelMetadata.from_props({**props, "ganzoo.format": "3"})
    with pytest.raises(MetadataError, match="malformed"):
        ModelMetadata.from_props({**props, "ganzoo.channels": "three"})
    with pytest.raises(MetadataError, match="lacks"):
        ModelMetadata.from_props({k: v for k, v in props.items() if k != "ganzoo.task"})
    with pytest.raises(MetadataError, match="role"):
        InputSpec("z", "noise", ("batch", 8))
    with pytest.raises(MetadataError, match="2 class names given for 3 classes"):
        generator_metadata(num_classes=3, class_names=["a", "b"])


# --- images --------------------------------------------------------------------------------------


def test_uint8_conversions_round_trip_and_clip():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    as_float = from_uint8(levels)
    assert as_float.dtype == np.float32 and as_float.min() == -1.0 and as_float.max() == 1.0
    np.testing.assert_array_equal(to_uint8(as_float.transpose(2, 0, 1)[None])[0], levels)
    clipped = to_uint8(np.array([-3.0, 0.0, 5.0], np.float32).reshape(1, 3, 1, 1))
    assert clipped.reshape(-1).tolist() == [0, 128, 255]


def test_make_grid_places_images_with_padding():
    images = np.stack([np.full((3, 4, 3), value, np.uint8) for value in (10, 20, 30)])
    grid = make_grid(images, nrow=2, padding=1)
    assert grid.shape == (1 + 2 * 4, 1 + 2 * 5, 3)
    assert (grid[1:4, 1:5] == 10).all() and (grid[1:4, 6:10] == 20).all()
    assert (grid[5:8, 1:5] == 30).all() and (grid[5:8, 6:10] == 0).all()
    assert (grid[0] == 0).all() and (grid[:, 5] == 0).all()


def test_save_image_writes_grayscale_as_l_and_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    with Image.open(save_image(gray, tmp_path / "sub" / "gray.png")) as saved:
        assert saved.mode == "L"
        np.testing.assert_array_equal(np.asarray(saved), gray[:, :, 0])
    rgb = np.zeros((3, 4, 3), np.uint8)
    with Image.open(save_image(rgb, tmp_path / "rgb.png")) as saved:
        assert saved.mode == "RGB"


def test_load_image_respects_exif_orientation(tmp_path):
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[0, 0] = 255  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", exif=exif, quality=100)
    upright = load_image_exif(tmp_path / "photo.jpg", channels=3)
    assert upright.shape == (4, 2, 3)
    assert upright[0, 1].mean() > 200  # the marker moved to the top-right corner
    gray = load_image_exif(tmp_path / "photo.jpg", channels=1)
    assert gray.shape == (4, 2, 1)
    (tmp_path / "not_image.png").write_text("text")
    with pytest.raises(RuntimeInputError, match="not an image Pillow can read"):
        load_image_exif(tmp_path / "not_image.png", channels=3)
