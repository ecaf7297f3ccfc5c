"""Faults for tests: a disk that fills up in the middle of a write; a run of the test's own to damage."""

import errno
import io
import os
import shutil

import pytest

from ganzoo import files


class FullDisk(io.RawIOBase):
    """What a file on a nearly full disk does: the first ``room`` bytes go through, then ``code``."""

    def __init__(self, fd: int, room: int, code: int = errno.ENOSPC):
        self.fd, self.room, self.code = fd, room, code

    def writable(self):
        return True

    def fileno(self):
        return self.fd

    def write(self, data):
        if self.room <= 0:
            raise OSError(self.code, os.strerror(self.code))
        written = os.write(self.fd, bytes(data[: self.room]))
        self.room -= written
        return written

    def close(self):
        if not self.closed:
            os.close(self.fd)
        super().close()


def fill_disk_when_writing(monkeypatch, name_part: str = "", room: int = 200, code: int = errno.ENOSPC) -> None:
    """Files written through ``ganzoo.files`` whose name contains ``name_part`` hit a full disk."""
    doomed = set()
    create, fdopen = files._create_temp, os.fdopen

    def create_temp(path):
        fd, tmp = create(path)
        if name_part in path.name:
            doomed.add(fd)
        return fd, tmp

    def open_fd(fd, *args, **kwargs):
        if fd in doomed:
            doomed.discard(fd)
            return io.BufferedWriter(FullDisk(fd, room, code))
        return fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(files, "_create_temp", create_temp)
    monkeypatch.setattr(os, "fdopen", open_fd)


@pytest.fixture
def copied_run(tiny_dcgan_run, tmp_path):
    """A 4-step tiny DCGAN run (checkpoints and grids at 2 and 4) of this test's own, to damage."""
    return shutil.copytree(tiny_dcgan_run, tmp_path / "run")


def cli(argv, capsys):
    """``ganzoo ARGV`` in this process: (exit code, stdout, stderr)."""
    from ganzoo.cli.app import main

    with pytest.raises(SystemExit) as done:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return done.value.code or 0, captured.out, captured.err
