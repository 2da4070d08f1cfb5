"""Execution time and peak memory of every chapter and exercise notebook.

Usage::

    python benchmarks/notebooks.py                 # every chapter and instructor exercise
    python benchmarks/notebooks.py chapters/01-regression.md

Each notebook runs in a fresh Python process (so imports and JIT compilation count), in a
fresh kernel, from its own folder. The peak memory is the largest resident set size of the
kernel, read from ``getrusage(RUSAGE_CHILDREN)`` after the kernel has exited: the kernel is a
child of that process, and the kernel is where a reader's Binder session would spend its 2 GB.
Targets (2 cores): each chapter under 60 s and 1.5 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS, TARGET_MB = 60.0, 1536.0

_CHILD = r"""
import json, resource, sys, time
import jupytext, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = jupytext.read(path) if path.endswith(".md") else nbformat.read(path, as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=1200, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
wall = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
print(json.dumps({"seconds": wall, "peak_mb": peak_kb / 1024}))
"""


def measure(path: Path) -> dict:
    """Run one notebook in a fresh process; return its wall time (s) and kernel peak RSS (MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(path.parent)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{path} failed to execute:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    paths = [Path(p).resolve() for p in argv] or (
        sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "exercises").glob("*.ipynb"))
    )
    print(f"{'notebook':<44} {'seconds':>8} {'peak MB':>8}  within target")
    failed = 0
    for path in paths:
        start = time.perf_counter()
        m = measure(path)
        ok = m["seconds"] < TARGET_SECONDS and m["peak_mb"] < TARGET_MB
        failed += not ok
        name = str(path.relative_to(ROOT))
        print(f"{name:<44} {m['seconds']:8.1f} {m['peak_mb']:8.0f}  {'yes' if ok else 'NO'}"
              f"   (process total {time.perf_counter() - start:.1f} s)")
    print(f"targets: < {TARGET_SECONDS:.0f} s and < {TARGET_MB:.0f} MB per notebook (2 cores)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
