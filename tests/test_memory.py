"""memory.trim hands the C heap's freed pages back to the system."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dnerv_codec import memory

PROBE = textwrap.dedent(
    """
    import numpy as np
    from dnerv_codec.memory import trim

    def own_mib():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon"):
                return int(line.split()[1]) // 1024

    np.ones(2**20, np.uint8)  # a freed 1 MiB mapping: glibc now serves 1 MiB from its heap
    big, small = [], []
    for _ in range(300):  # 1 MiB frames pinned in place by small arrays allocated after them
        big.append(np.ones(2**20, np.uint8))
        small.append(np.ones(100, np.uint8))
    held = own_mib()
    big.clear()
    freed = own_mib()
    trim()
    print(held, freed, own_mib())
    """
)


def test_trim_is_safe_to_call_anywhere():
    memory.trim()
    memory.trim()


@pytest.mark.skipif(memory._trim is None, reason="the C library has no malloc_trim")
def test_trim_returns_freed_heap_pages():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, check=True
    )
    held, freed, trimmed = map(int, out.stdout.split())
    assert held >= 300
    if freed < 250:
        pytest.skip("this C library returned the freed frames itself")
    assert trimmed <= freed - 250, (held, freed, trimmed)
