"""Binder's environment: what students' image installs today (the root ``requirements.txt``, the
book's build and test environment) against the lean ``binder/requirements.txt``.

Usage::

    python benchmarks/bench_binder.py

1. The plan: ``repo2docker --no-build`` renders the Dockerfile Binder would build (no Docker
   needed); the lines that install requirements and run ``postBuild`` are printed, showing that
   ``binder/`` is read instead of the root.
2. The size: each requirements file is pip-installed into a fresh virtual environment (from the
   repository, as repo2docker does, so ``-e .`` installs the course's package) and measured with
   ``du``, with its install time and the authors' tools it brings (pytest, playwright,
   jupyter-book, sphinx, repo2docker, ...). repo2docker's base environment (conda, Python,
   its own JupyterLab) is the same for both and is not counted; the lean set pins its own
   JupyterLab and jupytext, so those are counted in the lean figure only.

Peer: today's Binder configuration (the root ``requirements.txt``). Target: the lean set holds
no test, build or grading tool, and is smaller. pip's cache is used (the figure is the
installed size, not the download). Results are also written to ``benchmarks/results/bench_binder.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {"today (requirements.txt)": ROOT / "requirements.txt",
        "lean (binder/requirements.txt)": ROOT / "binder" / "requirements.txt"}
#: Distributions students never need: tests, the website build, the grader, Binder's own checker.
TOOLING = ["pytest", "nbval", "playwright", "jupyter-book", "sphinx", "myst-nb", "jupyter-repo2docker",
           "build", "dask", "distributed", "docker"]  # (nbclient comes with JupyterLab: nbconvert)


def plan() -> list[str]:
    """The Dockerfile lines of repo2docker's plan that install requirements or run postBuild."""
    exe = Path(sys.executable).parent / "repo2docker"
    proc = subprocess.run([str(exe), "--no-build", "--debug", str(ROOT)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"repo2docker --no-build failed:\n{proc.stderr[-2000:]}")
    return [line for line in proc.stdout.splitlines()
            if not line.lstrip().startswith("#") and re.search(r"pip install .*-r|postBuild|^COPY .*requirements", line)]


def measure(requirements: Path, scratch: Path) -> dict:
    """Install one requirements file into a fresh venv; its size, time and packages."""
    venv = scratch / requirements.parent.name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    start = time.perf_counter()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                           "-q", "-r", str(requirements)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pip install -r {requirements} failed:\n{proc.stderr[-2000:]}")
    size = int(subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True, check=True)
               .stdout.split()[0])
    listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                             capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listing)}
    shutil.rmtree(venv)
    return {"bytes": size, "install_s": round(seconds, 1), "packages": len(names),
            "tooling": sorted(t for t in TOOLING if t in names),
            "jupyterlab": "jupyterlab" in names}


def main() -> int:
    print("repo2docker --no-build: what Binder's Dockerfile installs")
    for line in plan():
        print("   ", line.strip())
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-binder-") as scratch:
        for label, requirements in SETS.items():
            results[label] = r = measure(requirements, Path(scratch))
            print(f"{label:32} {r['bytes'] / 2**20:7.0f} MiB installed, {r['packages']:3d} packages, "
                  f"pip {r['install_s']:.0f} s (warm cache); JupyterLab pinned: {'yes' if r['jupyterlab'] else 'no'}; "
                  f"authors' tools: {', '.join(r['tooling']) or 'none'}")
    today, lean = results.values()
    saved = today["bytes"] - lean["bytes"]
    print(f"lean saves {saved / 2**20:.0f} MiB ({100 * saved / today['bytes']:.0f}%) and "
          f"{today['packages'] - lean['packages']} packages; "
          f"target (no test/build/grading tool, smaller): {'met' if not lean['tooling'] and saved > 0 else 'MISSED'}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_binder.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
