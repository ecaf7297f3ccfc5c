"""The trainer keeps freed host memory for the next step instead of faulting it in again."""

import mmap
import os
import subprocess
import sys

import pytest

from ganzoo.engine.host_memory import user_configured_malloc

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")

# A step's buffers (30 of 4 MiB, 30,720 pages) are all freed by its end; three warm-up steps let the
# heap settle before faults are counted. Whether glibc's defaults give that memory back each step
# depends on what the process freed before and on where ASLR put the heap (the same script measured
# 0 or about 30,000 faults a step from run to run), so the script first pins glibc's starting mmap
# threshold: every buffer is then its own mapping, unmapped when freed and faulted in again by the
# next step, unless keep_freed_memory changes that.
STEPS = """
import ctypes, resource, sys, torch
from ganzoo.engine.host_memory import M_MMAP_THRESHOLD, keep_freed_memory
ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 128 * 1024)
took = keep_freed_memory() if sys.argv[1] == "keep" else None
def step():
    buffers = [torch.ones(2**20) for _ in range(30)]
    del buffers
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(took, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""
PAGES_PER_STEP = 30 * 2**22 // mmap.PAGESIZE


def run_steps(mode: str, **env: str) -> tuple[str, float]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    out = subprocess.run([sys.executable, "-c", STEPS, mode], env={**environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], float(out[1])


@linux_only
def test_steps_reuse_memory_instead_of_faulting_it_in():
    _, given_back = run_steps("default")
    took, kept = run_steps("keep")
    assert given_back > 0.9 * PAGES_PER_STEP  # every step faults its buffers in again
    assert took == "True"
    assert kept < PAGES_PER_STEP / 100  # measured: 0 faults a step


@linux_only
def test_a_malloc_the_user_configured_is_left_alone():
    took, faults = run_steps("keep", MALLOC_TOP_PAD_="0")
    assert took == "False"
    assert faults > 0.9 * PAGES_PER_STEP


def test_user_configuration_is_recognised():
    assert user_configured_malloc({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert user_configured_malloc({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert not user_configured_malloc({"PATH": "/usr/bin"})
