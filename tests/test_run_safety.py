"""A run folder never loses work: one writer, checked weights, restartable dead ends, safe resumes.

Each numbered defect of the run-folder issue has a test here that failed before the fix.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from fault_helpers import cli, copied_run
from ganzoo import registry
from ganzoo.api import load_run, train
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.bookkeeping import NonFiniteLossError
from ganzoo.engine.runstart import RunNote
from ganzoo.errors import UserError
from ganzoo_plugins.dcgan import DCGAN

TINY = {"progress": False, "log_every": 1, "sample_every": 2, "checkpoint_every": 2}
ENV = dict(os.environ)

run = copied_run  # a 4-step tiny DCGAN run (checkpoints and grids at 2 and 4) of the test's own


def steps_logged(run):
    return [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]


def start_training(run, *extra):
    """A long tiny DCGAN run in another process; returns once it has logged a step."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganzoo", "train", "dcgan", "--preset", "tiny", "--steps", "100000",
         "--out", str(run), "--set", "progress=false", "--set", "log_every=1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    deadline = time.time() + 120
    while not (run / "stats.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    return proc


# -- 1. one writer per run folder -----------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    run = tmp_path / "r"
    holder = start_training(run, "--set", "checkpoint_every=5")
    try:
        expected = rf"{re.escape(str(run))} is in use by ganzoo process {holder.pid}\b"
        with pytest.raises(UserError, match=expected):
            train("dcgan", preset="tiny", steps=2, out=run, overrides=TINY)
        with pytest.raises(UserError, match=expected):
            train("", steps=2, resume=run)
        config = json.loads((run / "config.json").read_text())
        assert config["train"]["steps"] == 100000  # the first run's settings, untouched
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    saved = ckpt.list_checkpoints(run / "checkpoints")
    done = ckpt.load(saved[-1])["step"] if saved else 0  # killed before its first checkpoint: starts again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunNote)
        result = train("", steps=done + 2, resume=run)
    assert result.step == done + 2 and not result.interrupted  # the lock died with its holder


# -- 2. nothing is written from non-finite weights ------------------------------------------------
def test_a_non_finite_step_is_caught_before_it_is_saved(tmp_path, monkeypatch):
    """From step 3 on, G's update leaves every weight infinite while that step's losses (computed
    before the update) are still finite: what an infinite learning rate does."""
    from ganzoo.engine.optimization import Optimization

    update = Optimization.step
    calls = []

    def poisoned(self, phase, loss):
        update(self, phase, loss)
        calls.append(phase.name)
        if phase.name == "G" and calls.count("G") >= 3:
            with torch.no_grad():
                for p in self.nets["G"].parameters():
                    p.fill_(float("inf"))

    monkeypatch.setattr(Optimization, "step", poisoned)
    run = tmp_path / "r"
    with pytest.raises(NonFiniteLossError, match="the weights or optimizer state became NaN or infinite by step 3"):
        train("dcgan", preset="tiny", steps=6, out=run, overrides={**TINY, "checkpoint_every": 1, "sample_every": 1})
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["ckpt-00000001.pt", "ckpt-00000002.pt"]
    for path in ckpt.list_checkpoints(run / "checkpoints"):
        state = ckpt.load(path)
        assert all(torch.isfinite(t).all() for t in state["nets"]["G"].values() if t.is_floating_point())
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000001.png", "step-00000002.png"]


# -- 3. a run stopped before its first checkpoint is not a dead end --------------------------------
class NaNFromTheStart(DCGAN):
    name = "nan-at-once"

    def generator_loss(self, nets, batch, ctx):
        terms = super().generator_loss(nets, batch, ctx)
        terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_the_nan_advice_is_a_command_the_cli_accepts(tmp_path, capsys):
    registry.register(NaNFromTheStart)
    run = tmp_path / "r"
    code, _, err = cli(["train", "nan-at-once", "--preset", "tiny", "--steps", "3", "--out", run, "--set", "progress=false"], capsys)
    assert code == 2 and "no checkpoint was written yet" in err
    advice = err.split("e.g. ", 1)[1].strip().split()
    assert advice[:4] == ["ganzoo", "train", "--resume", str(run)]
    argv = [a.replace("...", "1e-4") for a in advice[1:]] + ["--set", "progress=false"]
    with pytest.warns(RunNote, match="holds no checkpoint yet: training it again from step 0"):
        code, out, err = cli(argv, capsys)
    assert code == 2 and "no checkpoint was written yet" in err  # it still explodes, but it ran again
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["g_lr"] == config["train"]["d_lr"] == 1e-4  # the change is recorded


def test_a_folder_without_checkpoint_restarts_with_other_settings(tmp_path):
    run = tmp_path / "r"
    train("dcgan", preset="tiny", steps=2, out=run, overrides={**TINY, "checkpoint_every": 10**6, "sample_every": 10**6})
    for path in ckpt.list_checkpoints(run / "checkpoints"):  # as if killed before its first checkpoint
        path.unlink()
    with pytest.warns(RunNote, match="stopped before its first checkpoint: starting it again"):
        result = train("dcgan", preset="tiny", steps=3, out=run, overrides={**TINY, "ngf": 4})
    assert result.step == 3 and load_run(run).spec.model.ngf == 4
    assert steps_logged(run) == [1, 2, 3]


class LateNaN(DCGAN):
    """NaN losses at step 5 while ``explode`` is set."""

    name = "late-nan"
    explode = True

    def generator_loss(self, nets, batch, ctx):
        terms = super().generator_loss(nets, batch, ctx)
        if ctx.step == 4 and LateNaN.explode:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_the_nan_advice_after_a_checkpoint_resumes_from_it_with_lower_learning_rates(tmp_path, capsys):
    registry.register(LateNaN)
    run = tmp_path / "r"
    code, _, err = cli(["train", "late-nan", "--preset", "tiny", "--steps", "8", "--out", run, "--set", "progress=false",
                        "--set", "log_every=1", "--set", "checkpoint_every=2"], capsys)
    assert code == 2 and "at step 5" in err and "ckpt-00000004.pt" in err
    assert steps_logged(run) == [1, 2, 3, 4]
    advice = err.split("e.g. ", 1)[1].strip().split()
    LateNaN.explode = False
    try:
        code, _, err = cli([a.replace("...", "1e-4") for a in advice[1:]], capsys)
    finally:
        LateNaN.explode = True
    assert code == 0, err
    assert steps_logged(run) == list(range(1, 9))  # no step twice after the resume
    assert json.loads((run / "config.json").read_text())["train"]["g_lr"] == 1e-4


# -- weak spots -----------------------------------------------------------------------------------
def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one_saying_so(run, capsys):
    latest = run / "checkpoints" / "ckpt-00000004.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    (run / "checkpoints" / ".ckpt-00000006.pt.abcd1234.tmp").write_bytes(b"half")
    with pytest.warns(RunNote, match=f"ckpt-00000004.pt in {re.escape(str(run / 'checkpoints'))} cannot be read"):
        code, out, err = cli(["train", "--resume", run, "--steps", "6"], capsys)
    assert code == 0, err
    assert (run / "checkpoints" / "ckpt-00000004.pt.unreadable").exists()  # set aside, not deleted
    assert not list((run / "checkpoints").glob("*.tmp"))  # the killed write's leftover is gone
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_resume_from_a_chosen_checkpoint(run):
    result = train("", steps=3, resume=run, checkpoint=run / "checkpoints" / "ckpt-00000002.pt")
    assert result.step == 3 and steps_logged(run) == [1, 2, 3]


def test_an_edited_architecture_in_config_json_is_one_line_naming_the_key(run):
    config = json.loads((run / "config.json").read_text())
    config["model"]["ngf"] = 64
    (run / "config.json").write_text(json.dumps(config))
    message = rf"{re.escape(str(run / 'config.json'))} changes model.ngf from 8 to 64 since the checkpoint was written"
    with pytest.raises(UserError, match=message):
        train("", steps=6, resume=run)
    with pytest.raises(UserError, match=message):
        load_run(run)


def test_an_edited_learning_rate_is_used_by_the_optimizers_and_said(run):
    config = json.loads((run / "config.json").read_text())
    config["model"]["lr"] = 1e-5
    (run / "config.json").write_text(json.dumps(config))
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.runstart import starting_point
    from ganzoo.engine.spec import RunSpec
    from ganzoo.engine.trainer import Trainer

    spec = RunSpec.from_dict(config)
    with pytest.warns(RunNote, match=r"sets model.lr=1e-05 \(it was 0.0002 when the checkpoint was written\)"):
        start = starting_point(RunDir(run), None, spec)
    trainer = Trainer(spec, run, resume_from=start)
    assert {g["lr"] for o in trainer.optim.optimizers.values() for g in o.param_groups} == {1e-5}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "dcgan", "--steps", "5", "--epochs", "1"], "--steps and --epochs both set the length"),
        (["train", "--resume", "{run}", "--preset", "digits"], "--preset cannot change a run being resumed"),
        (["train", "--resume", "{run}", "--out", "elsewhere"], "pass only --resume RUN"),
        (["train", "cgan", "--resume", "{run}"], "is a run of plugin 'dcgan', not 'cgan'"),
        (["train", "dcgan", "--data-b", "{run}", "--out", "{tmp}/x"], "--data-b gives a second domain"),
        (["train", "dcgan", "--checkpoint", "c.pt"], "pass --resume RUN with it"),
        (["train", "--resume", "{run}", "--set", "checkpoint_every=0"], r"checkpoint_every=0 \(train\) is out of range"),
        (["train", "--resume", "{run}", "--steps", "-5"], r"steps=-5 \(train\) is out of range"),
        (["train", "--resume", "{run}", "--set", "log_every=0"], r"log_every=0 \(train\) is out of range"),
    ],
)
def test_contradictory_and_nonsense_options_are_one_line(run, tmp_path, capsys, argv, message):
    code, _, err = cli([a.format(run=run, tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_load_run_warns_when_the_installed_plugin_version_differs(run):
    state_path = run / "checkpoints" / "ckpt-00000004.pt"
    state = ckpt.load(state_path)
    state["plugin_version"] = "0.9.0"
    ckpt.save_atomic(state, state_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_run(run)
    assert any("trained with dcgan 0.9.0; 1.0.0 is installed" in str(w.message) for w in caught)
