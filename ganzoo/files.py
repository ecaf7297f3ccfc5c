"""Every file ganzoo writes is complete or absent.

Whole files (checkpoints, images, JSON, HTML) are written to a hidden temporary file in the
target's folder, flushed, fsynced and renamed over the target; the folder is then fsynced so the
rename itself survives a power loss. A crash at any moment leaves the old file or the new one,
plus at worst a ``.NAME.XXXXXXXX.tmp`` that ``remove_orphans`` deletes at the next start (only a
process holding the run folder's lock may call it: another writer's temporary file looks the same).

JSON lines (``stats.jsonl``) are appended one complete line per ``write()``. A crash or a full disk
can still leave a torn last line: readers skip it and say so, and the next append first cuts it
off, so a resumed run never glues a new record onto half an old one.

A full disk (ENOSPC) or an exhausted quota (EDQUOT) becomes ``DiskFullError``: one line naming the
file, which is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ganzoo.errors import UserError

# Ours (".NAME.<8 hex>.tmp") and tempfile.mkstemp's (".NAME.<8 of a-z0-9_>.tmp", older checkpoints).
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_DISK_FULL = {errno.ENOSPC: "the disk is full"}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _DISK_FULL[errno.EDQUOT] = "the disk quota is exceeded"
_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines


class DiskFullError(UserError):
    """No space (or no quota) left while writing ``path``; the file was left as it was.

    A caller that knows what is still safe adds it: ``raise err.with_note("the last good
    checkpoint is ...")``.
    """

    def __init__(self, path: str | Path, code: int = errno.ENOSPC, note: str = ""):
        self.path, self.code, self.note = Path(path), code, note
        extra = f"; {note}" if note else ""
        super().__init__(
            f"{_DISK_FULL.get(code, 'the disk is full')} while writing {path}, which was not written{extra}: "
            "free some space and try again"
        )

    def with_note(self, note: str) -> DiskFullError:
        return DiskFullError(self.path, self.code, note)


def disk_full_code(exc: BaseException) -> int | None:
    """ENOSPC or EDQUOT if ``exc`` or what it wraps is one (torch.save re-raises it as a RuntimeError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return current.errno
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def atomic_write(path: str | Path, *, replace: bool = True) -> Iterator[IO[bytes]]:
    """A binary file object whose content appears at ``path`` only when the block ends without error.

    ``replace=False`` refuses to replace an existing file (or symlink) at ``path`` at the moment of
    the rename, raising ``FileExistsError``. An existing symlink is never followed: the rename
    replaces the link itself. The file gets the permissions ``open()`` would give it (umask applied).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        _place(tmp, path, replace)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        code = disk_full_code(exc)
        if code is not None:
            raise DiskFullError(path, code) from exc
        raise
    _fsync_folder(path.parent)


def _create_temp(path: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: it creates 0600 files whatever the umask, so checkpoints ended up
    # unreadable to the group that can read the rest of the run. O_EXCL never follows a symlink.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY
    for _ in range(100):
        tmp = path.parent / f".{path.name[:200]}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def _place(tmp: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if anything, even a dangling symlink, is at path
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def publish(staged: str | Path, path: str | Path) -> Path:
    """Move a finished file written elsewhere in ``path``'s folder into place: fsync, rename, fsync
    the folder, so ``path`` is complete or absent even after a power loss (for writers, such as
    torch.onnx, that insist on writing a file themselves)."""
    staged, path = Path(staged), Path(path)
    with open(staged, "r+b") as file:
        os.fsync(file.fileno())
    os.replace(staged, path)
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; NTFS journals the rename itself
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself is already on disk
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, *, replace: bool = True) -> Path:
    with atomic_write(path, replace=replace) as file:
        file.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(value, indent=indent) + "\n")


def save_image(image, path: str | Path, *, replace: bool = True, **options: Any) -> Path:
    """Save a PIL image, or a uint8 HWC/HW array (one channel saved as grayscale), atomically, in
    the format the suffix names; ``options`` as for ``Image.save`` (e.g. ``quality``)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path.name}: '{path.suffix}' is not an image format Pillow can write: use .png or .jpg")
    with atomic_write(path, replace=replace) as file:
        image.save(file, format=fmt, **options)
    return path


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by writes that were killed; return them.

    Call it only while holding the folder's lock: a live writer's temporary file looks the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for item in folder.iterdir():
        if TEMP_FILE.match(item.name) and item.is_file() and not item.is_symlink():
            item.unlink(missing_ok=True)
            removed.append(item)
    return sorted(removed)


# -- JSON lines ----------------------------------------------------------------------------------
def append_json_line(path: str | Path, record: dict[str, Any]) -> bytes:
    """Append ``record`` as one complete line with one write; return any torn tail cut off first.

    A torn tail is a last line without its newline that is not valid JSON (a complete record
    whose newline was lost is kept). A failed write is rolled back, so the file ends in a whole
    line either way.
    """
    data = (json.dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _BINARY, 0o666)
    try:
        torn = _mend_tail(fd)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:  # a regular file writes all at once unless the disk fills up
                written = os.write(fd, view)
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                view = view[written:]
        except BaseException as exc:
            os.ftruncate(fd, start)
            code = disk_full_code(exc)
            if code is not None:
                raise DiskFullError(path, code) from exc
            raise
    finally:
        os.close(fd)
    return torn


def _mend_tail(fd: int) -> bytes:
    """End the file in a newline: cut off a torn last line (returned), or finish a complete one."""
    size = os.fstat(fd).st_size
    if size == 0 or _read_at(fd, size - 1, 1) == b"\n":
        return b""
    start = size
    while start > 0:  # back to the byte after the last newline
        chunk_start = max(0, start - 65536)
        chunk = _read_at(fd, chunk_start, start - chunk_start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    tail = _read_at(fd, start, size - start)
    if _json_object(tail) is not None:
        os.write(fd, b"\n")
        return b""
    os.ftruncate(fd, start)
    return tail


def _read_at(fd: int, offset: int, length: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)  # not os.pread: Windows lacks it
    return os.read(fd, length)


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:  # also UnicodeDecodeError: a write torn inside a multi-byte character
        return None
    return value if isinstance(value, dict) else None


def read_json_lines(path: str | Path) -> tuple[list[dict[str, Any]], str | None]:
    """Every JSON object in the file, and a one-line note naming the lines skipped (None when none)."""
    path = Path(path)
    records, bad = [], []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _json_object(line)
        if record is None:
            bad.append(number)
        else:
            records.append(record)
    if not bad:
        return records, None
    torn_tail = bad == [len(lines)]  # the last line, with no newline after it
    why = "torn by an interrupted write" if torn_tail else "not JSON objects"
    which = f"line {bad[0]}" if len(bad) == 1 else f"{len(bad)} lines ({', '.join(map(str, bad[:5]))}{'...' if len(bad) > 5 else ''})"
    return records, f"skipped {which} of {path} ({why})"
