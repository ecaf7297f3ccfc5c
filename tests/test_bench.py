"""`ganzoo bench` and the plain loops it compares the engine with."""

from __future__ import annotations

import copy
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from distributed_helpers import write_image_folder
from ganzoo.bench import BenchOptions, Row, bench_inference, bench_pipeline, format_report, plain_loop, trainer_settings
from ganzoo.bench.as_run import first_step_time
from ganzoo.bench.parts import Parts, per_step
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer
from ganzoo_plugins.plain_loops.data import Shuffled, fit, to_float


@pytest.mark.parametrize("r1", [{}, {"r1_gamma": 2.0, "r1_interval": 2}], ids=["plain", "lazy-r1"])
def test_dcgan_plain_loop_is_the_engines_step_by_hand(tmp_path, r1):
    """Same weights, batches and noise: pytorch/examples-style steps and engine steps end with the
    same weights (G's step reuses D's fakes on both sides; with R1, on the same D steps)."""
    data = str(write_image_folder(tmp_path / "images", count=16, size=16))
    settings = {"dataset": data, "size": 16, "ngf": 4, "ndf": 4, "latent_dim": 8, "batch_size": 4,
                "ema_half_life": 0, "progress": False, **r1}
    trainer = Trainer(resolve("dcgan", settings), tmp_path / "run")
    initial = {role: copy.deepcopy(m.state_dict()) for role, m in trainer.nets.items()}
    plain_nets = {role: copy.deepcopy(m) for role, m in trainer.nets.items()}
    step = plain_loop(trainer.spec.plugin).updater(plain_nets, trainer_settings(trainer))
    stream = copy.deepcopy(trainer.stream)

    steps = 3 if r1 else 1  # R1 on the first and third D steps, not the second
    for i in range(steps):
        torch.manual_seed(7 + i)
        step(stream.next(4).images)
        torch.manual_seed(7 + i)
        trainer.train_step()
    for role, module in trainer.nets.items():
        for name, ours in module.state_dict().items():
            torch.testing.assert_close(ours, plain_nets[role].state_dict()[name], rtol=1e-5, atol=1e-6, msg=f"{role}.{name}")
        changed = [name for name, value in module.state_dict().items() if not torch.equal(value, initial[role][name])]
        assert changed, f"the step left {role} unchanged"


def test_bench_notes_only_the_switches_a_plain_loop_does_not_implement():
    from ganzoo.bench.common import unmatched_switches

    spec = resolve("dcgan", {"r1_gamma": 1.0, "spectral_norm": True})
    assert unmatched_switches(spec, plain_loop("dcgan")) == ["spectral_norm"]
    assert unmatched_switches(spec, plain_loop("cgan")) == ["r1_gamma", "spectral_norm"]
    assert unmatched_switches(resolve("dcgan", {}), plain_loop("dcgan")) == []


def test_plain_loops_draw_their_own_full_shuffled_batches():
    rows = torch.arange(10.0)
    batches = Shuffled(rows, rows * 2, batch_size=4, seed=0)
    first_epoch = [batches.next() for _ in range(2)]
    assert all(len(a) == 4 and torch.equal(b, a * 2) for a, b in first_epoch)
    seen = torch.cat([a for a, _ in first_epoch])
    assert len(set(seen.tolist())) == 8  # no repeats within an epoch; the last 2 rows are dropped
    assert len(batches.next()[0]) == 4  # a new epoch starts with a new order
    images = to_float(np.full((3, 28, 28), 255, np.uint8))
    assert images.shape == (3, 1, 28, 28) and images.max() == 1.0
    padded = fit(images, 32)
    assert padded.shape == (3, 1, 32, 32) and padded[..., 0, 0].eq(-1).all()


