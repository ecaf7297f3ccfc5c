"""Speed switches (AMP, channels-last, torch.compile, fp16 export) and the streamed folder source."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

from distributed_helpers import write_image_folder
from ganzoo.api import LoadedRun, train
from ganzoo.data.options import DataConfig
from ganzoo.data.sources import epoch_plan
from ganzoo.data.streamed import StreamedSet, make_source, open_folder
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.optimization import resolve_amp
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo
from translation_helpers import assert_resume_is_exact

CPU = torch.device("cpu")
TINY_DCGAN = {"ngf": 4, "ndf": 4, "latent_dim": 8, "size": 16, "progress": False, "checkpoint_every": 2}


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "images", count=20, size=12)


# -- mixed precision, memory format, compile ------------------------------------------------------
def test_amp_is_off_on_the_cpu_and_follows_the_switch_on_cuda():
    for amp in ("auto", "off", "bf16", "fp16"):
        assert resolve_amp(amp, CPU) is None
    cuda = torch.device("cuda")
    assert resolve_amp("fp16", cuda) is torch.float16
    assert resolve_amp("bf16", cuda) is torch.bfloat16
    assert resolve_amp("off", cuda) is None


def test_cpu_training_is_contiguous_by_default_and_keeps_the_gradient_scaler_off(tmp_path, folder):
    spec = resolve("dcgan", {"dataset": str(folder), "amp": "fp16", **TINY_DCGAN})
    trainer = Trainer(spec, tmp_path / "run")
    conv = trainer.nets["D"].features[0].weight
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    assert trainer.optim.amp_dtype is None
    assert not any(scaler.is_enabled() for scaler in trainer.optim.scalers.values())


def test_channels_last_on_the_cpu_trains_with_r1_and_resumes_exactly(tmp_path, folder):
    settings = {"dataset": str(folder), "channels_last": True, "r1_gamma": 1.0, "r1_interval": 2, **TINY_DCGAN}
    trainer = Trainer(resolve("dcgan", settings), tmp_path / "probe")
    for module in (trainer.nets["G"], trainer.nets["D"], trainer.ema["G"].module):
        weights = [p for p in module.parameters() if p.dim() == 4]
        assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    terms = trainer.train_step()
    assert torch.isfinite(terms["D/r1"]) and torch.isfinite(terms["G/loss"])

    straight, _ = assert_resume_is_exact("dcgan", settings, tmp_path, steps=4, preset=None)
    assert straight["ema"], "the run kept no EMA copy to compare"
    # The memory format is a speed choice, not part of the model: a contiguous run from the same
    # seed computes the same function up to float rounding.
    train("dcgan", steps=4, out=tmp_path / "contiguous", overrides={**settings, "channels_last": False})
    contiguous = ckpt.load(ckpt.latest(tmp_path / "contiguous" / "checkpoints"))
    for key, tensor in straight["nets"]["G"].items():
        assert torch.allclose(tensor.float(), contiguous["nets"]["G"][key].float(), atol=1e-4), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_uses_channels_last_and_bf16(tmp_path, folder):
    spec = resolve("dcgan", {"dataset": str(folder), "device": "cuda", **TINY_DCGAN})
    trainer = Trainer(spec, tmp_path / "run")
    assert trainer.nets["D"].features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.optim.amp_dtype in (torch.bfloat16, torch.float16)
    trainer.train_step()


def test_compile_switch_compiles_every_role_in_place(tmp_path, folder, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    spec = resolve("dcgan", {"dataset": str(folder), "compile": True, **TINY_DCGAN})
    trainer = Trainer(spec, tmp_path / "run")
    assert {id(m) for m in compiled} == {id(trainer.nets["G"]), id(trainer.nets["D"])}
    assert trainer.ema["G"].module._compiled_call_impl is None  # the EMA copy runs eagerly
    assert all(not k.startswith("_orig_mod") for k in trainer.state_dict()["nets"]["G"])


@pytest.mark.skipif(os.environ.get("GANZOO_TEST_COMPILE") != "1",
                    reason="torch.compile takes a minute or more per network on a 2-core CPU; set GANZOO_TEST_COMPILE=1")
def test_compiled_training_matches_eager_training(tmp_path, folder):
    base = {"dataset": str(folder), **TINY_DCGAN, "ema_half_life": 0}
    train("dcgan", steps=2, batch_size=4, out=tmp_path / "eager", overrides=base)
    train("dcgan", steps=2, batch_size=4, out=tmp_path / "compiled", overrides={**base, "compile": True})
    a, b = (ckpt.load(ckpt.latest(tmp_path / name / "checkpoints")) for name in ("eager", "compiled"))
    for key, tensor in a["nets"]["G"].items():
        torch.testing.assert_close(tensor, b["nets"]["G"][key], atol=1e-4, rtol=1e-4)


# -- fp16 export --------------------------------------------------------------------------------
def _tiny_run(tmp_path) -> LoadedRun:
    spec = resolve("dcgan", {"ngf": 4, "latent_dim": 8, "size": 16})
    plugin = spec.plugin_cls(spec.model, DataInfo(channels=1, size=16))
    nets = {role: m.eval() for role, m in plugin.build().items()}
    return LoadedRun(tmp_path, spec, plugin, nets, 0, 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_fp16_export_without_a_gpu_converts_on_the_cpu(tmp_path):
    (path,) = _tiny_run(tmp_path).export(tmp_path / "out", precision="fp16")
    assert path.name == "dcgan-generator-fp16.onnx"
    with pytest.raises(UserError, match="precision='int3' is not supported"):
        _tiny_run(tmp_path).export(tmp_path / "out", precision="int3")
    (path,) = _tiny_run(tmp_path).export(tmp_path / "out", precision="fp32")
    assert path.name == "dcgan-generator.onnx"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 graphs are traced and checked on CUDA")
def test_fp16_export_on_cuda_writes_a_half_precision_variant(tmp_path):
    (path,) = _tiny_run(tmp_path).export(tmp_path / "out", precision="fp16")
    assert path.name == "dcgan-generator-fp16.onnx"


# -- streamed folders ---------------------------------------------------------------------------
def test_folders_stream_above_the_memory_threshold_or_when_asked(folder):
    assert isinstance(open_folder(folder, 8, 3, DataConfig(stream_above_mb=1e-4)), StreamedSet)
    assert not isinstance(open_folder(folder, 8, 3, DataConfig()), StreamedSet)
    streamed = open_folder(folder, 8, 3, DataConfig(stream=True))
    assert isinstance(streamed, StreamedSet) and streamed.images.shape == (20, 3, 8, 8)
    assert not isinstance(open_folder(folder, 8, 3, DataConfig(stream=False, stream_above_mb=0)), StreamedSet)


def test_streamed_batches_equal_in_memory_batches_and_resume_exactly(folder):
    memory = open_folder(folder, 8, 3, DataConfig(stream=False))
    streamed = open_folder(folder, 8, 3, DataConfig(stream=True))
    source = lambda data: make_source(data, CPU, 5, True, 0, 1, 6, 0, 4)  # noqa: E731 - flips and crops on
    a, b = source(memory), source(streamed)
    sizes = [3, 4, 7, 4, 3, 7, 4, 7]
    for n in sizes[:4]:
        assert torch.equal(a.next(n)[0], b.next(n)[0])
    saved = b.state_dict()
    resumed = source(streamed)
    resumed.load_state_dict(saved)
    for n in sizes[4:]:  # crosses an epoch boundary (20 images)
        expected = a.next(n)[0]
        assert torch.equal(b.next(n)[0], expected) and torch.equal(resumed.next(n)[0], expected)
    assert resumed.state_dict() == b.state_dict() == a.state_dict()


def test_streamed_training_equals_in_memory_training(tmp_path, folder):
    settings = {"dataset": str(folder), **TINY_DCGAN, "workers": 1}
    train("dcgan", steps=2, batch_size=4, out=tmp_path / "memory", overrides={**settings, "stream": False})
    train("dcgan", steps=2, batch_size=4, out=tmp_path / "streamed", overrides={**settings, "stream": True})
    a, b = (ckpt.load(ckpt.latest(tmp_path / name / "checkpoints")) for name in ("memory", "streamed"))
    assert a["data"] == b["data"]
    for role in a["nets"]:
        for key, tensor in a["nets"][role].items():
            assert torch.equal(tensor, b["nets"][role][key]), f"{role}.{key}"


def test_streamed_ranks_share_the_one_process_order(folder):
    streamed = open_folder(folder, 8, 3, DataConfig(stream=True))
    one = make_source(streamed, CPU, 1, False, 0, 1, None, 0, 4)
    ranks = [make_source(streamed, CPU, 1, False, r, 2, None, 0, 2) for r in range(2)]
    for _ in range(3):
        together = one.next(4)[0]
        parts = [rank.next(2)[0] for rank in ranks]
        assert torch.equal(torch.cat(parts)[[0, 2, 1, 3]], together)  # rank r holds items r, r+2, ...


def test_rank_shares_are_equal_and_disjoint():
    shares = [epoch_plan(7, seed=3, epoch=0, hflip=False, rank=r, world_size=2)[0] for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 3
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    with pytest.raises(UserError, match="cannot be shared by 4 processes"):
        epoch_plan(3, 0, 0, False, 0, 4)


def test_unreadable_streamed_images_are_skipped_or_refused_when_strict(folder):
    (folder / "broken.png").write_bytes(b"not an image")
    data = open_folder(folder, 8, 3, DataConfig(stream=True))
    broken = [i for i, p in enumerate(data.items.paths) if p.name == "broken.png"][0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = data.items[broken]
    assert image.shape == (3, 8, 8) and any("skipping unreadable" in str(w.message) for w in caught)
    strict = open_folder(folder, 8, 3, DataConfig(stream=True, strict=True))
    with pytest.raises(UserError, match="broken.png"):
        strict.items[broken]
