"""Grading on a Dask cluster: ``course-grade grade ... --scheduler local:N | tcp://host:8786``.

The batch (:func:`course_grade.batch.grade_batch`) is the same as a local run, with
one step moved: **running** a submission's notebook. Everything else stays in the
instructor's process, the only one that reads the assignment and the submissions or writes
``grades.csv``, ``results.json``, the feedback and the resume cache:

1. The instructor's process **validates and plans** each submission
   (:meth:`~course_grade.batch.Grader.prepare`) and submits one Dask task per
   submission, :func:`run_plan`, carrying only what the sandbox needs: the run notebook's
   JSON (the student's code cells and the restored check cells, which are one-line calls
   of :func:`course_grade.kernel.emit`), the limits, the sandbox kind and the
   fingerprint of ``course_lib``'s code.
2. A **worker runs** it exactly as a local run does
   (:meth:`~course_grade.batch.Grader.run`: a fresh bubblewrap sandbox, an
   unprivileged uid per job slot, the process watch, the notebook fed to the runner through
   its stdin pipe) in a scratch folder of its own machine, and returns the runner's events
   as plain data. Nothing of the assignment is written on the worker; the scratch home
   holds only matplotlib's font cache.
3. The instructor's process **judges** the events with the checks' ``judge``, which
   redraws the inputs and computes the reference there: the reference data never reach a
   worker. Results are cached and written as each task finishes, so an interrupted batch
   resumes from the same cache as a local one.

Retries. A worker that dies (killed, out of memory, its machine lost) while running a
submission loses that run; the scheduler runs it again on another worker. After the third
death (``distributed.scheduler.allowed-failures`` = 2, set on the cluster that
``local:N`` starts; set it on your own scheduler too) the submission is ``crashed`` with
the reason, and the batch goes on. A notebook stopped by the grader's own timeout is not a
worker death: the worker returns its events as usual and the row is ``timeout``.

Job slots. A worker process hands out sandbox uids from a range of its own (derived from
its host name and process id, see :func:`course_grade.sandbox.uid_range`), one per
thread: run workers with one thread each (``--nthreads 1``), as ``local:N`` does, and
as many worker processes per machine as it has cores.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import asdict, fields
from pathlib import Path

from course_grade.sandbox import Limits, Sandbox, SandboxError, choose, processes_of, uid_range

log = logging.getLogger("course_grade")

#: Worker deaths a submission may cause before it is ``crashed`` (the scheduler's
#: ``distributed.scheduler.allowed-failures``): at most two retries.
ALLOWED_FAILURES = 2
#: Seconds to wait for the first worker of an external cluster (batch jobs may queue).
WAIT_FOR_WORKERS = 300
#: The largest ``local:N``.
MAX_LOCAL_WORKERS = 64
#: The Dask configuration of a grading cluster, which ``local:N`` sets on its own:
#:
#: * a task whose worker died is run again at most twice (:data:`ALLOWED_FAILURES`);
#: * Dask's own housekeeping is slowed down or turned off. At their defaults, the
#:   scheduler's and each worker's event loops wake every 10 to 100 ms (statistical
#:   profiler, loop-health tick, memory and system monitors, work stealing) and took about
#:   6 % of a core each while the workers waited on their sandboxes: CPU taken from the
#:   notebooks being graded on the same cores (on ``local:2``, 200 copies of exercise 1: a
#:   distributed overhead of 0.93 s per submission before, 0.20 s after). None of it serves
#:   a grading batch: a task is one notebook, and the scheduler queues tasks, so there is
#:   nothing to steal.
#:
#: Processes started elsewhere read the same settings from :func:`worker_environment`.
DASK_SETTINGS = {
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}


def worker_environment() -> dict[str, str]:
    """:data:`DASK_SETTINGS` as the environment variables Dask reads when it starts.

    For schedulers and workers this process does not start (``dask worker``, a
    dask-jobqueue job script, a Kubernetes pod spec): ``DASK_`` and the key in upper case,
    with ``__`` between its levels, e.g. ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED``.

    Returns
    -------
    dict of str to str
    """
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
            for key, value in DASK_SETTINGS.items()}


_ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?$")


class ClusterError(SandboxError):
    """The Dask cluster cannot grade as asked (raised before grading starts)."""


def parse_scheduler(address: str) -> tuple[str, int | str]:
    """Check a ``--scheduler`` value.

    Parameters
    ----------
    address : str
        ``local:N`` (a ``LocalCluster`` of N worker processes on this machine), or the
        address of a running scheduler: ``tcp://host:8786``, ``tls://host:8786``,
        ``ws://`` or ``wss://``, or ``host:port`` (TCP).

    Returns
    -------
    ("local", N) or ("remote", address)

    Raises
    ------
    ValueError
        Naming the value, for anything else.
    """
    text = address.strip()
    local = re.fullmatch(r"local:(\d+)", text)
    if local:
        n = int(local.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ValueError(f"--scheduler local:N needs 1 <= N <= {MAX_LOCAL_WORKERS}, got {address!r}")
        return "local", n
    match = _ADDRESS.match(text)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise ValueError(
            f"--scheduler must be local:N or a Dask scheduler address such as "
            f"tcp://host:8786, got {address!r}"
        )
    return "remote", text if match.group(1) else f"tcp://{text}"


def package_fingerprint() -> str:
    """SHA-256 of the Python code of ``course_lib`` and ``course_grade``: a worker must run
    the grader's own code (the runner, ``emit`` and the checks' ``collect`` run on the
    worker; the instructor's ``judge`` must see data collected by the same code)."""
    import course_lib

    h = hashlib.sha256()
    for root in (Path(course_lib.__file__).resolve().parent, Path(__file__).resolve().parent):
        for path in sorted(root.rglob("*.py")):
            rel = f"{root.name}/{path.relative_to(root).as_posix()}"
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# ----------------------------------------------------------------------------------------
# The worker's side


