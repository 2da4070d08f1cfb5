"""Build time of the website: a clean build that executes everything, and cached rebuilds.

Usage::

    python benchmarks/bench_build.py                     # edit the last chapter of _toc.yml
    python benchmarks/bench_build.py --chapter chapters/01-regression.md

The repository is copied to a temporary folder (without ``_build``, ``.venv`` or ``.git``), so
the measurement neither uses nor disturbs the repository's ``_build`` and execution cache. In
that copy it times, with the README's build command (``jupyter-book build . -n -W --keep-going``):

1. a clean build: no ``_build``, no execution cache, and an empty cache for the vendored
   JavaScript (it is downloaded from the npm registry and hash-checked, as on a new machine);
2. a rebuild with nothing changed;
3. a rebuild after editing the prose of one chapter (a paragraph appended): only that page is
   re-read, its cells are not re-run;
4. a rebuild after editing a code cell of that chapter (a cell appended): that chapter is
   re-executed, the others come from the cache. This costs step 3 plus the chapter's own run
   time (``benchmarks/notebooks.py``), so it is reported without a target.

Targets (2 cores): clean build under 5 minutes; a rebuild after editing one chapter under 30 s.
Results are also written to ``benchmarks/results/bench_build.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLEAN_TARGET_S, REBUILD_TARGET_S = 300.0, 30.0
IGNORE = shutil.ignore_patterns("_build", ".venv", ".git", ".pytest_cache", ".jupyter_cache",
                                "__pycache__", "*.egg-info", "results", ".ipynb_checkpoints", ".jax_cache")


def build(copy: Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    jb = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    proc = subprocess.run([str(jb), "build", str(copy), "-n", "-W", "--keep-going"],
                          capture_output=True, text=True, cwd=copy, env=env)
    return time.perf_counter() - start, proc


def last_toc_chapter() -> str:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])
                if c["file"].startswith("chapters/")]
    return chapters[-1] + ".md"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapter", default=None, help="chapter to edit (default: the last in _toc.yml)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    chapter = args.chapter or last_toc_chapter()

    tmp = Path(tempfile.mkdtemp(prefix="bench-build-"))
    copy = tmp / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORE, symlinks=True)
    env = dict(os.environ, COURSE_VENDOR_CACHE=str(tmp / "vendor-cache"),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    results, failed = {}, False
    try:
        steps = [("clean build (executes every chapter)", None, CLEAN_TARGET_S),
                 ("rebuild, nothing changed", None, REBUILD_TARGET_S),
                 (f"rebuild after editing prose of {chapter}", "prose", REBUILD_TARGET_S),
                 (f"rebuild after editing a code cell of {chapter}", "code", None)]
        print(f"{'step':<72} {'seconds':>8}  target")
        for name, edit, target in steps:
            source = copy / chapter
            if edit == "prose":
                source.write_text(source.read_text() + "\nA paragraph added by bench_build.\n")
            elif edit == "code":
                source.write_text(source.read_text() + "\n```{code-cell} ipython3\n1 + 1\n```\n")
            seconds, proc = build(copy, env)
            ok = proc.returncode == 0 and (target is None or seconds < target)
            failed |= not ok
            results[name] = {"seconds": round(seconds, 1), "target_s": target, "returncode": proc.returncode}
            status = "ok" if ok else ("BUILD FAILED" if proc.returncode else "OVER")
            limit = f"< {target:.0f} s" if target else "(re-runs it)"
            print(f"{name:<72} {seconds:8.1f}  {limit:<12} {status}", flush=True)
            if proc.returncode:
                print((proc.stdout + proc.stderr)[-3000:])
                break
    finally:
        if args.keep:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = {"cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M")}
    print(f"machine: {meta['cpus']} CPUs, 1-minute load average {meta['load_avg_1min']} at the end "
          "(other work on the machine inflates the times)")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_build.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
