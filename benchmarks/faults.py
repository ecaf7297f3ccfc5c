"""Fault injection at scale: does a run folder survive kills, full disks, rival writers and damage?

Every trial trains the same tiny DCGAN on the built-in digits to the same step and compares its final
checkpoint (networks, EMA copies, optimizers) with an uninterrupted reference run: exact resume means
they are identical, bit for bit. Faults:

- ``kill``: ``ganzoo train`` in a child process is killed with SIGKILL, up to ``--kills-per-trial``
  times, and resumed with ``--resume`` after each kill: every other kill at a random moment, the
  others the moment a checkpoint's temporary file appears (in the middle of writing it);
- ``disk``: the disk fills up (ENOSPC) at a random write of the run (a checkpoint, a grid, a stats
  line, the config), then space is freed and the run resumed;
- ``writers``: two ``ganzoo train`` processes start into one folder at the same moment; exactly one
  may train, the other must stop with one line: naming the first one's pid while it trains, or
  saying the folder already holds a run when it got there after the first had finished;
- ``corrupt``: the newest checkpoint is truncated after a run stopped, then the run is resumed.

    python benchmarks/faults.py                      # 50 kills, 20 full disks, 10 rival pairs, 10 corruptions
    python benchmarks/faults.py --kills 5 --disks 2 --writers 2 --corrupt 2 --json out.json

A file is *lost* when a run folder ends with an unreadable checkpoint that was not set aside, a
checkpoint from a bad state, or a run that cannot be resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

STEPS = 24
REFUSALS = re.compile(r"is in use by ganzoo process \d+|already holds a run: pass --resume")
SETTINGS = {"progress": False, "log_every": 1, "sample_every": 4, "checkpoint_every": 1, "keep_checkpoints": 2}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(run: Path, *extra: str) -> list[str]:
    sets = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "ganzoo", "train", "dcgan", "--preset", "tiny", "--steps", str(STEPS),
            "--out", str(run), *sets, *extra]


def resume_command(run: Path) -> list[str]:
    return [sys.executable, "-m", "ganzoo", "train", "--resume", str(run), "--steps", str(STEPS)]


def final_state(run: Path) -> dict:
    from ganzoo.engine import checkpoint as ckpt

    return ckpt.load(ckpt.checkpoint_path(run / "checkpoints", STEPS))


def identical(a: dict, b: dict) -> bool:
    def tensors(state):
        out = {}
        for part in ("nets", "ema"):
            for role, weights in state[part].items():
                out.update({f"{part}.{role}.{k}": v for k, v in weights.items()})
        for name, opt in state["optimizers"].items():
            for index, slot in opt["state"].items():
                out.update({f"opt.{name}.{index}.{k}": v for k, v in slot.items() if torch.is_tensor(v)})
        return out

    ta, tb = tensors(a), tensors(b)
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def folder_is_whole(run: Path) -> bool:
    """Every checkpoint left in place loads (damaged ones were set aside), no temporary file is left."""
    from ganzoo.engine import checkpoint as ckpt
    from ganzoo.errors import UserError

    for path in ckpt.list_checkpoints(run / "checkpoints"):
        try:
            ckpt.load(path)
        except UserError:
            return False
    return not any(run.rglob("*.tmp"))


def finish(run: Path, timeout: float = 600) -> bool:
    """Continue the run to the end as a user would: resume it, or (stopped before its config was
    written) run the same command again."""
    argv = resume_command(run) if (run / "config.json").exists() else command(run)
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout).returncode == 0


def wait_for_checkpoint_write(run: Path, proc: subprocess.Popen, skip: int) -> None:
    """Return while a checkpoint is being written (its temporary file exists), after ``skip`` writes."""
    seen: set[str] = set()
    folder = run / "checkpoints"
    while proc.poll() is None:
        temporary = {p.name for p in folder.glob(".ckpt-*.tmp")} if folder.is_dir() else set()
        if temporary - seen:
            if len(seen) >= skip:
                return
            seen |= temporary
        time.sleep(0.0005)


def trial_kill(root: Path, rng: random.Random, reference: dict, kills: int, duration: float) -> dict:
    run = root / "run"
    killed_mid_write = 0
    argv = command(run)
    for kill in range(kills):
        proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill % 2:
            wait_for_checkpoint_write(run, proc, skip=rng.randint(0, STEPS // 2))
        else:
            time.sleep(rng.uniform(0.2, duration))
        if proc.poll() is not None:
            break  # it finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_mid_write += any((run / "checkpoints").glob(".*.tmp")) if (run / "checkpoints").is_dir() else 0
        argv = resume_command(run) if (run / "config.json").exists() else command(run)
    resumed = finish(run)
    whole = folder_is_whole(run)
    same = resumed and identical(final_state(run), reference)
    return {"resumed": resumed, "identical": same, "lost": not (resumed and whole), "mid_write": killed_mid_write}


class FilledDisk:
    """``ganzoo.files``' view of the OS in which the ``hit``-th write of a file whose name contains
    ``target`` meets a full disk: half of it lands, then ENOSPC (a stats line is torn; a temporary file
    is left half written)."""

    def __init__(self, target: str, hit: int):
        self.target, self.hit, self.seen, self.filled = target, hit, 0, False

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        import errno

        if self.filled:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.target in os.readlink(f"/proc/self/fd/{fd}"):
            self.seen += 1
            if self.seen == self.hit:
                self.filled = True
                return os.write(fd, bytes(data)[: max(1, len(data) // 2)])
        return os.write(fd, data)


def trial_disk(root: Path, rng: random.Random, reference: dict) -> dict:
    """The disk fills up at a random write: of a checkpoint, a sample grid, the config or a stats line."""
    import io

    from ganzoo import files
    from ganzoo.api import train
    from ganzoo.errors import UserError

    run = root / "run"
    writes = {"ckpt-": STEPS, "step-": STEPS // SETTINGS["sample_every"], "config.json": 1, "stats.jsonl": STEPS}
    target = rng.choice(sorted(writes))
    hit = rng.randint(1, writes[target])
    disk = FilledDisk(target, hit)
    fdopen = os.fdopen

    def open_fd(fd, *args, **kwargs):  # temporary files are written through file objects
        if "w" in (args[0] if args else kwargs.get("mode", "r")) and target in os.readlink(f"/proc/self/fd/{fd}"):
            raw = io.FileIO(fd, "wb")

            class Filling(io.RawIOBase):
                def writable(self):
                    return True

                def fileno(self):
                    return fd

                def write(self, data):
                    return disk.write(fd, data)

                def close(self):
                    raw.close()
                    super().close()

            return io.BufferedWriter(Filling())
        return fdopen(fd, *args, **kwargs)

    stopped_by_disk = False
    files.os, os.fdopen = disk, open_fd
    try:
        train("dcgan", preset="tiny", steps=STEPS, out=run, overrides=SETTINGS)
    except UserError as exc:
        stopped_by_disk = "disk is full" in str(exc)
    finally:
        files.os, os.fdopen = os, fdopen
    resumed = finish(run)
    same = resumed and identical(final_state(run), reference)
    return {"resumed": resumed, "identical": same, "lost": not (resumed and folder_is_whole(run)),
            "stopped_by_disk": stopped_by_disk, "target": target}


def trial_writers(root: Path) -> dict:
    run = root / "run"
    first = subprocess.Popen(command(run), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command(run), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outcomes = [(p, *p.communicate(timeout=600)) for p in (first, second)]
    finished = [p for p, _, _ in outcomes if p.returncode == 0]
    refused = [(p, err) for p, _, err in outcomes if p.returncode != 0]
    # The loser is refused in one line: "in use" while the winner trains, or "already holds a run"
    # when it reached the folder only after the winner had finished (a slow start on a busy machine).
    one_line = all(len(err.strip().splitlines()) == 1 and REFUSALS.search(err) for _, err in refused)
    stats_steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    clean = stats_steps == list(range(1, STEPS + 1))
    return {"one_trained": len(finished) == 1 and len(refused) == 1 and one_line, "clean": clean,
            "lost": not (clean and folder_is_whole(run))}


def trial_corrupt(root: Path, rng: random.Random, reference: dict) -> dict:
    from ganzoo.engine import checkpoint as ckpt

    run = root / "run"
    stop_at = rng.randint(4, STEPS - 2)
    argv = command(run)
    argv[argv.index("--steps") + 1] = str(stop_at)
    subprocess.run(argv, env=ENV, check=True, capture_output=True)
    latest = ckpt.latest(run / "checkpoints")
    data = latest.read_bytes()
    latest.write_bytes(data[: rng.randint(1, len(data) - 1)])
    resumed = finish(run)
    same = resumed and identical(final_state(run), reference)
    return {"resumed": resumed, "identical": same, "lost": not (resumed and folder_is_whole(run))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="kill trials")
    parser.add_argument("--kills-per-trial", type=int, default=3)
    parser.add_argument("--disks", type=int, default=20)
    parser.add_argument("--writers", type=int, default=10)
    parser.add_argument("--corrupt", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the child processes: one thread count, one rounding, comparable weights
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ganzoo-faults-"))
    started = time.time()
    reference_run = work / "reference"
    subprocess.run(command(reference_run), env=ENV, check=True, capture_output=True)
    reference = final_state(reference_run)
    duration = time.time() - started  # one whole run, start-up included: kills land anywhere in it

    rows = {}
    for name, count, trial in (
        ("kill -9 (then resume)", args.kills, lambda d: trial_kill(d, rng, reference, args.kills_per_trial, duration)),
        ("full disk (then resume)", args.disks, lambda d: trial_disk(d, rng, reference)),
        ("two writers at once", args.writers, trial_writers),
        ("truncated latest checkpoint", args.corrupt, lambda d: trial_corrupt(d, rng, reference)),
    ):
        results = []
        for i in range(count):
            folder = work / f"{name.split()[0]}-{i}"
            folder.mkdir()
            results.append(trial(folder))
            shutil.rmtree(folder, ignore_errors=True)
            print(f"{name} {i + 1}/{count}: {results[-1]}", flush=True)
        rows[name] = results
    shutil.rmtree(work, ignore_errors=True)

    print(f"\nfault injection: tiny DCGAN on digits, {STEPS} steps, a checkpoint every step; "
          f"{time.time() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{'fault':<30} {'trials':>6} {'resumed':>8} {'identical':>10} {'files lost':>11}  notes")
    for name, results in rows.items():
        resumed = sum(r.get("resumed", r.get("one_trained", False)) for r in results)
        same = sum(r.get("identical", r.get("clean", False)) for r in results)
        lost = sum(r["lost"] for r in results)
        notes = ""
        if name.startswith("kill"):
            notes = f"{sum(r['mid_write'] for r in results)} kills landed mid-checkpoint"
        if name.startswith("full"):
            notes = f"{sum(r['stopped_by_disk'] for r in results)} stopped with the one-line disk-full message"
        if name.startswith("two"):
            notes = "resumed = exactly one trained and the other got one line; identical = stats clean"
        print(f"{name:<30} {len(results):>6} {resumed:>8} {same:>10} {lost:>11}  {notes}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