_workers: dict[tuple, object] = {}
_workers_lock = threading.Lock()
_fingerprint: list[str] = []


def _slot_key() -> int:
    """What picks this process's sandbox uids: its host name and pid, so that worker
    processes in different containers on one node (each with its own PID namespace) do not
    share uids, and a range another process is using right now is skipped."""
    key = zlib.crc32(f"{socket.gethostname()}\0{os.getpid()}".encode())
    for _ in range(64):
        if not any(processes_of(uid) for uid in uid_range(key)[:8]):
            break
        key += 1
    return key


def _local_grader(kind: str, limits: Limits):
    """This process's grader for ``(kind, limits)``: a sandbox, a scratch folder on this
    machine, job slots and the process watch, made on first use and reused."""
    from course_grade.batch import Grader

    with _workers_lock:
        found = _workers.get((kind, limits))
        if found is not None:
            return found
        if kind == "bwrap":
            choose("bwrap")  # SandboxError when this machine cannot provide it
        sandbox = Sandbox(kind, limits)
        try:
            from distributed import get_worker

            slots = max(1, min(get_worker().state.nthreads, 64))
        except (ImportError, ValueError):
            slots = 1
        root = Path(tempfile.mkdtemp(prefix="course-grade-worker-"))
        os.chmod(root, 0o711)
        (root / ".work").mkdir(mode=0o711)
        grader = Grader(None, root, sandbox, slots)
        grader.uid_base = uid_range(_slot_key()).start

        def cleanup() -> None:
            grader.close()
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(cleanup)
        _workers[(kind, limits)] = grader
        return grader


def run_plan(notebook: str, limits: dict, kind: str, code: str) -> dict:
    """Run one submission's run notebook in a fresh sandbox on this machine.

    This is the Dask task of a distributed batch; it runs the same code as a local run
    (:meth:`course_grade.batch.Grader.run`) and never judges.

    Parameters
    ----------
    notebook : str
        The run notebook as nbformat 4 JSON
        (:meth:`course_grade.notebook.RunPlan.notebook_json`).
    limits : dict
        The fields of :class:`~course_grade.sandbox.Limits`.
    kind : {"bwrap", "weak"}
        The sandbox kind of the batch.
    code : str
        The instructor's :func:`package_fingerprint`.

    Returns
    -------
    dict
        The fields of :class:`~course_grade.batch.Outcome` (the runner's events),
        ``seconds`` (wall time of the run here), ``worker`` and ``host``.

    Raises
    ------
    ClusterError
        If this machine runs other ``course_lib`` code than the instructor's.
    SandboxError
        If this machine cannot provide the sandbox.
    """
    start = time.monotonic()
    if not _fingerprint:
        _fingerprint.append(package_fingerprint())
    if code != _fingerprint[0]:
        raise ClusterError(
            f"the worker on {socket.gethostname()} runs other course_lib code than the grader "
            f"(fingerprint {_fingerprint[0][:12]}, grader {code[:12]}): install the same "
            "version of the course repository on every worker"
        )
    grader = _local_grader(kind, Limits(**limits))
    slot = grader.slots.get()
    try:
        outcome = grader.run(notebook, slot)
    finally:
        grader.slots.put(slot)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return {**asdict(outcome), "seconds": round(time.monotonic() - start, 3),
            "worker": worker, "host": socket.gethostname()}


