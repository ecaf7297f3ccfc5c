"""`ganzoo bench` and the plain loop it compares the engine with."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from distributed_helpers import write_image_folder
from ganzoo.bench import BenchOptions, bench_inference, bench_pipeline, format_report, plain_loop
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import Trainer


def test_dcgan_plain_loop_is_the_engines_step_by_hand(tmp_path):
    """Same weights, batch and noise: one plain step and one engine step end with the same weights."""
    data = str(write_image_folder(tmp_path / "images", count=16, size=16))
    settings = {"dataset": data, "size": 16, "ngf": 4, "ndf": 4, "latent_dim": 8, "batch_size": 4,
                "ema_half_life": 0, "progress": False}
    trainer = Trainer(resolve("dcgan", settings), tmp_path / "run")
    initial = {role: copy.deepcopy(m.state_dict()) for role, m in trainer.nets.items()}
    plain_nets = {role: copy.deepcopy(m) for role, m in trainer.nets.items()}
    step = plain_loop(trainer.spec.plugin)(plain_nets, trainer.spec.model)
    batch = copy.deepcopy(trainer.stream).next(4)

    torch.manual_seed(7)
    step(batch)
    torch.manual_seed(7)
    trainer.train_step()
    for role, module in trainer.nets.items():
        for name, ours in module.state_dict().items():
            torch.testing.assert_close(ours, plain_nets[role].state_dict()[name], rtol=1e-5, atol=1e-6, msg=f"{role}.{name}")
        changed = [name for name, value in module.state_dict().items() if not torch.equal(value, initial[role][name])]
        assert changed, f"the step left {role} unchanged"


@pytest.mark.slow
def test_bench_command_prints_table_and_writes_json(tmp_path):
    from typer.testing import CliRunner

    from ganzoo.cli.app import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--plugins", "dcgan", "--steps", "1", "--rounds", "3", "--warmup", "1", "--set", "ngf=4",
        "--set", "ndf=4", "--set", "batch_size=8", "--set", "size=16", "--no-inference", "--no-pipeline", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    (row,) = report["training"]
    assert row["plugin"] == "dcgan" and row["batch_size"] == 8 and row["size"] == 16
    assert row["ganzoo_images_per_sec"] > 0 and row["plain_images_per_sec"] > 0
    assert row["ratio"] == sorted(row["ratio_per_round"])[1]  # the median of three rounds
    assert row["peak_memory_mb"] > 0 and row["threads"] >= 1
    assert report["machine"]["torch"] == torch.__version__ and report["settings"]["rounds"] == 3
    assert "inference" not in report and "data_pipeline" not in report
    for text in ("ganzoo", "plain", "ratio", "peak MB", "dcgan", "8 @ 16px"):
        assert text in result.output


@pytest.mark.slow
def test_inference_figures_compare_onnxruntime_with_eager_at_batch_1_and_64():
    options = BenchOptions(rounds=1, inference_seconds=0.01, overrides={"ngf": 4, "latent_dim": 8, "size": 16})
    rows = bench_inference(options)
    assert [r["batch"] for r in rows] == [1, 64]
    for r in rows:
        assert r["eager_ms"] > 0 and r["onnxruntime_ms"] > 0
        assert r["speedup"] == pytest.approx(r["eager_ms"] / r["onnxruntime_ms"], rel=0.01)
        assert r["providers"][0] in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_a_plugin_without_a_plain_loop_is_timed_and_reported_na(tmp_path):
    from distributed_helpers import DecoupledGAN
    from ganzoo import registry
    from ganzoo.bench import bench_training

    registry.register(DecoupledGAN)
    data = str(write_image_folder(tmp_path / "images", count=16, size=8))
    options = BenchOptions(steps=1, rounds=1, warmup=0, overrides={"dataset": data, "batch_size": 4, "size": 8})
    row = bench_training(DecoupledGAN.name, options)
    assert row["ganzoo_images_per_sec"] > 0 and row["size"] == 8
    assert row["plain_images_per_sec"] is None and row["ratio"] is None
    text = format_report({"machine": {"cpu": "cpu", "cpu_cores": 2, "gpu": None, "torch": "t", "onnxruntime": "o",
                                      "ganzoo": "g"}, "training": [row]})
    assert "n/a" in text and "no plain loop is registered" in text


def test_pipeline_figure_counts_streamed_images():
    figure = bench_pipeline(BenchOptions(pipeline_images=64, pipeline_size=16), workers=1, batch_size=16)
    assert figure["images_per_sec"] > 0 and figure["workers"] == 1 and figure["size"] == 16
