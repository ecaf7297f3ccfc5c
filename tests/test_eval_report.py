"""`ganzoo eval`, `ganzoo report`, the reporting pictures and TensorBoard logging."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.api import train
from ganzoo.cli.app import main as cli_main
from ganzoo.errors import MissingDependencyError
from ganzoo.plugin import OptimizerSpec, Phase, Plugin
from ganzoo.reporting.curves import plot_loss_curves
from ganzoo.reporting.gif import make_samples_gif
from ganzoo.reporting.html import stage_segments, write_report

QUIET = {"progress": False, "log_every": 1, "sample_every": 1, "checkpoint_every": 3}
REAL_N = 500  # a seeded subset of the 5,000 digits keeps the metrics fast


@dataclass
class FlatConfig:
    latent_dim: int = 8
    lr: float = 2e-4


class FlatGAN(Plugin):
    """A third-party plugin written only against the public contract: two linear layers."""

    name = "flat"
    version = "0.1.0"
    Config = FlatConfig

    def build(self):
        d = self.data
        pixels = d.channels * d.size * d.size
        g = nn.Sequential(nn.Linear(self.config.latent_dim, pixels), nn.Tanh(), nn.Unflatten(1, (d.channels, d.size, d.size)))
        return {"G": g, "D": nn.Sequential(nn.Flatten(), nn.Linear(pixels, 1))}

    def optimizers(self):
        return {role: OptimizerSpec((role,), self.config.lr) for role in ("G", "D")}

    def phases(self):
        return [Phase("D", "D", self.d_loss, "discriminator"), Phase("G", "G", self.g_loss, "generator")]

    def z(self, n, device, generator=None):
        return torch.randn(n, self.config.latent_dim, generator=generator).to(device)

    def d_loss(self, nets, batch, ctx):
        return ctx.discriminator_loss(nets["D"], batch.images, nets["G"](self.z(len(batch), ctx.device)))

    def g_loss(self, nets, batch, ctx):
        return {"loss": ctx.generator_loss(nets["D"], nets["G"](self.z(len(batch), ctx.device)))}

    def sample(self, nets, n, *, generator, condition):
        return nets["G"](self.z(n, "cpu", generator))

    def evaluate(self, nets, options):
        return {"pixel_mean": float(nets["G"](self.z(16, "cpu")).mean())}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``ganzoo ARGS`` in process: (exit code, stdout, stderr)."""
    code = 0
    try:
        cli_main(list(args))
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A 3-step tiny DCGAN on digits with a preview grid per step."""
    out = tmp_path_factory.mktemp("runs") / "dcgan"
    train("dcgan", data="digits", steps=3, out=out, preset="tiny", overrides=QUIET)
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


# -- ganzoo eval ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_features():
    """The digit classifier: trained once (about a minute) on a machine's first use, then cached."""
    from ganzoo.metrics.classifier import DigitFeatures

    return DigitFeatures()


def only_record(path: Path) -> dict:
    records = json.loads(path.read_text())
    assert len(records) == 1
    return records[0]


def assert_provenance(record: dict, num_generated: int, reference: str) -> None:
    prov = record["provenance"]
    assert prov["feature_net"].startswith("digits-cnn") and re.fullmatch(r"[0-9a-f]{64}", prov["weights_hash"])
    assert prov["resize"] and prov["reference"] == reference
    assert (prov["num_generated"], prov["num_real"]) == (num_generated, REAL_N)


@pytest.mark.slow
def test_eval_of_a_run_scores_it_records_provenance_and_draws_neighbours(tiny_run, tmp_path, capsys, digit_features):
    run = copy_run(tiny_run, tmp_path)
    code, out, err = run_cli(capsys, "eval", str(run), "--metric", "fid,kid,pr,nn", "-n", "64", "--real-n", str(REAL_N), "--json", str(tmp_path / "out.json"))
    assert code == 0, err
    record = only_record(run / "metrics.json")
    assert record == json.loads((tmp_path / "out.json").read_text())
    assert_provenance(record, 64, "digits")  # digits data -> the digit classifier by default
    assert (record["plugin"], record["step"], record["kind"]) == ("dcgan", 3, "run")
    scores = record["metrics"]
    assert scores["fid"] > 0 and scores["kid"]["mean"] > 0
    assert 0 <= scores["precision_recall"]["precision"] <= 1 and 0 <= scores["precision_recall"]["recall"] <= 1
    assert scores["memorization"]["min_distance"] > 0  # 3 steps of training cannot have copied anything
    with Image.open(run / "memorization.png") as grid, Image.open(run / "memorization_distances.png") as hist:
        assert grid.height > 8 * 16 and hist.format == "PNG"  # one row per shown sample
    assert re.search(r"^fid\s+\d", out, re.M) and "digits-cnn" in out
    # A second evaluation is appended, not overwritten.
    assert run_cli(capsys, "eval", str(run), "-m", "fid", "-n", "32", "--seed", "1", "--real-n", str(REAL_N))[0] == 0
    assert len(json.loads((run / "metrics.json").read_text())) == 2


