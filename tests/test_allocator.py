"""glibc keeps the large blocks the evidence frees and asks for again (page faults counted, not time)."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# three 8 MiB blocks freed together, 24 MiB at the top of the heap, then asked for again: the evidence's
# chunk, reduced to its allocations; minor page faults of the last 5 of 10 rounds
# (glibc's heap settles in the first rounds)
ROUNDS = """
import resource, sys, torch
from bayesvae.inference.allocator import keep_freed_blocks
tuned = keep_freed_blocks() if sys.argv[1] == "tuned" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for round in range(10):
    if round == 5:
        start = faults()
    blocks = [torch.ones(2 << 20) for _ in range(3)]
    del blocks
print(tuned, (faults() - start) // 5)
"""


def _faults_per_round(mode: str, **env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout.split()
    return out[0], int(out[1])


def test_freed_blocks_are_kept_instead_of_faulted_in_again():
    """Baseline: a trim threshold of 1 MiB set by hand (which also stops glibc moving its mmap threshold,
    so every 8 MiB block is mapped on request and returned on free): the count sees the pages faulted in
    again. glibc's own default is not a fixed baseline: whether it trims depends on the heap's layout,
    which changes from run to run (0 or ~4,000 faults per round here, even with PYTHONHASHSEED fixed;
    asserting on it made this test fail one run in three)."""
    baseline_took, baseline = _faults_per_round("default", MALLOC_TRIM_THRESHOLD_=str(1 << 20))
    pages = 3 * (8 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert baseline_took == "False"
    assert baseline > pages / 2         # the count sees memory returned and faulted in again
    for _ in range(3):                  # tuned: kept whatever the layout of that run's heap
        tuned_took, tuned = _faults_per_round("tuned")
        assert tuned_took == "True"
        assert tuned < pages / 20


def test_the_users_own_allocator_settings_are_left_alone():
    took, _ = _faults_per_round("tuned", MALLOC_MMAP_THRESHOLD_=str(1 << 20))
    assert took == "False"
