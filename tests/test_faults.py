"""Fault injection: torn lines, truncated files, killed writes, a full disk, hostile output folders.

Tiny models and a few steps each; every case checks that nothing is lost and that the user gets
one line naming the file.
"""

import json
import os
import stat
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fault_helpers import cli, copied_run, fill_disk_when_writing
from ganzoo.api import train
from ganzoo.engine import checkpoint as ckpt
from ganzoo.engine.rundir import RunDir
from ganzoo.errors import DamagedFileWarning, UserError
from ganzoo.reporting.html import write_report

TINY = {"progress": False, "log_every": 1, "sample_every": 2, "checkpoint_every": 2}


run = copied_run  # a 4-step tiny DCGAN run of the test's own, to damage


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def steps(run):
    return [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]


# -- torn stats lines and truncated pictures ------------------------------------------------------
def test_report_skips_a_torn_stats_line_and_a_truncated_grid_and_names_them(run, capsys):
    with (run / "stats.jsonl").open("a") as f:
        f.write('{"step": 5, "D/loss": 0.7, "G/lo')  # the disk filled up mid-line
    truncate(run / "samples" / "step-00000004.png")
    code, out, err = cli(["report", run], capsys)
    assert code == 0, err
    assert err.strip().splitlines() == [
        f"warning: skipped line 5 of {run / 'stats.jsonl'} (torn by an interrupted write)",
        f"warning: skipped 1 truncated or corrupt preview grids in {run / 'samples'}: step-00000004.png",
    ]
    assert f"wrote {run / 'report.html'}" in out
    page = (run / "report.html").read_text()
    # The intact grid is shown, the broken one is not.
    assert "<figcaption>step 2</figcaption>" in page and "<figcaption>step 4</figcaption>" not in page


def test_a_resumed_run_does_not_append_onto_a_torn_line(run):
    with (run / "stats.jsonl").open("a") as f:
        f.write('{"step": 5, "D/lo')  # killed while writing step 5, after the step-4 checkpoint
    train("dcgan", steps=6, resume=run)
    assert steps(run) == [1, 2, 3, 4, 5, 6]  # every line parses: nothing glued onto the torn one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RunDir(run).read_stats()
    assert not caught


def test_stats_logged_after_the_resumed_checkpoint_can_be_dropped(run):
    with (run / "stats.jsonl").open("a") as f:
        f.write('{"step": 5}\n{"step": 6, "D/lo')  # logged after the step-4 checkpoint, then killed
    assert RunDir(run).drop_stats_after(4) == 1
    assert steps(run) == [1, 2, 3, 4]
    assert RunDir(run).drop_stats_after(4) == 0


def test_an_unparseable_config_is_one_line_naming_the_file(run, capsys):
    (run / "config.json").write_text('{"plugin": "dcgan", "model": {"ngf": 8,')
    code, _, err = cli(["report", run], capsys)
    assert code == 2 and err.strip().startswith(f"error: {run / 'config.json'} is not valid JSON")
    assert len(err.strip().splitlines()) == 1


def test_a_damaged_metrics_file_is_skipped_with_a_warning(run):
    (run / "metrics.json").write_text('[{"step": 4, "metrics": {"fid": 1')
    with pytest.warns(DamagedFileWarning, match=r"metrics.json: not valid JSON"):
        write_report(run)


# -- checkpoints ----------------------------------------------------------------------------------
def test_a_truncated_latest_checkpoint_falls_back_to_the_one_before(run):
    folder = run / "checkpoints"
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["ckpt-00000002.pt", "ckpt-00000004.pt"]
    truncate(folder / "ckpt-00000004.pt")
    found = ckpt.newest_readable(folder)
    assert found.path.name == "ckpt-00000002.pt" and found.state["step"] == 2
    assert found.skipped == [folder / "ckpt-00000004.pt"]
    assert found.note() == (
        f"ckpt-00000004.pt in {folder} cannot be read (truncated or corrupt): using ckpt-00000002.pt instead"
    )
    assert ckpt.set_aside(found.skipped) == [folder / "ckpt-00000004.pt.unreadable"]
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["ckpt-00000002.pt"]  # pruning cannot keep it now
    assert ckpt.newest_readable(folder).note() is None


def test_no_readable_checkpoint_is_one_line(run):
    for path in ckpt.list_checkpoints(run / "checkpoints"):
        truncate(path, 0.1)
    with pytest.raises(UserError, match=r"none of the 2 checkpoints in .* can be read"):
        ckpt.newest_readable(run / "checkpoints")


def test_temporary_files_of_killed_writes_are_removed(run):
    leftovers = [run / "checkpoints" / ".ckpt-00000006.pt.a1b2c3d4.tmp", run / "samples" / ".step-00000006.png.x_y2z9ab.tmp",
                 run / ".config.json.0f0f0f0f.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    assert RunDir(run).remove_orphans() == [leftovers[2], leftovers[1], leftovers[0]]
    assert not any(path.exists() for path in leftovers)
    assert ckpt.newest_readable(run / "checkpoints").path.name == "ckpt-00000004.pt"


def test_checkpoints_get_the_permissions_of_the_other_run_files(tmp_path):
    previous = os.umask(0o022)
    try:
        train("dcgan", preset="tiny", steps=2, out=tmp_path / "r", overrides=TINY)
    finally:
        os.umask(previous)
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    run = tmp_path / "r"
    assert mode(run / "checkpoints" / "ckpt-00000002.pt") == mode(run / "config.json") == 0o644
    assert mode(run / "stats.jsonl") == mode(run / "samples" / "step-00000002.png") == 0o644


# -- a full disk ----------------------------------------------------------------------------------
def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_the_last_good_one(run, monkeypatch, capsys):
    fill_disk_when_writing(monkeypatch, "ckpt-00000006")
    code, _, err = cli(["train", "dcgan", "--resume", run, "--steps", "8"], capsys)
    target = run / "checkpoints" / "ckpt-00000006.pt"
    assert code == 2
    last = run / "checkpoints" / "ckpt-00000004.pt"
    assert err.strip() == (f"error: the disk is full while writing {target}, which was not written; "
                           f"the last good checkpoint is {last}: free some space and try again")
    monkeypatch.undo()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt-00000002.pt", "ckpt-00000004.pt"]
    assert ckpt.newest_readable(run / "checkpoints").path.name == "ckpt-00000004.pt"


def test_a_full_disk_during_a_sample_grid_leaves_no_partial_picture(run, monkeypatch, capsys):
    fill_disk_when_writing(monkeypatch, "step-00000006")
    code, _, err = cli(["train", "dcgan", "--resume", run, "--steps", "8"], capsys)
    assert code == 2 and "the disk is full while writing" in err and "step-00000006.png" in err
    monkeypatch.undo()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]