def _probe(mode: str) -> dict:
    """What a worker can do: the sandbox kind it would choose for ``mode`` and its code."""
    info = {"host": socket.gethostname(), "code": package_fingerprint(), "kind": None,
            "warning": None, "error": None}
    try:
        info["kind"], info["warning"] = choose(mode)
    except SandboxError as err:
        info["error"] = str(err)
    return info


# ----------------------------------------------------------------------------------------
# The instructor's side


class DaskCluster:
    """A connection to the Dask cluster that runs a batch's notebooks.

    Use :func:`connect`; close it (or use it as a context manager) when the batch is done,
    which also stops a ``local:N`` cluster.

    Parameters
    ----------
    client : distributed.Client
    cluster : distributed.LocalCluster or None
        The cluster this object started, if any.
    address : str
        What ``--scheduler`` said.
    """

    def __init__(self, client, cluster=None, address: str = ""):
        self.client = client
        self.cluster = cluster
        self.address = address
        self.code = package_fingerprint()

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect, and stop the cluster if this object started it."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def describe(self) -> str:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        return (f"Dask scheduler {self.client.scheduler.address} ({self.address}), "
                f"{len(workers)} workers, {threads} threads")

    def choose_sandbox(self, mode: str) -> tuple[str, str | None]:
        """The batch's sandbox kind, chosen by what *every* worker can provide.

        Parameters
        ----------
        mode : {"auto", "bwrap", "weak"}

        Returns
        -------
        kind, warning
            As :func:`course_grade.sandbox.choose`; ``auto`` gives ``bwrap`` only
            when every worker is root with bubblewrap.

        Raises
        ------
        ClusterError
            If a worker runs other ``course_lib`` code, or cannot provide ``bwrap`` when
            it is asked for.
        """
        probes = self.client.run(_probe, mode)
        if not probes:
            raise ClusterError(f"the Dask cluster at {self.address} has no workers")
        other = sorted(f"{a} on {p['host']}" for a, p in probes.items() if p["code"] != self.code)
        if other:
            raise ClusterError(
                f"{len(other)} Dask workers run other course_lib code than this grader "
                f"({', '.join(other[:3])}): install the same version of the course "
                "repository on every worker"
            )
        errors = sorted({p["error"] for p in probes.values() if p["error"]})
        if errors:
            raise ClusterError(f"a Dask worker cannot provide the sandbox: {errors[0]}")
        weak = sorted(p["host"] for p in probes.values() if p["kind"] == "weak")
        if not weak:
            return "bwrap", None
        warnings = sorted({p["warning"] for p in probes.values() if p["warning"]})
        return "weak", f"on Dask workers of {', '.join(sorted(set(weak))[:3])}: {warnings[0]}"

    def grade(self, grader, submissions, todo):
        """Grade ``submissions[k]`` for each ``k`` in ``todo`` on the cluster.

        Validation, planning and judging happen here, with ``grader`` (a
        :class:`~course_grade.batch.Grader` of this process); each run is a task
        :func:`run_plan` on a worker.

        Yields
        ------
        (int, dict)
            ``k`` and its result, as each submission finishes.
        """
        from distributed import KilledWorker, as_completed
        from distributed.client import FutureCancelledError

        from course_grade.batch import Outcome

        limits, kind = asdict(grader.limits), grader.sandbox.kind
        futures: dict = {}
        planned: dict[int, tuple] = {}
        ready: list[tuple[int, dict]] = []
        try:
            for k in todo:
                start = time.monotonic()
                prepared = grader.prepare(submissions[k])
                if isinstance(prepared, dict):  # invalid: nothing to run
                    prepared["elapsed"] = round(time.monotonic() - start, 2)
                    ready.append((k, prepared))
                    continue
                sha, plan = prepared
                future = self.client.submit(
                    run_plan, plan.notebook_json(), limits, kind, self.code,
                    key=f"course-grade-{k}-{uuid.uuid4().hex[:12]}", pure=False,
                    retries=ALLOWED_FAILURES,
                )
                futures[future] = k
                planned[k] = (sha, plan, time.monotonic() - start)
            yield from ready
            for future in as_completed(list(futures), loop=self.client.loop):
                k = futures.pop(future)
                sha, plan, prep = planned.pop(k)
                sub = submissions[k]
                start = time.monotonic()
                try:
                    data = future.result()
                except KilledWorker as err:
                    deaths = getattr(err, "allowed_failures", ALLOWED_FAILURES) + 1
                    result = grader._result(
                        sub, sha, "crashed",
                        f"the Dask worker grading it died {deaths} times (KilledWorker): the "
                        "notebook may take its worker down, or the workers are unstable",
                    )
                    log.warning("%s: %s", sub.name, result["reason"])
                except FutureCancelledError:
                    result = grader._result(sub, sha, "error", "the Dask scheduler cancelled its task")
                except Exception as err:  # the worker could not grade it: retried on a rerun
                    result = grader._result(
                        sub, sha, "error",
                        f"the Dask worker could not grade it ({type(err).__name__}: {str(err)[:300]})",
                    )
                    log.error("%s: the Dask task failed: %s: %s", sub.name, type(err).__name__, err)
                else:
                    try:
                        outcome = Outcome(**{f.name: data[f.name] for f in fields(Outcome)})
                        result = grader._judge(sub, sha, plan, outcome)
                    except Exception as err:  # a grader bug must not stop the batch
                        log.exception("judging %s failed inside the grader", sub.name)
                        result = grader._result(
                            sub, sha, "error", f"the grader failed ({type(err).__name__}: {err})")
                    result["worker"] = f"{data.get('host')} {data.get('worker')}"
                    prep += float(data.get("seconds") or 0)
                future.release()
                result["elapsed"] = round(prep + time.monotonic() - start, 2)
                yield k, result
        except BaseException:  # interrupted (GeneratorExit included): drop what is queued
            if futures:
                try:
                    self.client.cancel(list(futures))
                except Exception:  # the scheduler may be gone already
                    pass
            raise