def test_dcgan_plain_loop_trains_on_the_raw_digits():
    loop = plain_loop("dcgan")
    s = SimpleNamespace(latent_dim=8, ngf=4, ndf=4, size=16, channels=1, batch_size=8, seed=0, lr=2e-4, beta1=0.5,
                        beta2=0.999, g_lr=None, d_lr=None)
    nets = loop.networks(s)
    before = [p.detach().clone() for p in nets["G"].parameters()]
    step = loop.make(nets, s, {"images": np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)})
    step()
    assert all(not torch.equal(a, b) for a, b in zip(before, nets["G"].parameters()))


def test_rows_name_a_plugin_and_optionally_a_batch_size():
    from ganzoo.errors import UserError

    assert Row.parse("dcgan@64") == Row("dcgan", 64) and Row.parse(" cgan ") == Row("cgan", None)
    assert Row("dcgan", 64).settings(BenchOptions(overrides={"ngf": 8})) == {"ngf": 8, "batch_size": 64}
    with pytest.raises(UserError, match="PLUGIN@BATCH_SIZE"):
        Row.parse("dcgan@big")


def test_the_first_step_is_found_from_the_first_stats_line(tmp_path):
    # 25 steps of 64 images at 1,600 images/s take 1 s: the loop began 1 s before the line was written.
    (tmp_path / "stats.jsonl").write_text(json.dumps({"step": 25, "images_per_sec": 1600.0, "time": 1000.0}) + "\n")
    assert first_step_time(tmp_path, 64, 25) == pytest.approx(999.0)


def test_part_timers_count_each_part_without_the_parts_it_calls():
    class Work:
        def outer(self):
            time.sleep(0.02)
            self.inner()

        def inner(self):
            time.sleep(0.03)

    parts = Parts()
    parts.wrap(Work, "outer", "outer")
    parts.wrap(Work, "inner", "inner")
    start = time.perf_counter()
    Work().outer()
    total = time.perf_counter() - start
    assert parts.seconds["inner"] >= 0.03 and parts.seconds["outer"] >= 0.02
    assert parts.seconds["outer"] < total - 0.03 + 1e-3
    assert parts.seconds["outer"] + parts.seconds["inner"] == pytest.approx(total, abs=2e-3)
    figures = per_step({"seconds": {"data": 0.5, "start-up: data loading": 2.0},
                        "span": {"first_step": 10.0, "end": 20.0, "steps": 100, "page_faults": 500}}, started=5.0)
    assert figures["data"] == pytest.approx(5.0) and figures["span"] == pytest.approx(100.0)
    assert figures["page faults"] == pytest.approx(5.0)
    assert figures["start-up: imports and the rest"] == pytest.approx(3.0)