# -- translate into hostile output folders --------------------------------------------------------
class Negate(nn.Module):
    def forward(self, x):
        return -x


@pytest.fixture(scope="module")
def negate_model(tmp_path_factory):
    from ganzoo.export.trace import export_onnx
    from ganzoo_export.metadata import InputSpec, ModelMetadata

    path = tmp_path_factory.mktemp("negate") / "negate.onnx"
    metadata = ModelMetadata(
        plugin="toy", plugin_version="1", ganzoo_version="0", task="translate", channels=3,
        inputs=[InputSpec("source", "image", ("batch", 3, "height", "width"))],
    )
    axes = {0: "batch", 2: "height", 3: "width"}
    export_onnx(Negate(), (torch.zeros(1, 3, 8, 8),), path, input_names=["source"],
                dynamic_axes={"source": axes}, metadata=metadata)
    return path


class Diverged(nn.Module):
    """A translator whose weights went NaN: every output is NaN."""

    def forward(self, x):
        return x * float("nan")


def test_export_refuses_a_model_that_outputs_nan(tmp_path):
    from ganzoo.export import ExportParityError
    from ganzoo.export.trace import export_onnx
    from ganzoo_export.metadata import InputSpec, ModelMetadata

    metadata = ModelMetadata(
        plugin="toy", plugin_version="1", ganzoo_version="0", task="translate", channels=3,
        inputs=[InputSpec("source", "image", ("batch", 3, "height", "width"))],
    )
    path = tmp_path / "diverged.onnx"
    with pytest.raises(ExportParityError, match="NaN or infinity"):
        export_onnx(Diverged(), (torch.zeros(1, 3, 8, 8),), path, input_names=["source"],
                    dynamic_axes={"source": {0: "batch", 2: "height", 3: "width"}}, metadata=metadata)
    assert list(tmp_path.iterdir()) == []  # nothing published, no staging folder left


def picture(path, value=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5, 3), value, dtype=np.uint8)).save(path)
    return path


def test_translate_never_overwrites_an_input(negate_model, tmp_path, capsys):
    photo = picture(tmp_path / "photos" / "photo.jpg")
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = cli(["translate", negate_model, tmp_path / "photos", "--out", tmp_path / "photos", *extra], capsys)
        assert code == 2 and "would overwrite the input" in err and str(photo) in err
    (tmp_path / "via").symlink_to(tmp_path / "photos")  # the same file under another path
    code, _, err = cli(["translate", negate_model, tmp_path / "via" / "photo.jpg", "--out", tmp_path / "photos",
                        "--overwrite"], capsys)
    assert code == 2 and "would overwrite the input" in err
    assert photo.read_bytes() == before


def test_translate_refuses_existing_outputs_unless_told_to_overwrite(negate_model, tmp_path, capsys):
    # The case: --format jpg into the input's own folder, next to the user's photo.jpg.
    source = picture(tmp_path / "photos" / "photo.png")
    original = picture(tmp_path / "photos" / "photo.jpg", value=200)
    before = original.read_bytes()
    args = ["translate", negate_model, source, "--out", tmp_path / "photos", "--format", "jpg"]
    code, _, err = cli(args, capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {original} already exists: pass --overwrite to replace it, or choose another --out folder"
    )
    assert original.read_bytes() == before
    code, out, _ = cli([*args, "--overwrite"], capsys)
    assert code == 0 and "translated 1 images" in out
    assert np.asarray(Image.open(original)).mean() > 200  # 255 - 10, give or take JPEG
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["photo.jpg", "photo.png"]


def test_translate_never_writes_through_a_symlink_in_out(negate_model, tmp_path, capsys):
    source = picture(tmp_path / "in" / "a.png")
    outside = picture(tmp_path / "elsewhere" / "a.png", value=99)
    before = outside.read_bytes()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").symlink_to(outside)
    code, _, err = cli(["translate", negate_model, source, "--out", tmp_path / "out"], capsys)
    assert code == 2 and "already exists" in err
    code, _, _ = cli(["translate", negate_model, source, "--out", tmp_path / "out", "--overwrite"], capsys)
    assert code == 0
    assert outside.read_bytes() == before  # the link was replaced, not followed
    written = tmp_path / "out" / "a.png"
    assert not written.is_symlink() and np.asarray(Image.open(written)).max() == 245


def test_translate_on_a_full_disk_leaves_no_partial_output(negate_model, tmp_path, capsys, monkeypatch):
    source = picture(tmp_path / "in" / "a.png")
    fill_disk_when_writing(monkeypatch, "a.png", room=20)
    code, _, err = cli(["translate", negate_model, source, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert err.strip().startswith(f"error: the disk is full while writing {tmp_path / 'out' / 'a.png'}")
    assert list((tmp_path / "out").iterdir()) == []
