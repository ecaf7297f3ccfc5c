"""RunLock: one writer per run folder, between real processes, never stale after kill -9."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ganzoo.engine.runlock import LOCK_FILE, RunLock, RunLockedError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX processes and signals")

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from ganzoo.engine.runlock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    if sys.argv[2] == "fork":  # a child forked while the lock is held, as DataLoader workers are
        ready_r, ready_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.write(ready_w, b"x")  # fork hooks have run by now, as in a real worker
            time.sleep(120)
            os._exit(0)
        os.read(ready_r, 1)  # on a busy machine the child may not have run at all yet
        print(child, flush=True)
    print("locked", flush=True)
    time.sleep(120)
    """
)


def start_holder(run, mode="plain"):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run), mode], stdout=subprocess.PIPE, text=True
    )
    first = proc.stdout.readline().strip()
    child = int(first) if mode == "fork" else None
    assert (proc.stdout.readline().strip() if mode == "fork" else first) == "locked"
    return proc, child


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    holder, _ = start_holder(run)
    try:
        with pytest.raises(RunLockedError) as err:
            RunLock(run).acquire()
        message = str(err.value)
        assert message.startswith(f"{run} is in use by ganzoo process {holder.pid}:")
        assert "wait for it to finish" in message and "\n" not in message
        assert (run / LOCK_FILE).read_text().split()[0] == str(holder.pid)
    finally:
        kill(holder.pid)
        holder.wait()


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    holder, _ = start_holder(run)
    kill(holder.pid)
    holder.wait()
    with RunLock(run) as lock:  # at once: no waiting, no cleanup by hand
        assert lock.held
        assert (run / LOCK_FILE).read_text().split()[0] == str(os.getpid())


def test_children_forked_by_the_holder_do_not_keep_the_lock_after_it_dies(tmp_path):
    run = tmp_path / "run"
    holder, child = start_holder(run, "fork")
    try:
        kill(holder.pid)
        holder.wait()
        os.kill(child, 0)  # the child is still alive ...
        with RunLock(run) as lock:  # ... and does not hold the lock
            assert lock.held
    finally:
        kill(child)


def test_the_same_process_cannot_take_a_held_folder_twice_and_release_frees_it(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(RunLockedError, match=rf"in use by ganzoo process {os.getpid()} \(this process\)"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not first.held
    with RunLock(tmp_path):
        pass
    assert (tmp_path / LOCK_FILE).exists()  # kept: deleting it would let two processes lock two files
