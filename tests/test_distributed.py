"""Multi-process training on the CPU with gloo: agreement across ranks, rank-0 files, resume, batch equivalence."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from distributed_helpers import DecoupledGAN, run_ranks, run_ranks_expecting_nan, write_image_folder
from ganzoo import registry
from ganzoo.api import train
from ganzoo.cli.launch import torchrun_command, without_nproc
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.distributed import DistInfo

QUIET = {"progress": False, "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 5}


def assert_states_equal(a: dict, b: dict, atol: float = 0.0) -> None:
    for part in ("nets", "ema"):
        assert a[part].keys() == b[part].keys()
        for role in a[part]:
            for key, tensor in a[part][role].items():
                other = b[part][role][key]
                if atol:
                    torch.testing.assert_close(tensor, other, atol=atol, rtol=0, msg=f"{part}/{role}/{key}")
                else:
                    assert torch.equal(tensor, other), f"{part}/{role}/{key} differs"


@pytest.mark.slow
def test_two_ranks_agree_write_once_and_match_one_process_with_twice_the_batch(tmp_path):
    """Includes a stage change at step 2, which rebuilds the optimizers and DDP wrappers."""
    data = str(write_image_folder(tmp_path / "images", count=32, size=8))
    job = dict(plugin=DecoupledGAN.name, data=data, steps=4, batch_size=4, out=str(tmp_path / "two"), overrides=QUIET)
    rank0, rank1 = run_ranks(2, job, tmp_path)

    assert rank0["step"] == rank1["step"] == 4
    assert rank0["images_seen"] == 4 * 2 * 4  # progress counts every rank's images
    assert_states_equal(rank0, rank1)

    run = tmp_path / "two"
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["ckpt-00000002.pt", "ckpt-00000004.pt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stats] == [1, 2, 3, 4]  # one line per log step, not one per rank
    saved = ckpt.load(run / "checkpoints" / "ckpt-00000004.pt")
    assert len(saved["rng"]["ranks"]) == 2
    for role, weights in rank0["nets"].items():
        for key, tensor in weights.items():
            assert torch.equal(saved["nets"][role][key], tensor)

    registry.register(DecoupledGAN)
    torch.manual_seed(1234)  # the engine reseeds: the global state must not matter
    one = dict(job, batch_size=8, out=str(tmp_path / "one"))
    train(**one)
    single = ckpt.load(tmp_path / "one" / "checkpoints" / "ckpt-00000004.pt")
    assert_states_equal(rank0, single, atol=2e-6)


@pytest.mark.slow
def test_every_trained_role_of_a_four_network_plugin_agrees_across_ranks(tmp_path):
    job = dict(plugin="cyclegan", preset="tiny", data="digit-styles", steps=2, out=str(tmp_path / "run"),
               overrides={**QUIET, "size": 16})
    rank0, rank1 = run_ranks(2, job, tmp_path)
    assert set(rank0["nets"]) == {"G_AB", "G_BA", "D_A", "D_B"}
    assert_states_equal(rank0, rank1)


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    data = str(write_image_folder(tmp_path / "images", count=32, size=8))
    job = dict(plugin="exploding-on-rank-one", data=data, steps=6, batch_size=4, out=str(tmp_path / "run"),
               overrides={**QUIET, "checkpoint_every": 1})
    rank0, rank1 = run_ranks_expecting_nan(2, job, tmp_path)
    assert "G/loss became NaN or infinite at step 3" in rank1
    assert "a loss of another process became NaN or infinite by step 3" in rank0
    assert "ckpt-00000002.pt" in rank0 and "ckpt-00000002.pt" in rank1
    assert ckpt.latest(tmp_path / "run" / "checkpoints").name == "ckpt-00000002.pt"


@pytest.mark.slow
def test_torchrun_cli_resume_continues_exactly(tmp_path):
    """`ganzoo train --nproc 2` launches torchrun; a resumed 2-process job ends where the uninterrupted one did."""
    data = str(write_image_folder(tmp_path / "images", count=32, size=16))
    job = dict(plugin="dcgan", data=data, steps=4, batch_size=4, out=str(tmp_path / "full"),
               overrides={**QUIET, "ngf": 4, "ndf": 4, "size": 16, "latent_dim": 8})
    run_ranks(2, job, tmp_path)

    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "full", resumed)
    (resumed / "checkpoints" / "ckpt-00000004.pt").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "ganzoo", "train", "--resume", str(resumed), "--nproc", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("finished at step 4") == 1  # rank 0 alone reports
    full = ckpt.load(tmp_path / "full" / "checkpoints" / "ckpt-00000004.pt")
    again = ckpt.load(resumed / "checkpoints" / "ckpt-00000004.pt")
    assert_states_equal(full, again)
    for name, opt in full["optimizers"].items():
        for pid, slot in opt["state"].items():
            for key, tensor in slot.items():
                assert torch.equal(torch.as_tensor(tensor), torch.as_tensor(again["optimizers"][name]["state"][pid][key]))


def test_nproc_is_stripped_for_the_torchrun_command():
    args = ["train", "dcgan", "--nproc", "4", "--steps", "10", "--nproc=2"]
    assert without_nproc(args) == ["train", "dcgan", "--steps", "10"]
    command = torchrun_command(4, args)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=4" in command and "--standalone" in command
    assert command[-6:] == ["-m", "ganzoo", "train", "dcgan", "--steps", "10"]


def test_single_process_helpers_need_no_process_group():
    info = DistInfo()
    assert info.from_main("x") == "x"
    assert info.gather(3) == [3]
    assert info.any_rank(True, torch.device("cpu")) is True
    net = torch.nn.Linear(2, 2)
    assert info.wrap({"G": net}, torch.device("cpu"))["G"] is net
    assert info.average({"a": torch.tensor(2.0)})["a"].item() == 2.0


def test_sync_batchnorm_on_cpu_is_refused_with_a_fix(tmp_path, monkeypatch):
    from ganzoo.engine import trainer as trainer_module
    from ganzoo.errors import UserError

    monkeypatch.setattr(trainer_module, "current", lambda: DistInfo(rank=0, world_size=2))
    data = str(write_image_folder(tmp_path / "images", count=8, size=16))
    with pytest.raises(UserError, match="sync_batchnorm needs CUDA"):
        train("dcgan", data=data, steps=1, batch_size=2, out=tmp_path / "run",
              overrides={"sync_batchnorm": True, "ngf": 4, "ndf": 4, "size": 16, "progress": False})