@pytest.mark.slow
def test_bench_command_prints_every_table_and_writes_json(tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli.app import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--plugins", "dcgan@8", "--steps", "1", "--rounds", "3", "--warmup", "1", "--run-steps", "3",
        "--run-rounds", "1", "--threads", "1", "--set", "ngf=4", "--set", "ndf=4", "--set", "size=16",
        "--set", "latent_dim=8", "--no-inference", "--no-pipeline", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    (row,) = report["training"]
    assert row["plugin"] == "dcgan" and row["batch_size"] == 8 and row["size"] == 16
    assert row["ganzoo_images_per_sec"] > 0 and row["plain_images_per_sec"] > 0
    assert row["ratio"] == sorted(row["ratio_per_round"])[1]  # the median of three rounds
    assert row["peak_memory_mb"] > 0 and row["threads"] == 1
    (run,) = report["as_run"]
    assert run["steps"] == 3 and run["ganzoo_images_per_sec"] > 0 and run["plain_images_per_sec"] > 0
    assert run["ganzoo_startup_seconds"] > 0 and run["plain_startup_seconds"] > 0
    assert run["ganzoo_terminal_bytes"] > 0  # the progress display drew in the terminal
    assert "--set batch_size=8" in run["ganzoo_command"]
    (parts,) = report["parts"]
    for side in ("ganzoo", "plain"):
        assert parts[side]["backward"] > 0 and parts[side]["span"] > 0 and parts[side]["forward"] > 0
        assert parts[side]["page faults"] >= 0
    assert parts["ganzoo"]["I/O: checkpoints"] > 0 and parts["ganzoo"]["progress display"] > 0
    assert report["machine"]["torch"] == torch.__version__ and report["settings"]["rounds"] == 3
    assert "inference" not in report and "data_pipeline" not in report
    for text in ("train as run", "engine step", "where the time goes", "8 @ 16px", "I/O: checkpoints", "page faults per step"):
        assert text in result.output


@pytest.mark.slow
def test_inference_figures_compare_onnxruntime_with_eager_and_the_machine():
    options = BenchOptions(rounds=1, inference_seconds=0.01, overrides={"ngf": 4, "latent_dim": 8, "size": 16})
    figures = bench_inference(options)
    assert figures["flops_per_image"] > 0
    assert [r["batch"] for r in figures["rows"]] == [1, 64]
    for r in figures["rows"]:
        assert r["eager_ms"] > 0 and r["onnxruntime_ms"] > 0 and r["onnxruntime_gflops"] > 0
        rounding = 0.0005 / r["eager_ms"] + 0.0005 / r["onnxruntime_ms"]  # both are printed to 3 decimals
        assert r["speedup"] == pytest.approx(r["eager_ms"] / r["onnxruntime_ms"], rel=0.01 + rounding)
        assert r["providers"][0] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    sweep = figures["threads_sweep"]
    assert [e["threads"] for e in sweep] == list(range(1, len(sweep) + 1))
    assert all(e["matmul_peak_gflops"] > 0 and e["batch_64_gflops"] > 0 for e in sweep)
    text = format_report({"machine": {"cpu": "cpu", "cpu_cores": 2, "gpu": None, "torch": "t", "onnxruntime": "o",
                                      "ganzoo": "g"}, "training": [], "inference": figures})
    assert "matrix-multiply peak" in text and "closest to the peak" in text


def test_generator_flops_are_counted_per_image():
    from ganzoo.bench.inference import flops_per_image

    # 1x1 -> 4x4 (8 -> 8 channels), then 4x4 -> 8x8 (8 -> 1): each input pixel meets every 4x4 weight
    assert flops_per_image(_two_layer_generator(), 8) == 2 * (8 * 8 * 16 * 1 + 8 * 1 * 16 * 16)


def _two_layer_generator():
    from torch import nn

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.ConvTranspose2d(8, 8, 4, 1, 0, bias=False)
            self.b = nn.ConvTranspose2d(8, 1, 4, 2, 1, bias=False)

        def forward(self, z):
            return self.b(self.a(z[:, :, None, None]))

    return G().eval()


def test_a_plugin_without_a_plain_loop_is_timed_and_reported_na(tmp_path):
    from distributed_helpers import DecoupledGAN
    from ganzoo import registry
    from ganzoo.bench import bench_engine_step

    registry.register(DecoupledGAN)
    data = str(write_image_folder(tmp_path / "images", count=16, size=8))
    options = BenchOptions(steps=1, rounds=1, warmup=0, overrides={"dataset": data, "batch_size": 4, "size": 8})
    row = bench_engine_step(DecoupledGAN.name, options)
    assert row["ganzoo_images_per_sec"] > 0 and row["size"] == 8
    assert row["plain_images_per_sec"] is None and row["ratio"] is None
    text = format_report({"machine": {"cpu": "cpu", "cpu_cores": 2, "gpu": None, "torch": "t", "onnxruntime": "o",
                                      "ganzoo": "g"}, "training": [row]})
    assert "n/a" in text and "no plain loop is registered" in text


def test_pipeline_figure_counts_streamed_images():
    figure = bench_pipeline(BenchOptions(pipeline_images=64, pipeline_size=16), workers=1, batch_size=16)
    assert figure["images_per_sec"] > 0 and figure["workers"] == 1 and figure["size"] == 16