@pytest.mark.slow
def test_a_third_party_plugin_is_evaluated_without_changes(tmp_path, digit_features):
    from ganzoo.registry import register
    from ganzoo.reporting.run_eval import evaluate_path

    register(FlatGAN)
    run = tmp_path / "flat"
    train("flat", data="digits", steps=2, out=run, overrides={**QUIET, "size": 16, "batch_size": 8})
    record = evaluate_path(run, "fid,kid,pr,nn", num_samples=32, features="digits", real_limit=REAL_N)
    assert record["plugin"] == "flat" and record["metrics"]["fid"] > 0
    assert record["plugin_scores"] == {"pixel_mean": pytest.approx(record["plugin_scores"]["pixel_mean"])}
    assert -1 <= record["plugin_scores"]["pixel_mean"] <= 1  # its own evaluate() rides along
    assert_provenance(record, 32, "digits")
    assert only_record(run / "metrics.json")["metrics"] == record["metrics"]
    assert (run / "memorization.png").is_file()


@pytest.mark.slow
def test_eval_of_an_exported_onnx_generator(tiny_run, tmp_path, capsys, digit_features):
    from ganzoo.api import load_run

    (model,) = load_run(tiny_run).export(tmp_path / "exports")
    code, _, err = run_cli(capsys, "eval", str(model), "-m", "fid,kid", "-n", "32")
    assert code == 2 and "--data" in err  # the reference set cannot be guessed for a bare file
    code, out, err = run_cli(capsys, "eval", str(model), "-m", "fid,kid", "-n", "32", "--data", "digits", "--real-n", str(REAL_N))
    assert code == 0, err
    record = only_record(tmp_path / "exports" / f"{model.stem}.metrics.json")  # a loose file reports beside itself
    assert record["kind"] == "onnx" and record["model_file"] == model.name and record["metrics"]["fid"] > 0
    assert_provenance(record, 32, "digits")


def test_missing_inception_weights_is_one_line_naming_where_to_put_them(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, _, err = run_cli(capsys, "eval", str(tiny_run), "--metric", "fid", "--features", "inception", "-n", "8")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: FID Inception weights not found")
    assert "pt_inception-2015-12-05-6726825d.pth" in err and str(tmp_path / "cache" / "inception") in err
    assert not (tiny_run / "metrics.json").exists()


def test_unknown_metric_or_feature_network_is_one_line(tiny_run, capsys):
    code, _, err = run_cli(capsys, "eval", str(tiny_run), "--metric", "fid,sharpness")
    assert code == 2 and "unknown metric(s) sharpness" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "eval", str(tiny_run), "--metric", "fid", "--features", "vgg")
    assert code == 2 and "unknown feature network 'vgg'" in err


