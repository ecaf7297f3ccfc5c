"""The trainer keeps freed host memory for the next step instead of faulting it in again."""

import os
import subprocess
import sys

import pytest

from ganzoo.engine.host_memory import user_configured_malloc

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")

# A step's buffers (30 of 4 MiB) grow the heap by 120 MiB and are all freed by its end: more than
# twice any threshold glibc may have reached, so by default it trims them off the heap every step.
STEPS = """
import resource, sys, torch
from ganzoo.engine.host_memory import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
def step():
    buffers = [torch.ones(2**20) for _ in range(30)]
    del buffers
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(took, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def run_steps(mode: str, **env: str) -> tuple[str, float]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    out = subprocess.run([sys.executable, "-c", STEPS, mode], env={**environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], float(out[1])


@linux_only
def test_steps_reuse_memory_instead_of_faulting_it_in():
    took, kept = run_steps("keep")
    _, default = run_steps("default")
    assert took == "True"
    assert default > 3000  # memory given back and faulted in again, page by page, every step
    assert kept < default / 4


@linux_only
def test_a_malloc_the_user_configured_is_left_alone():
    took, faults = run_steps("keep", MALLOC_ARENA_MAX="2")
    assert took == "False"
    assert faults > 3000


def test_user_configuration_is_recognised():
    assert user_configured_malloc({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert user_configured_malloc({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert not user_configured_malloc({"PATH": "/usr/bin"})
