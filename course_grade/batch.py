"""The batch: find the submissions, grade each in its own sandbox, judge, and write the
results (see :mod:`course_grade` for the design and the threat model)."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course_grade.notebook import (
    MAX_SUBMISSION_BYTES,
    Assignment,
    AssignmentError,
    InvalidSubmission,
    Part,
    RunPlan,
    read_submission,
)
from course_grade.manual import apply_scores, load_scores, review, write_review
from course_grade.report import (
    atomic_write,
    feedback_names,
    grades_csv,
    integrity_parts,
    results_json,
    write_feedback as write_feedback_pages,
)
from course_grade.sandbox import (
    Limits,
    ProcessWatch,
    Sandbox,
    SandboxError,
    choose,
    fontlist_cache,
    kill_uid,
    uid_range,
    wait_gone,
)

#: Bump when a change to the grader should invalidate cached results.
GRADER_VERSION = "1"
#: Modules of the package that read grades back and never change one (the command line, the
#: class report, the export): left out of :func:`code_fingerprint`, so that editing them
#: neither regrades a class nor makes ``course-grade grade`` ask for ``--force``.
NOT_GRADING = frozenset({"cli.py", "classreport.py", "export.py", "__main__.py"})
#: Bytes of runner output read per job; a cell event is a few KB.
MAX_EVENT_BYTES = 64 * 2**20

log = logging.getLogger("course_grade")


# ----------------------------------------------------------------------------------------
# Submissions


@dataclass(frozen=True)
class Submission:
    """A submission file and the name it is reported under (its path within the folder)."""

    path: Path
    name: str


def find_submissions(paths: list[Path]) -> list[Submission]:
    """The submissions named on the command line; folders are searched recursively.

    Hidden files and folders (``.ipynb_checkpoints``) are skipped and symbolic links to
    folders are not followed. Raises ``ValueError`` for a missing path, a folder without
    notebooks, or two submissions with the same name.
    """
    found: list[Submission] = []
    for path in paths:
        if path.is_dir():
            inside = []
            for folder, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if f.endswith(".ipynb") and not f.startswith("."):
                        full = Path(folder) / f
                        inside.append(Submission(full, full.relative_to(path).as_posix()))
            if not inside:
                raise ValueError(f"no submissions (*.ipynb) in folder {path}")
            found += inside
        elif path.exists() or path.is_symlink():
            found.append(Submission(path, path.name))
        else:
            raise ValueError(f"submission not found: {path}")
    names: dict[str, Path] = {}
    for s in found:
        if s.name in names:
            raise ValueError(
                f"two submissions are both named {s.name!r} ({names[s.name]} and {s.path}): "
                "rename one or grade them in separate batches"
            )
        names[s.name] = s.path
    return found


def read_bytes(path: Path) -> bytes:
    """A submission's bytes: a regular file only (no symbolic link, FIFO or device).

    Raises
    ------
    InvalidSubmission
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if os.path.islink(path):
            raise InvalidSubmission("the file is a symbolic link; submit the notebook itself") from None
        raise InvalidSubmission(f"the file cannot be read ({err.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidSubmission("not a regular file")
        if info.st_size > MAX_SUBMISSION_BYTES:
            raise InvalidSubmission(
                f"the file is {info.st_size / 2**20:.0f} MB; the limit is "
                f"{MAX_SUBMISSION_BYTES // 2**20} MB"
            )
        return fh.read(MAX_SUBMISSION_BYTES + 1)


def content_hash(path: Path) -> str:
    """SHA-256 of a submission's bytes; for a file that cannot be read (a symbolic link, a
    FIFO), of the reason, so that its ``invalid`` result is cached like any other."""
    try:
        return hashlib.sha256(read_bytes(path)).hexdigest()
    except InvalidSubmission as err:
        return hashlib.sha256(f"unreadable: {err}".encode()).hexdigest()


# ----------------------------------------------------------------------------------------
# Running one submission


@dataclass
class Outcome:
    """What came back from one sandboxed run."""

    started: bool = False
    cells: dict[int, dict] = field(default_factory=dict)
    end: dict | None = None
    stopped: str | None = None  # why the grader stopped the run: "timeout" or a watch reason
    returncode: int | None = None
    stderr: str = ""


def _event(line: bytes) -> dict | None:
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    if not isinstance(ev, dict) or ev.get("event") not in ("started", "cell", "end"):
        return None
    if ev["event"] != "started" and not (isinstance(ev.get("index"), int) and ev["index"] >= -1):
        return None
    return ev


class Grader:
    """Grades submissions of one assignment, one sandbox per submission.

    Parameters
    ----------
    assignment : Assignment
    out : Path
        The output folder (its ``.work`` subfolder holds the jobs' scratch homes).
    sandbox : Sandbox
    jobs : int
        Submissions graded at once.
    seed : int or None
        The run's secret seed of the hidden cases (:func:`run_seed`); None judges the
        public cases (a worker that only runs plans needs none).
    """

    def __init__(self, assignment: Assignment, out: Path, sandbox: Sandbox, jobs: int,
                 seed: int | None = None):
        self.assignment = assignment
        self.seed = seed
        self.sandbox = sandbox
        self.limits = sandbox.limits
        self.work = out / ".work"
        self.fontlist = fontlist_cache()
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(jobs):
            self.slots.put(slot)
        self.uid_base = uid_range(os.getpid()).start
        self.watch = ProcessWatch()
        self.watch.start()
        self._counter = itertools.count()
        self._running: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the watch and kill any run still going (after an interrupt)."""
        self.watch.stop()
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            self._kill(proc)

    def grade(self, sub: Submission) -> dict:
        """Grade one submission; never raises for anything the submission does."""
        slot = self.slots.get()
        start = time.monotonic()
        try:
            result = self._grade(sub, slot)
        except Exception as err:  # a grader bug must not stop the batch
            log.exception("grading %s failed inside the grader", sub.name)
            result = self._result(sub, None, "error", f"the grader failed ({type(err).__name__}: {err})")
        finally:
            self.slots.put(slot)
        result["elapsed"] = round(time.monotonic() - start, 2)
        return result

    def _result(self, sub, sha, status, reason="", parts=None, cell_errors=None) -> dict:
        parts = parts or []
        return {
            "submission": sub.name,
            "sha256": sha,
            "status": status,
            "reason": reason,
            "total": round(sum(p["points"] for p in parts), 6),
            "max_total": self.assignment.max_total,
            "parts": parts,
            "cell_errors": cell_errors or [],
            "sandbox": self.sandbox.kind,
            "seed": self.seed,
        }

    def _grade(self, sub: Submission, slot: int) -> dict:
        prepared = self.prepare(sub)
        if isinstance(prepared, dict):
            return prepared
        sha, plan = prepared
        outcome = self.run(plan, slot)
        return self._judge(sub, sha, plan, outcome)

    def prepare(self, sub: Submission) -> dict | tuple[str, RunPlan]:
        """Read, validate and plan one submission, in the grader's process.

        Returns
        -------
        dict or (str, RunPlan)
            The ``invalid`` result of a file that cannot be graded, or the SHA-256 of its
            bytes and its run plan (what :meth:`run` needs, here or on a Dask worker).
        """
        try:
            data = read_bytes(sub.path)
        except InvalidSubmission as err:
            return self._result(sub, content_hash(sub.path), "invalid", str(err))
        sha = hashlib.sha256(data).hexdigest()
        try:
            return sha, self.assignment.plan(read_submission(data), seed=self.seed)
        except InvalidSubmission as err:
            return self._result(sub, sha, "invalid", str(err))

    # -- the sandboxed run ---------------------------------------------------------------

    def run(self, plan: RunPlan | str, slot: int) -> Outcome:
        """Run a plan (or its notebook JSON, as a Dask worker receives it) in a fresh
        sandbox and collect its events (see the runner's protocol)."""
        notebook = plan if isinstance(plan, str) else plan.notebook_json()
        uid = self.uid_base + slot if self.sandbox.uses_uids() else None
        scratch = self.work / f"job-{slot}-{next(self._counter)}"
        self.sandbox.prepare_scratch(scratch, uid, self.fontlist)
        argv, env = self.sandbox.command(scratch, uid)
        outcome = Outcome()
        events: queue.Queue = queue.Queue()
        stderr_tail: deque[bytes] = deque(maxlen=64)
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=scratch, start_new_session=True,
        )
        with self._lock:
            self._running[slot] = proc
        if uid is not None:
            def breach(reason: str) -> None:
                outcome.stopped = outcome.stopped or reason
                self._kill(proc)
            self.watch.watch(uid, self.limits, breach)
        threads = [
            threading.Thread(target=_feed, args=(proc.stdin, notebook.encode()), daemon=True),
            threading.Thread(target=_read_events, args=(proc.stdout, events), daemon=True),
            threading.Thread(target=_read_tail, args=(proc.stderr, stderr_tail), daemon=True),
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + self.limits.timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome.stopped = outcome.stopped or "timeout"
                    break
                try:
                    ev = events.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    continue
                if ev is None:  # the runner's stdout closed
                    break
                if ev["event"] == "started":
                    outcome.started = True
                elif ev["event"] == "cell":
                    outcome.cells[ev["index"]] = ev
                else:
                    outcome.end = ev
                    break  # nothing more is needed: the sandbox is torn down right away
        finally:
            if uid is not None:
                self.watch.unwatch(uid)
            self._kill(proc)
            outcome.returncode = proc.wait()
            with self._lock:
                self._running.pop(slot, None)
            if uid is not None:
                kill_uid(uid)
                if not wait_gone(uid):
                    log.warning("processes of sandbox uid %d outlived their job", uid)
            for t in threads[1:]:
                t.join(timeout=5)
            outcome.stderr = b"".join(stderr_tail).decode("utf-8", "replace")[-4000:]
            shutil.rmtree(scratch, ignore_errors=True)
        return outcome

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            if self.sandbox.kind == "bwrap":
                proc.kill()  # bwrap's PID namespace and --die-with-parent take the rest
            else:
                os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- judging -------------------------------------------------------------------------

    def _judge(self, sub: Submission, sha: str, plan: RunPlan, outcome: Outcome) -> dict:
        end = outcome.end or {}
        status, reason = "graded", ""
        stop_cell = end.get("index") if isinstance(end.get("index"), int) else None
        where = _describe(plan, stop_cell)
        if outcome.stopped == "timeout":
            status, reason = "timeout", f"the notebook ran longer than {self.limits.timeout:g} s in all"
        elif outcome.stopped:
            status, reason = "crashed", outcome.stopped
        elif end.get("reason") == "done":
            status = "graded"
        elif end.get("reason") == "timeout":
            status, reason = "timeout", f"{where} ran longer than {self.limits.cell_timeout} s"
        elif end.get("reason") == "dead":
            status, reason = "crashed", f"the kernel died while running {where} (it exited or crashed)"
        elif not outcome.started:
            status = "error"
            reason = "the kernel did not start: " + str(end.get("message") or f"exit code {outcome.returncode}")
            log.error("%s: sandbox or kernel failed to start; runner stderr:\n%s", sub.name, outcome.stderr)
        else:
            status = "crashed"
            reason = ("the grading process inside the sandbox was stopped by the notebook"
                      if not end else f"the run broke off: {str(end.get('message'))[:200]}")
            log.warning("%s: runner ended early (exit %s); stderr:\n%s", sub.name, outcome.returncode, outcome.stderr)
        if status == "error":
            return self._result(sub, sha, status, reason)
        not_run = {
            "timeout": "not run: the notebook was stopped (timeout) before this check",
            "crashed": "not run: the notebook crashed before this check",
        }.get(status, "not run")
        index = plan.check_index()
        parts = [
            judge_part(p, outcome.cells.get(index[p.part]),
                       f"this check was running when the notebook stopped: {reason}"
                       if index[p.part] == stop_cell and status != "graded" else not_run,
                       seed=self.seed)
            for p in self.assignment.parts
        ]
        cell_errors = [
            {"cell": _describe(plan, i, short=True), "error": str(ev.get("error"))[:500]}
            for i, ev in sorted(outcome.cells.items())
            if ev.get("error") and i < len(plan.cells) and plan.cells[i].part is None
        ]
        result = self._result(sub, sha, status, reason, parts, cell_errors)
        if isinstance(end.get("seconds"), (int, float)) and end.get("reason") in ("timeout", "dead"):
            result["stopped_after"] = end["seconds"]  # seconds into the cell that stopped the run
        return review(result, self.assignment, plan)  # integrity verdicts, written answers


def judge_part(p: Part, ev: dict | None, not_run: str = "not run", seed: int | None = None) -> dict:
    """Judge one part from the runner's event for its restored check cell.

    Parameters
    ----------
    p : Part
    ev : dict or None
        The ``cell`` event of the part's check cell (None if the cell never finished).
    not_run : str
        The message for a check that did not run.
    seed : int or None
        The grading run's secret seed: judge on the hidden cases the kernel collected on.

    Returns
    -------
    dict
        ``part``, ``status``, ``points``, ``max_points``, ``message``, ``hint``. Anything
        malformed, forged or unjudgeable gives 0 points and a message; this never raises.
    """
    from course_lib import checks

    def fail(status: str, message: str) -> dict:
        return {"part": p.part, "status": status, "points": 0.0, "max_points": p.points,
                "message": message, "hint": ""}

    if ev is None:
        return fail("not-run", not_run)
    records = ev.get("records")
    if not isinstance(records, list) or not records:
        if ev.get("error"):
            return fail("error", f"the check raised {str(ev['error'])[:300]}")
        return fail("error", "the check produced no record of your results "
                             "(did your code clear or redirect the output?)")
    if len(records) > 1:
        return fail("error", "the check cell published more than one record of results: "
                             "output your code publishes during the check is not accepted")
    try:
        envelope = json.loads(records[0]) if isinstance(records[0], str) else None
    except (ValueError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict) or not ("problem" in envelope or "collected" in envelope):
        return fail("error", "the check's record of your results is unreadable")
    if "problem" in envelope:
        return fail("error", str(envelope["problem"])[:500])
    try:
        verdict = checks.get_check(p.part).for_seed(seed).judge(envelope["collected"])
        if not isinstance(verdict, checks.Verdict):
            raise TypeError(f"judge returned {type(verdict).__name__}")
    except Exception:  # the judge treats collected data as untrusted; if it fails anyway, say so
        log.exception("judging part %s failed", p.part)
        return fail("error", "the grader could not judge the results of this part")
    points = min(max(float(verdict.points), 0.0), p.points) if verdict.passed else 0.0
    return {"part": p.part, "status": str(verdict.status), "points": points,
            "max_points": p.points, "message": str(verdict.message), "hint": str(verdict.hint)}


def _describe(plan: RunPlan, index: int | None, short: bool = False) -> str:
    if index is None or not 0 <= index < len(plan.cells):
        return "a cell"
    cell = plan.cells[index]
    if cell.part is not None:
        return cell.part + "-check" if short else f"the check of part {cell.part}"
    name = cell.cell_id or f"#{index + 1} (no id)"
    return name if short else f"cell {name}"


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _read_events(pipe, events: queue.Queue) -> None:
    total = 0
    try:
        while total < MAX_EVENT_BYTES:
            line = pipe.readline(MAX_EVENT_BYTES - total)
            if not line:
                break
            total += len(line)
            ev = _event(line)
            if ev is not None:
                events.put(ev)
    except (OSError, ValueError):
        pass
    finally:
        events.put(None)


def _read_tail(pipe, tail: deque) -> None:
    try:
        for chunk in iter(lambda: pipe.read1(4096), b""):
            tail.append(chunk)
    except (OSError, ValueError):
        pass


# ----------------------------------------------------------------------------------------
# The batch


def code_fingerprint(assignment: Assignment) -> str:
    """Hash of the code a grade depends on: the grader, the checks' machinery, and the
    modules that define this assignment's checks (a change re-grades cached submissions;
    a change to another exercise's checks does not)."""
    from course_lib import checks

    here = Path(__file__).resolve().parent
    files = {*(p for p in here.glob("*.py") if p.name not in NOT_GRADING), Path(checks.core.__file__).resolve()}
    for p in assignment.parts:
        chk = checks.get_check(p.part)
        for obj in (chk, *vars(chk).values()):
            module = sys.modules.get(getattr(obj, "__module__", None) or type(obj).__module__)
            if module is not None and module.__name__.startswith("course_lib.checks"):
                files.add(Path(module.__file__).resolve())
    h = hashlib.sha256(GRADER_VERSION.encode())
    for path in sorted(files):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_seed(out: Path, seed: int | None = None) -> int:
    """The secret seed of a grading run's hidden cases.

    ``seed`` if given (a regrade with the seed recorded in ``results.json``); else the seed
    of the run that wrote ``out`` (kept in ``out/.cache/seed`` so that an interrupted run
    resumes on the same cases); else a fresh one from :mod:`secrets`, kept there.
    """
    path = out / ".cache" / "seed"
    if seed is None:
        try:
            seed = int(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            import secrets

            seed = secrets.randbits(63)
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"the grading seed must be an integer in [0, 2**63), got {seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, f"{int(seed)}\n")
    return int(seed)


def cache_key(sha: str, assignment: Assignment, limits: Limits, kind: str, code: str) -> str:
    """Key of a cached result: submission bytes, assignment, limits, sandbox, code."""
    blob = json.dumps([sha, assignment.sha256, asdict(limits), kind, code], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def grade_batch(
    assignment: Assignment,
    submissions: list[Submission],
    out: Path,
    sandbox: Sandbox,
    jobs: int,
    progress: bool | None = None,
    cluster=None,
    seed: int | None = None,
) -> list[dict]:
    """Grade every submission (reusing cached results) and write the outputs.

    Parameters
    ----------
    assignment : Assignment
    submissions : list of Submission
    out : Path
        Output folder: ``grades.csv``, ``results.json``, ``feedback/``, ``grading.log``
        and the resume cache ``.cache/``.
    sandbox : Sandbox
    jobs : int
    progress : bool or None
        Show a progress bar; None shows it on a terminal only.
    cluster : course_grade.distributed.DaskCluster or None
        Run the submissions on this Dask cluster instead of in a local pool of ``jobs``
        threads; planning, judging, the cache and every output file stay in this process.
    seed : int or None
        The secret seed of the hidden cases (see :func:`run_seed`); recorded in
        ``results.json`` and in each result, so that ``--seed`` reproduces a grade.

    Returns
    -------
    list of dict
        One result per submission, in the order given.
    """
    from tqdm import tqdm

    cache = out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    seed = run_seed(out, seed)
    for stale in (out / "feedback").glob(".*.tmp"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    code = code_fingerprint(assignment) + f":seed={seed}"
    results: dict[int, dict] = {}
    todo: list[int] = []
    for k, sub in enumerate(submissions):
        cached = cache / f"{cache_key(content_hash(sub.path), assignment, sandbox.limits, sandbox.kind, code)}.json"
        if cached.is_file():
            try:
                result = json.loads(cached.read_text(encoding="utf-8"))
                results[k] = {**result, "submission": sub.name, "cached": True}
                continue
            except ValueError:
                log.warning("ignoring an unreadable cache file %s", cached)
        todo.append(k)
    log.info("%d submissions: %d from the cache of an earlier run, %d to grade",
             len(submissions), len(results), len(todo))
    names = feedback_names([s.name for s in submissions])
    header = {
        "assignment": assignment.path.name,
        "assignment_sha256": assignment.sha256,
        "parts": [{"part": p.part, "points": p.points} for p in assignment.parts],
        "max_total": assignment.max_total,
        "sandbox": sandbox.describe(),
        "limits": asdict(sandbox.limits),
        "grader": code[:16],
        "manual": [{"part": m.part, "points": m.points} for m in assignment.manual],
        "seed": seed,
    }
    scores = load_scores(out)  # written-answer scores merged earlier (course-grade review --merge)

    def pending(k: int) -> dict:
        return {"submission": submissions[k].name, "sha256": None, "status": "pending",
                "reason": "not graded yet", "total": None, "max_total": assignment.max_total,
                "parts": [], "cell_errors": []}

    def write_summary() -> None:
        rows = apply_scores([results.get(k) or pending(k) for k in range(len(submissions))], scores)
        atomic_write(out / "grades.csv", grades_csv(rows, [p.part for p in assignment.parts],
                                                    [m.part for m in assignment.manual]))
        atomic_write(out / "results.json", results_json(
            [{k2: v for k2, v in r.items() if k2 != "cached"} for r in rows], header))

    def write_feedback(k: int) -> None:
        write_feedback_pages(out / "feedback", names[submissions[k].name],
                             apply_scores([results[k]], scores)[0], assignment.path.name)

    for k in results:
        write_feedback(k)
    write_summary()
    if (out / ".work").exists():
        shutil.rmtree(out / ".work")  # scratch homes left by a killed batch
    if not todo:
        return [results[k] for k in range(len(submissions))]

    (out / ".work").mkdir(mode=0o711)
    grader = Grader(assignment, out, sandbox, jobs, seed=seed)
    last_write = time.monotonic()
    bar = tqdm(total=len(submissions), initial=len(results), unit="nb", desc="grading",
               disable=None if progress is None else not progress, file=sys.stderr)
    if cluster is None:
        stream = _grade_locally(grader, submissions, todo, jobs)
    else:
        stream = cluster.grade(grader, submissions, todo)
    try:
        for k, result in stream:
            results[k] = result
            sha = result.get("sha256")
            if sha and result["status"] != "error":  # grader trouble is retried on a rerun
                key = cache_key(sha, assignment, sandbox.limits, sandbox.kind, code)
                atomic_write(cache / f"{key}.json", json.dumps(
                    {k2: v for k2, v in result.items() if k2 != "submission"}))
            write_feedback(k)
            log.info("%s: %s, %s / %g points, %.1f s%s", result["submission"], result["status"],
                     result["total"], result["max_total"], result.get("elapsed", 0),
                     f" ({result['reason']})" if result["reason"] else "")
            bar.update(1)
            if time.monotonic() - last_write > 2:
                write_summary()
                last_write = time.monotonic()
    except BaseException:
        stream.close()  # cancels what is still queued and kills the runs still going
        grader.close()
        write_summary()
        raise
    finally:
        bar.close()
    grader.close()
    shutil.rmtree(out / ".work", ignore_errors=True)
    write_summary()
    return [results[k] for k in range(len(submissions))]


def _grade_locally(grader: Grader, submissions: list[Submission], todo: list[int], jobs: int):
    """Grade ``submissions[k]`` for each ``k`` in ``todo`` in a pool of ``jobs`` threads;
    yields ``(k, result)`` as each one finishes."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    try:
        futures = {pool.submit(grader.grade, submissions[k]): k for k in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:  # GeneratorExit too: grade_batch then kills the runs still going
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
