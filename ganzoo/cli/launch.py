"""`ganzoo train --nproc N`: run the same command again under torchrun, one process per GPU/core group.

The launcher is PyTorch's own (``python -m torch.distributed.run``); this only spares users its
flags for the single-machine case. Multi-node jobs call torchrun directly (see docs/scaling.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ganzoo.errors import UserError


def without_nproc(args: list[str]) -> list[str]:
    """``args`` with every ``--nproc N`` / ``--nproc=N`` removed."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def torchrun_command(nproc: int, args: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "ganzoo", *without_nproc(args),
    ]


def relaunch_with_torchrun(nproc: int, argv: list[str] | None = None) -> int:
    """Run this command (``argv``, default ``sys.argv[1:]``) on ``nproc`` local processes; returns torchrun's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--nproc" or a.startswith("--nproc=") for a in args):
        raise UserError("--nproc relaunches the `ganzoo` command line; from Python, start torchrun yourself")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("this process already runs under torchrun: drop --nproc")
    env = dict(os.environ)
    # torchrun would pin every worker to one thread (with a warning); share the cores instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    process = subprocess.Popen(torchrun_command(nproc, args), env=env)
    # Ctrl-C reaches torchrun directly (same terminal); torchrun forwards it to the workers, which
    # stop at one step and checkpoint. This process only waits, instead of killing torchrun.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
