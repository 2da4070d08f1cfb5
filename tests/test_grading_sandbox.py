"""course_grade.sandbox: what a job can write is capped, and none of it reaches the host.

These tests run the sandbox's own command line with a small Python program in place of the
grading runner. They need root and bubblewrap, as CI has (``scripts/test.sh`` installs it),
because that is the sandbox they test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_grade.sandbox import SANDBOX_HOME, Limits, Sandbox

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("bwrap")),
    reason="needs root and bubblewrap (apt-get install bubblewrap), as in CI",
)

# Writes 8 MB files into a folder until the disk refuses, and reports how much it wrote.
FILL = r"""
import json, os, sys
folder, written, error = sys.argv[1], 0, None
block = b"x" * (8 * 2**20)
try:
    for k in range(40):  # up to 320 MB: five times the quota the tests set
        with open(os.path.join(folder, f"fill-{k}.bin"), "wb") as fh:
            fh.write(block)
        written += len(block)
except OSError as err:
    error = err.strerror
print(json.dumps({"written_mb": written / 2**20, "error": error}))
"""


def run_in_sandbox(tmp_path: Path, limits: Limits, code: str, *args: str) -> dict:
    """Run ``python -c code args`` with the sandbox's namespaces, binds, uid and limits."""
    scratch = tmp_path / "scratch"
    box = Sandbox("bwrap", limits)
    box.prepare_scratch(scratch, 64_000, None)
    argv, env = box.command(scratch, 64_000)
    cut = len(argv) - argv[::-1].index("--")  # the runner's command follows the last "--"
    argv = [*argv[:cut], sys.executable, "-c", code, *args]
    proc = subprocess.run(argv, env=env, cwd=scratch, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"result": json.loads(proc.stdout.strip().splitlines()[-1]), "scratch": scratch}


@pytest.mark.parametrize("folder", [SANDBOX_HOME, "/tmp", "/dev/shm"])
def test_a_job_cannot_write_more_than_its_quota_to_any_writable_folder(tmp_path, folder):
    limits = Limits(tmp_mb=64)
    out = run_in_sandbox(tmp_path, limits, FILL, folder)
    result = out["result"]
    assert result["error"] == "No space left on device", result
    assert result["written_mb"] <= 64, result


def test_what_a_job_writes_in_its_home_never_reaches_the_host(tmp_path):
    out = run_in_sandbox(tmp_path, Limits(tmp_mb=32), FILL, SANDBOX_HOME)
    assert out["result"]["written_mb"] > 0
    host_files = [p for p in out["scratch"].rglob("*") if p.is_file()]
    assert not any(p.name.startswith("fill-") for p in host_files), host_files
    assert sum(p.stat().st_size for p in host_files) < 2**20
