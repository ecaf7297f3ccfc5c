"""One writer per run folder: an OS lock on ``RUN/.lock`` held for as long as the process trains.

The operating system drops the lock when the process ends, however it ends (``kill -9``, OOM,
power loss), so a lock is never stale and nothing needs cleaning up by hand. The lock file stays
in the folder after the process ends: deleting it would let a third process lock a fresh file
while a second one still waits on the old one. It holds the holder's pid and host, written after
the lock is taken, for the message a second writer gets.

POSIX systems use ``fcntl.flock``. Children forked while the lock is held (DataLoader workers)
close their copy of the lock file at once, so a holder killed with ``kill -9`` does not leave its
workers holding the lock for the seconds they take to notice. Windows, which has no ``fcntl``,
locks one byte of the file with ``msvcrt.locking`` (also released by the OS when the process
ends); that byte lies past the pid so other processes can still read it.

Intended use, in the trainer (before reading or writing anything in the folder)::

    lock = RunLock(run_dir)
    lock.acquire()           # RunLockedError: "runs/x is in use by ganzoo process 4242 on host ..."
    try:
        run.remove_orphans()  # safe now: no other writer can be mid-write
        ...                   # train, checkpoint, append stats
    finally:
        lock.release()

or ``with RunLock(run_dir): ...``. Under torchrun only rank 0, the one process that writes the
folder, takes it.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from ganzoo.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_FILE = ".lock"
_WINDOWS_LOCK_OFFSET = 4096  # the locked byte on Windows, beyond the pid text that others read

_held_fds: set[int] = set()
_held_guard = threading.Lock()


def _close_in_forked_child() -> None:
    # The flock belongs to the open file shared with the parent; the child's copy would keep it
    # alive after the parent died. Closing the copy does not release the parent's lock.
    for fd in _held_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_forked_child)


class RunLockedError(UserError):
    """Another process holds the run folder's lock."""

    def __init__(self, run: Path, holder: str):
        self.run, self.holder = run, holder
        super().__init__(
            f"{run} is in use by {holder}: wait for it to finish (or stop it) and try again, "
            "or use another run folder"
        )


class RunLock:
    """The exclusive right to write into ``run_dir``, until ``release()`` or the end of the process."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock at once or raise ``RunLockedError`` naming the holder; never waits."""
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            locked = _try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(self.run_dir, holder)
        with _held_guard:
            _held_fds.add(fd)
        self._fd = fd
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _held_guard:
            _held_fds.discard(fd)
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    fields = os.read(fd, 256).decode("utf-8", "replace").split()
    if not fields or not fields[0].isdigit():  # the holder has locked but not yet written its pid
        return "another ganzoo process"
    pid = int(fields[0])
    host = fields[1] if len(fields) > 1 else ""
    where = f" on host {host}" if host and host != socket.gethostname() else ""
    own = " (this process)" if pid == os.getpid() and not where else ""
    return f"ganzoo process {pid}{where}{own}"