def connect(address: str, wait: float = WAIT_FOR_WORKERS) -> DaskCluster:
    """Start or reach the cluster that ``--scheduler`` names.

    Parameters
    ----------
    address : str
        See :func:`parse_scheduler`.
    wait : float
        Seconds to wait for the first worker of an external cluster.

    Returns
    -------
    DaskCluster

    Raises
    ------
    ValueError
        For a malformed address.
    ClusterError
        If the scheduler cannot be reached, or has no worker after ``wait`` seconds.
    """
    how, where = parse_scheduler(address)
    import dask
    from distributed import Client, LocalCluster

    if how == "local":
        # The scheduler and the nannies run in this process: this is where the retry budget
        # is read, and the nannies hand this configuration to the workers they start.
        with dask.config.set(DASK_SETTINGS):
            cluster = LocalCluster(
                n_workers=where, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR,
                host="127.0.0.1", protocol="tcp",
            )
        try:
            return DaskCluster(Client(cluster, set_as_default=False), cluster, address)
        except BaseException:
            cluster.close()
            raise
    try:
        client = Client(where, timeout="30s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {where}: {err}") from None
    try:
        client.wait_for_workers(1, timeout=wait)
    except TimeoutError:
        client.close()
        raise ClusterError(f"the Dask scheduler at {where} has had no worker for {wait:g} s") from None
    try:
        budget = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
        if budget > ALLOWED_FAILURES:
            log.warning(
                "the Dask scheduler at %s retries a task whose worker died up to %d times; "
                "start it with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=%d to give up "
                "after %d retries (course_grade.distributed.worker_environment() lists "
                "all the settings of a grading cluster)", where, budget, ALLOWED_FAILURES,
                ALLOWED_FAILURES)
    except Exception:  # an old or locked-down scheduler: its budget is only a warning
        pass
    return DaskCluster(client, None, address)
