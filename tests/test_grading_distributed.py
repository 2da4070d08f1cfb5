"""course_grade.distributed (``course-grade grade --scheduler``): a batch graded on a real
Dask cluster gives the same ``grades.csv`` as a local run, a worker killed mid-batch loses
no row, and a submission whose worker keeps dying ends ``crashed`` after two retries.

No mocks: the clusters are ``distributed.LocalCluster``s of worker processes, and the
submissions come from the corpus of ``tests/grading_corpus/corpus.py`` (exercise 1, the
cheapest to run). Like the corpus tests of ``test_grading.py``, these need root and
bubblewrap, the sandbox the workers run the notebooks in.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import dask
import pytest
from distributed import Client, LocalCluster

from course_grade.distributed import (
    ALLOWED_FAILURES, DASK_SETTINGS, connect, parse_scheduler, worker_environment,
)
from course_grade.sandbox import processes_of, uid_range

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "exercises" / "01-regression.ipynb"
sys.path.insert(0, str(ROOT / "tests" / "grading_corpus"))
import corpus  # noqa: E402  (tests/grading_corpus/corpus.py)

SANDBOXED = os.geteuid() == 0 and shutil.which("bwrap") is not None
needs_sandbox = pytest.mark.skipif(
    not SANDBOXED, reason="needs root and bubblewrap (apt-get install bubblewrap), as in CI"
)
CELL_TIMEOUT, TIMEOUT = 20, 60  # as in test_grading.py; the endless loop costs one cell timeout a run
#: Right, wrong, an endless loop, a crash, and a file that cannot be graded.
MIXED = ["correct.ipynb", "mistake-se-divide-by-n.ipynb", "endless-loop.ipynb", "os-exit.ipynb",
         "broken-json.ipynb"]


def grade(folder: Path, out: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-m", "course_grade", "grade", str(ASSIGNMENT), str(folder), "--out", str(out),
           "--cell-timeout", str(CELL_TIMEOUT), "--timeout", str(TIMEOUT), "--no-progress", *extra]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def rows(out: Path) -> dict[str, dict]:
    return {r["submission"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def results(out: Path) -> dict[str, dict]:
    return {r["submission"]: r for r in json.loads((out / "results.json").read_text())["submissions"]}


def expected(row: dict, want: corpus.Expect) -> bool:
    total = "" if want.total is None else f"{want.total:g}"
    return row["status"] == want.status and row["total"] == total


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The mixed batch, graded once by the local backend (the reference)."""
    if not SANDBOXED:
        pytest.skip("needs root and bubblewrap (apt-get install bubblewrap), as in CI")
    base = tmp_path_factory.mktemp("dask")
    expect = corpus.build(base / "corpus", base / "out", 9, CELL_TIMEOUT, TIMEOUT)
    folder = base / "mixed"
    folder.mkdir()
    for name in MIXED:
        shutil.copyfile(base / "corpus" / name, folder / name)
    local = grade(folder, base / "local", "--jobs", "2")
    assert local.returncode == 0, local.stderr[-3000:]
    return SimpleNamespace(base=base, folder=folder, expect={n: expect[n] for n in MIXED},
                           local_csv=(base / "local" / "grades.csv").read_bytes())


@pytest.fixture
def cluster():
    """A LocalCluster of worker processes, set up as the instructors' page says."""
    with dask.config.set(DASK_SETTINGS):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as lc, Client(lc, set_as_default=False) as client:
            yield SimpleNamespace(address=lc.scheduler_address, client=client)


def kill_worker_running(client: Client, key_part: str = "course-grade-", settle: float = 1.5,
                        deadline: float = 120) -> tuple[str, str, int]:
    """Wait until a worker has been running a grading task for ``settle`` seconds, then
    SIGKILL that worker's process; returns (worker address, task key, pid)."""
    end = time.monotonic() + deadline
    seen: dict[tuple[str, str], float] = {}
    while time.monotonic() < end:
        now = time.monotonic()
        for worker, keys in client.processing().items():
            for key in keys:
                if str(key).startswith(key_part):
                    first = seen.setdefault((worker, str(key)), now)
                    if now - first >= settle:
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        return worker, str(key), pid
        time.sleep(0.1)
    raise AssertionError("no grading task started on the cluster")