# -- pictures ------------------------------------------------------------------------------------
def test_loss_curves_plot_losses_terms_and_stages(tmp_path):
    records = [
        {"D/loss": 1.0 - i / 10, "G/loss": 0.5, "D/gp": 0.1, "stage/res": 4 * 2 ** (i // 4),
         "stage/alpha": (i % 4) / 4, "step": i + 1, "images_seen": 8 * (i + 1), "images_per_sec": 9.0, "time": 1.0}
        for i in range(8)
    ]
    path = plot_loss_curves(records, tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > image.width / 2  # three stacked panels
    assert plot_loss_curves([{"step": 1, "images_seen": 8}], tmp_path / "none.png") is None


def test_samples_gif_holds_every_grid_in_step_order(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step, shade in ((10, 200), (2, 0), (100, 100)):  # written out of order; step 10 > step 2 numerically
        Image.new("L", (20, 20), shade).save(samples / f"step-{step:08d}.png")
    Image.new("L", (20, 20), 50).save(samples / "sample-seed0.png")  # not a preview grid
    gif = make_samples_gif(samples, tmp_path / "samples.gif")
    with Image.open(gif) as image:
        assert image.n_frames == 3
        shades = []
        for index in range(3):
            image.seek(index)
            shades.append(image.convert("L").getpixel((10, 15)))  # below the caption strip
    assert shades == [0, 200, 100]
    assert make_samples_gif(tmp_path / "missing", tmp_path / "none.gif") is None


def test_stage_segments_group_whole_numbered_stage_values():
    records = [{"step": s, "images_seen": 10 * s, "stage/res": r, "stage/alpha": a}
               for s, (r, a) in enumerate([(4, 1.0), (8, 0.0), (8, 0.5), (8, 1.0)], start=1)]
    segments = stage_segments(records)
    assert [s["res"] for s in segments] == [4, 8]
    assert segments[1]["steps"] == "2-4" and segments[1]["alpha"] == "0 to 1"
    assert stage_segments([{"step": 1, "D/loss": 1.0}]) == []


# -- the HTML report -----------------------------------------------------------------------------
def embedded_images(page: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data)) for mime, data in re.findall(r'src="data:(image/\w+);base64,([^"]+)"', page)]


def test_report_page_has_every_section_and_embeds_its_images(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path)
    (run / "metrics.json").write_text(json.dumps([{
        "time": "2025-01-01T00:00:00", "source": "run", "step": 3,
        "metrics": {"fid": 123.5, "kid": 0.25},
        "provenance": {"feature_net": "digits-cnn", "weights_sha256": "abc123", "num_samples": 64},
    }]))
    shutil.copy(run / "samples" / "step-00000003.png", run / "memorization.png")
    code, out, err = run_cli(capsys, "report", str(run))
    assert code == 0, err
    page_path = run / "report.html"
    assert f"wrote {page_path}" in out
    page = page_path.read_text()
    for section in ("Configuration", "Training", "Samples over training", "Metrics", "Memorization check"):
        assert f"<h2>{section}</h2>" in page
    assert "123.5" in page and "abc123" in page and "digits-cnn" in page
    assert "dcgan" in page and "ngf" in page  # plugin and its model settings
    # Offline: every image is inline, nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)
    images = embedded_images(page)
    mimes = [mime for mime, _ in images]
    assert "image/gif" in mimes and mimes.count("image/png") >= 5  # curves, grids, memorization
    for _, data in images:
        Image.open(io.BytesIO(data)).verify()
    assert (run / "loss_curves.png").is_file() and (run / "samples.gif").is_file()


def test_report_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2
    assert err.strip().count("\n") == 0 and "is not a ganzoo run" in err


def find_chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.environ.get("GANZOO_INSTALL_CHROMIUM") != "1" or not shutil.which("apt-get"):
        return found
    try:  # opt-in only, and only when it finishes quickly
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=120, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which("chromium")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed: apt-get install chromium (or set GANZOO_INSTALL_CHROMIUM=1)")
    run = copy_run(tiny_run, tmp_path)
    page = write_report(run)
    shot = tmp_path / "shot.png"
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
        page.resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        colors = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 20  # text, tables and images, not a blank page


# -- TensorBoard -----------------------------------------------------------------------------------
def test_tensorboard_logging_writes_scalars_and_images(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train("dcgan", data="digits", steps=2, out=run, preset="tiny", overrides={**QUIET, "tensorboard": True})
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"D/loss", "G/loss", "images_seen"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("G/loss")] == [1, 2]
    assert events.Tags()["images"] == ["samples"]


def test_tensorboard_without_the_package_is_a_one_line_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails as if absent
    with pytest.raises(MissingDependencyError, match=r'TensorBoard logging needs .*pip install "ganzoo\[tensorboard\]"'):
        train("dcgan", data="digits", steps=1, out=tmp_path / "run", preset="tiny", overrides={**QUIET, "tensorboard": True})
    assert not (tmp_path / "run" / "config.json").exists()
