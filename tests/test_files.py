"""ganzoo.files: whole files complete or absent, JSON lines whole, a full disk as one line."""

import errno
import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from fault_helpers import fill_disk_when_writing
from ganzoo import files
from ganzoo.engine import checkpoint as ckpt


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "config.json"
    files.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError, match="crashed"):
        with files.atomic_write(target) as f:
            f.write(b'{"v": 2, "half')
            raise RuntimeError("crashed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert names(tmp_path) == ["config.json"]


def test_files_get_the_permissions_open_would_give_them(tmp_path):
    previous = os.umask(0o027)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        files.write_text(tmp_path / "atomic.txt", "x")
        ckpt.save_atomic({"step": 1}, tmp_path / "ckpt-00000001.pt")  # tempfile.mkstemp made these 0600
    finally:
        os.umask(previous)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)  # noqa: E731
    assert mode("plain.txt") == 0o640
    assert mode("atomic.txt") == mode("ckpt-00000001.pt") == 0o640


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "the disk quota is exceeded")])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_partial(tmp_path, monkeypatch, code, words):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    fill_disk_when_writing(monkeypatch, room=100, code=code)
    with pytest.raises(files.DiskFullError) as err:
        files.save_image(image, tmp_path / "samples" / "step-00000010.png")
    message = str(err.value)
    assert message.startswith(f"{words} while writing {tmp_path / 'samples' / 'step-00000010.png'}")
    assert "free some space" in message and "\n" not in message
    assert names(tmp_path / "samples") == []
    noted = err.value.with_note("the last good checkpoint is ckpt-00000008.pt")
    assert isinstance(noted, files.DiskFullError) and "; the last good checkpoint is ckpt-00000008.pt:" in str(noted)


def test_a_full_disk_inside_torch_save_is_recognised(tmp_path, monkeypatch):
    ckpt.save_atomic({"step": 1}, tmp_path / "ckpt-00000001.pt")
    fill_disk_when_writing(monkeypatch, room=1000)
    # torch.save turns the write error into a RuntimeError; the ENOSPC is in its context.
    with pytest.raises(files.DiskFullError, match="ckpt-00000002.pt, which was not written"):
        ckpt.save_atomic({"step": 2, "w": torch.zeros(10_000)}, tmp_path / "ckpt-00000002.pt")
    monkeypatch.undo()
    assert names(tmp_path) == ["ckpt-00000001.pt"]
    assert ckpt.load(tmp_path / "ckpt-00000001.pt")["step"] == 1


def test_no_replace_refuses_files_and_links_and_a_symlink_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "link.txt").symlink_to(outside)
    (folder / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (folder / "file.txt").write_text("old")
    for name in ("link.txt", "dangling.txt", "file.txt"):
        with pytest.raises(FileExistsError):
            files.write_bytes(folder / name, b"new", replace=False)
    assert not (tmp_path / "nowhere.txt").exists() and (folder / "file.txt").read_text() == "old"
    files.write_bytes(folder / "link.txt", b"new")
    assert outside.read_text() == "keep me"
    assert not (folder / "link.txt").is_symlink() and (folder / "link.txt").read_text() == "new"
    assert names(folder) == ["dangling.txt", "file.txt", "link.txt"]


def test_remove_orphans_deletes_only_temporary_files_of_killed_writes(tmp_path):
    orphans = [".ckpt-00000004.pt.k2x9_a1b.tmp", ".config.json.0123abcd.tmp", ".step-00000002.png.deadbeef.tmp"]
    keep = ["ckpt-00000002.pt", "notes.tmp", ".hidden", "config.json.tmp"]
    for name in orphans + keep:
        (tmp_path / name).write_text("x")
    assert [p.name for p in files.remove_orphans(tmp_path)] == sorted(orphans)
    assert names(tmp_path) == sorted(keep)


# -- JSON lines ---------------------------------------------------------------------------------
def test_append_cuts_off_a_torn_last_line_but_keeps_a_complete_one(tmp_path):
    stats = tmp_path / "stats.jsonl"
    stats.write_text('{"step": 1}\n{"step": 2, "D/lo')
    assert files.append_json_line(stats, {"step": 3}) == b'{"step": 2, "D/lo'
    assert stats.read_text() == '{"step": 1}\n{"step": 3}\n'
    stats.write_text('{"step": 1}\n{"step": 2}')  # complete, only its newline lost
    assert files.append_json_line(stats, {"step": 3}) == b""
    assert stats.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    stats.write_bytes('{"step": 1}\n{"name": "\u00e9'.encode()[:-1])  # torn inside a UTF-8 character
    files.append_json_line(stats, {"step": 3})
    assert stats.read_text() == '{"step": 1}\n{"step": 3}\n'


def test_a_line_that_does_not_fit_is_rolled_back(tmp_path, monkeypatch):
    stats = tmp_path / "stats.jsonl"
    stats.write_text('{"step": 1}\n')
    real_write = os.write

    def short_then_full(fd, data):  # a disk filling up: part of the line, then ENOSPC
        if len(data) > 4:
            return real_write(fd, bytes(data[:4]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(files.DiskFullError, match="the disk is full while writing .*stats.jsonl"):
        files.append_json_line(stats, {"step": 2, "G/loss": 0.5})
    monkeypatch.undo()
    assert stats.read_text() == '{"step": 1}\n'


def test_readers_skip_damaged_lines_and_say_which(tmp_path):
    stats = tmp_path / "stats.jsonl"
    stats.write_text('{"step": 1}\n\n{"step": 2}\n{"step": 3, "G/lo')
    records, note = files.read_json_lines(stats)
    assert records == [{"step": 1}, {"step": 2}]
    assert note == f"skipped line 4 of {stats} (torn by an interrupted write)"
    stats.write_text('{"step": 1}\n{"step": 2, "G{"step": 3}\n[1]\n{"step": 4}\n')
    records, note = files.read_json_lines(stats)
    assert records == [{"step": 1}, {"step": 4}]
    assert note.startswith("skipped 2 lines (2, 3) of") and "not JSON objects" in note
    stats.write_text('{"step": 1}\n')
    assert files.read_json_lines(stats) == ([{"step": 1}], None)