def test_scheduler_addresses_are_checked():
    assert parse_scheduler("local:2") == ("local", 2)
    assert parse_scheduler("tcp://10.0.0.5:8786") == ("remote", "tcp://10.0.0.5:8786")
    assert parse_scheduler("node-7.cluster:8786") == ("remote", "tcp://node-7.cluster:8786")
    for bad in ("local:0", "local:two", "http://host:8786", "host", "tcp://host:99999"):
        with pytest.raises(ValueError, match="--scheduler"):
            parse_scheduler(bad)


def test_worker_environment_gives_a_fresh_dask_process_the_grading_settings():
    keys = list(DASK_SETTINGS)
    probe = f"import dask, distributed, json; print(json.dumps([dask.config.get(k) for k in {keys!r}]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **worker_environment()})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert dict(zip(keys, json.loads(proc.stdout))) == DASK_SETTINGS
    assert DASK_SETTINGS["distributed.scheduler.allowed-failures"] == 2  # at most two retries


def test_local_cluster_workers_and_scheduler_run_with_the_grading_settings():
    with connect("local:1") as cluster:
        on_workers = cluster.client.run(lambda: {k: dask.config.get(k) for k in DASK_SETTINGS})
        callbacks = cluster.client.run(lambda dask_worker: sorted(dask_worker.periodic_callbacks))
        retries = cluster.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    assert list(on_workers.values()) == [DASK_SETTINGS]
    assert "profile" not in next(iter(callbacks.values()))  # the 10 ms statistical profiler is off
    assert retries == 2


def test_a_bad_scheduler_address_is_a_usage_error(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copyfile(ASSIGNMENT, folder / "a.ipynb")
    proc = grade(folder, tmp_path / "out", "--scheduler", "http://nowhere")
    assert proc.returncode == 2
    assert "--scheduler must be local:N or a Dask scheduler address" in proc.stderr
    assert not (tmp_path / "out").exists()


@needs_sandbox
def test_a_mixed_batch_on_a_two_worker_local_cluster_gives_the_local_grades_csv(batch):
    out = batch.base / "local-cluster"
    proc = grade(batch.folder, out, "--scheduler", "local:2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "grades.csv").read_bytes() == batch.local_csv
    got = rows(out)
    assert all(expected(got[n], want) for n, want in batch.expect.items()), got
    log = (out / "grading.log").read_text()
    assert "(local:2), 2 workers" in log and "sandbox bubblewrap" in log
    ran = {r.get("worker", "").split(" ")[-1] for r in results(out).values() if r["status"] != "invalid"}
    assert len(ran) == 2, f"both workers should have graded: {ran}"
    # a rerun takes everything from the cache, as a local rerun does
    again = grade(batch.folder, out, "--scheduler", "local:2")
    assert again.returncode == 0 and (out / "grades.csv").read_bytes() == batch.local_csv
    assert f"{len(MIXED)} submissions: {len(MIXED)} from the cache" in (out / "grading.log").read_text()


@needs_sandbox
def test_a_worker_killed_mid_batch_is_retried_and_every_row_is_right(batch, cluster):
    out = batch.base / "killed-worker"
    proc = grade(batch.folder, out, "--scheduler", cluster.address, wait=False)
    worker, key, pid = kill_worker_running(cluster.client)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert (out / "grades.csv").read_bytes() == batch.local_csv
    k = int(key.split("-")[2])  # course-grade-<index>-<uuid>
    rerun = results(out)[sorted(MIXED)[k]]
    assert worker not in rerun["worker"], "the killed worker's submission was not run again"
    # the killed worker's sandbox went with it
    host = os.uname().nodename
    assert not any(processes_of(uid) for uid in uid_range(zlib.crc32(f"{host}\0{pid}".encode())))


@needs_sandbox
def test_a_submission_whose_worker_dies_three_times_is_crashed_and_no_row_is_lost(batch, cluster):
    folder, out = batch.base / "doomed", batch.base / "doomed-out"
    folder.mkdir()
    for name in ("correct.ipynb", "broken-json.ipynb"):
        shutil.copyfile(batch.folder / name, folder / name)
    proc = grade(folder, out, "--scheduler", cluster.address, wait=False)
    key = None
    for _ in range(ALLOWED_FAILURES + 1):  # the same task, on whichever worker runs it
        _, key, _ = kill_worker_running(cluster.client, key or "course-grade-", settle=0.5)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    got = results(out)
    assert got["correct.ipynb"]["status"] == "crashed"
    assert "the Dask worker grading it died 3 times (KilledWorker)" in got["correct.ipynb"]["reason"]
    assert got["broken-json.ipynb"]["status"] == "invalid"
    assert "correct.ipynb: crashed: the Dask worker grading it died 3 times" in stdout
