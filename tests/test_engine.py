"""The shared engine: exact resume, atomic checkpoints, non-finite stop, Ctrl-C, EMA, schedules."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganzoo import registry
from ganzoo.api import load_run, train
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.ema import EMA
from ganzoo.engine.spec import resolve
from ganzoo.engine.trainer import NonFiniteLossError, Trainer
from ganzoo.errors import UserError
from ganzoo_plugins.dcgan import DCGAN

TINY = {"progress": False, "log_every": 1, "sample_every": 100, "checkpoint_every": 100}


def weights(run_dir):
    state = ckpt.load(ckpt.latest(Path(run_dir) / "checkpoints"))
    return state


def assert_same_state(a, b):
    for part in ("nets", "ema"):
        for role in a[part]:
            for key, tensor in a[part][role].items():
                assert torch.equal(tensor, b[part][role][key]), f"{part}/{role}/{key} differs"
    for name, opt in a["optimizers"].items():
        for pid, slot in opt["state"].items():
            for key, tensor in slot.items():
                assert torch.equal(torch.as_tensor(tensor), torch.as_tensor(b["optimizers"][name]["state"][pid][key]))


def test_resume_gives_identical_weights(tmp_path):
    settings = {**TINY, "hflip": True}
    train("dcgan", preset="tiny", steps=6, out=tmp_path / "straight", overrides=settings)
    train("dcgan", preset="tiny", steps=3, out=tmp_path / "split", overrides=settings)
    train("dcgan", steps=6, resume=tmp_path / "split")
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a["step"] == b["step"] == 6 and a["images_seen"] == b["images_seen"] == 48
    assert_same_state(a, b)


def test_resume_rejects_changing_the_model(tmp_path):
    train("dcgan", preset="tiny", steps=1, out=tmp_path / "r", overrides=TINY)
    with pytest.raises(UserError, match="cannot change ngf when resuming"):
        train("dcgan", steps=2, resume=tmp_path / "r", overrides={"ngf": 4})


def test_existing_run_folder_is_not_overwritten(tmp_path):
    train("dcgan", preset="tiny", steps=1, out=tmp_path / "r", overrides=TINY)
    with pytest.raises(UserError, match="already holds a run"):
        train("dcgan", preset="tiny", steps=1, out=tmp_path / "r", overrides=TINY)


def test_run_folder_is_self_describing(tmp_path):
    result = train("dcgan", preset="tiny", steps=4, out=tmp_path / "r", overrides={**TINY, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 1})
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["plugin"] == "dcgan" and config["model"]["ngf"] == 8 and config["data_info"]["channels"] == 1
    stats = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2, 3, 4]
    assert all(s["images_per_sec"] > 0 and "D/loss" in s for s in stats)
    assert sorted(p.name for p in (result.run_dir / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    assert [p.name for p in ckpt.list_checkpoints(result.run_dir / "checkpoints")] == ["ckpt-00000004.pt"]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    good = tmp_path / "ckpt-00000001.pt"
    ckpt.save_atomic({"step": 1, "w": torch.ones(3)}, good)

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        ckpt.save_atomic({"step": 2}, tmp_path / "ckpt-00000002.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000001.pt"]
    assert ckpt.load(good)["step"] == 1


def test_checkpoint_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "ckpt-00000001.pt"
    torch.save({"evil": EMA}, path)  # a class reference needs unpickling code
    with pytest.raises(UserError, match="cannot read checkpoint"):
        ckpt.load(path)


class ExplodingDCGAN(DCGAN):
    name = "exploding-dcgan"

    def generator_loss(self, nets, batch, ctx):
        terms = super().generator_loss(nets, batch, ctx)
        if ctx.step >= 3:  # the 4th step, logged as step 4
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_non_finite_loss_stops_with_step_and_last_checkpoint(tmp_path):
    registry.register(ExplodingDCGAN)
    with pytest.raises(NonFiniteLossError) as err:
        train("exploding-dcgan", preset="tiny", steps=10, out=tmp_path / "r", overrides={**TINY, "checkpoint_every": 2})
    message = str(err.value)
    assert "G/loss" in message and "step 4" in message and "ckpt-00000002.pt" in message
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "r" / "checkpoints")] == ["ckpt-00000002.pt"]


def test_batched_loss_check_names_the_first_bad_step_and_writes_nothing_after_it(tmp_path):
    # The CUDA path (checks deferred to the next log, sample or checkpoint), run on the CPU.
    registry.register(ExplodingDCGAN)
    spec = resolve("exploding-dcgan", {**TINY, "log_every": 6, "checkpoint_every": 3, "steps": 10}, preset="tiny")
    trainer = Trainer(spec, tmp_path / "r")
    trainer.guard.every_step = False
    with pytest.raises(NonFiniteLossError, match="G/loss became NaN or infinite at step 4; .*ckpt-00000003.pt"):
        trainer.fit()
    assert trainer.step == 6  # found when step 6 was due to be logged and checkpointed ...
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "r" / "checkpoints")] == ["ckpt-00000003.pt"]
    assert not (tmp_path / "r" / "stats.jsonl").exists()  # ... and neither was: the check comes first


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganzoo", "train", "dcgan", "--preset", "tiny", "--steps", "100000", "--out", str(run),
         "--set", "progress=false", "--set", "log_every=1", "--set", "checkpoint_every=100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while not (run / "stats.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # what shells expect of a command stopped by Ctrl-C
    assert "interrupted at step" in out and "Traceback" not in err
    (saved,) = ckpt.list_checkpoints(run / "checkpoints")
    state = ckpt.load(saved)
    assert 0 < state["step"] < 100000
    resumed = train("dcgan", steps=state["step"] + 1, resume=run)
    assert resumed.step == state["step"] + 1


def test_a_second_ctrl_c_stops_at_once_and_keeps_every_checkpoint_whole(tmp_path):
    """Two Ctrl-Cs in quick succession, while a checkpoint is written every step: the process stops
    with 130 and no traceback, and every checkpoint left in the folder loads."""
    run = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganzoo", "train", "dcgan", "--preset", "tiny", "--steps", "100000", "--out", str(run),
         "--set", "progress=false", "--set", "checkpoint_every=1", "--set", "keep_checkpoints=2",
         "--set", "ngf=32", "--set", "ndf=32"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while len(ckpt.list_checkpoints(run / "checkpoints")) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # the first is seen (a stop is requested); the second lands in a later step or write
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "Error" not in err, err
    for path in ckpt.list_checkpoints(run / "checkpoints"):
        assert ckpt.load(path)["step"] >= 1
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_ema_half_life_in_images():
    source = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(source.weight)
    ema = EMA(source, half_life_images=100, rampup=None)
    with torch.no_grad():
        source.weight.fill_(1.0)
    ema.update(source, batch_images=100, images_seen=10_000)  # one half-life: halfway to the source
    assert ema.module.weight.item() == pytest.approx(0.5)
    ema.update(source, batch_images=100, images_seen=10_100)
    assert ema.module.weight.item() == pytest.approx(0.75)


def test_d_steps_runs_generator_every_kth_step(tmp_path):
    result = train("dcgan", preset="tiny", steps=4, out=tmp_path / "r", overrides={**TINY, "d_steps": 2})
    stats = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    assert ["G/loss" in s for s in stats] == [True, False, True, False]
    assert all("D/loss" in s for s in stats)


def test_sampling_uses_ema_generator_and_is_seeded(tmp_path):
    train("dcgan", preset="tiny", steps=3, out=tmp_path / "r", overrides=TINY)
    run = load_run(tmp_path / "r")
    state = weights(tmp_path / "r")
    g = run.nets["G"]
    assert not g.training
    for key, value in g.state_dict().items():
        assert torch.equal(value, state["ema"]["G"][key])
    a, b = run.sample(5, seed=1), run.sample(5, seed=1)
    assert a.shape == (5, 1, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_epochs_set_the_length_from_the_data(tmp_path):
    # digits: 5000 images; batch 8 -> 625 steps per epoch
    result = train("dcgan", preset="tiny", out=tmp_path / "r", overrides={**TINY, "epochs": 0.0064})
    assert result.step == 4  # ceil(0.0064 * 5000 / 8)
