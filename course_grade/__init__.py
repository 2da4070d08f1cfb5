"""course_grade: the instructor's side of the course, a package apart from ``course_lib``.

It releases the exercises, grades a class's notebooks safely, in parallel and resumably,
collects the written answers for review, reports on the class and exports the grades.
Students install ``course_lib`` alone; ``course_grade`` comes with the ``grade`` extra
(``pip install "course_lib[grade]"``), which brings its dependencies (nbclient,
jupyter-client, ipykernel, dask, distributed, markdown-it-py). Layering: ``course_grade``
imports ``course_lib.checks`` (each part's ``collect`` and ``judge``) and ``course_lib``
never imports ``course_grade`` (``tests/test_layers.py``).

Usage (:mod:`~course_grade.cli`; ``python -m course_grade`` is the same)::

    course-grade release [--check] [--student-tree DIR --repository OWNER/NAME]
    course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1 [--jobs N]
        [--cell-timeout S] [--timeout S] [--memory MB] [--scheduler local:N | tcp://host:8786]
        [--seed N] [--force]
    course-grade review grades-ex1 [--merge grades-ex1/manual.csv] [--force]
    course-grade report grades-ex1
    course-grade export grades-ex1 --format canvas|gradescope|csv --roster roster.csv
    course-grade status grades-ex1

``--scheduler`` runs the notebooks on a Dask cluster instead of local threads (see
:mod:`~course_grade.distributed`: planning, judging and every output file stay in the
instructor's process); ``export`` turns a batch's results into a learning platform's grade
file (:mod:`~course_grade.export`); ``report`` writes ``report.csv`` and ``report.html``
(:mod:`~course_grade.classreport`).

The exit status of ``grade`` is 0 when the batch completed, whatever the outcome of each
submission. ``--out`` receives ``grades.csv`` (one row per submission: ``submission``,
``status``, ``total``, ``max_total``, then one column per part), ``feedback/<name>.md`` and
``feedback/<name>.html`` per student, ``results.json`` (everything, with each part's
verdict), ``grading.log``, and ``.cache/``, the per-submission results a rerun resumes from.
``grades.csv`` ends with ``integrity`` (the parts that got 0 for using the library's
implementation) and ``submission_id`` (the anonymous id of the written-answer review). Grades
already in ``--out`` from another assignment, seed or grader version are never overwritten
without ``--force``.

Written answers (:mod:`~course_grade.manual`): for an exercise with ``role: manual``
cells, ``--out`` also receives ``manual/<part>.html`` (every answer to one question, by
anonymous id) and the template ``manual.csv``; ``course-grade review DIR --merge manual.csv``
validates the instructor's scores and merges them into the outputs without running any
notebook.

Design
------
For each submission (:mod:`~course_grade.batch`):

1. **Validate** the file (:func:`~course_grade.notebook.read_submission`): a regular
   file (not a symbolic link), at most 50 MB, UTF-8, JSON, nbformat 4, a Python
   kernelspec, well-formed cells. Otherwise the status is ``invalid`` and nothing runs.
2. **Plan** the run (:meth:`~course_grade.notebook.Assignment.plan`): cells are
   matched to the assignment *by id*. Every check cell of the submission (by id, or by a
   ``metadata.course.role`` of ``check``) is dropped, and each check cell of the assignment
   is put back after the submission's copy of the cell that precedes it in the assignment
   (normally the part's solution), after any cells the student added there. Deleting,
   editing, duplicating or moving a check cell has no effect. Stored outputs, execution
   counts and Markdown are dropped: only fresh execution counts.
3. **Run** the plan in a fresh sandbox (:mod:`~course_grade.sandbox`): bubblewrap
   namespaces, no network, an unprivileged uid per job, rlimits, a scratch home that holds
   nothing of the instructor's or of other students'. Inside, the runner
   (:mod:`~course_grade.runner`) executes the cells with nbclient and a per-cell
   timeout, and reports one JSON line per cell on its stdout, a pipe to the grader. A
   restored check cell calls :func:`course_grade.kernel.emit`, which runs the part's
   ``collect`` (the student's code on the check's own inputs) and publishes the collected
   *data* as one output of its cell. The grader enforces the whole-notebook timeout with a
   wall clock and a watch kills jobs that start too many processes or use too much memory.
4. **Judge** in the grader's own process: for each part, the record published by *that
   part's restored check cell* (identified by the cell's position in the run, as nbclient
   attributes outputs to the request that produced them) is passed to the check's
   ``judge``, which redraws the inputs, computes the reference with numpy/statsmodels, and
   compares. Judge failures are caught and reported as errors of that part.
5. **Review**, also in the grader's process and from the submitted code, never the
   kernel: a part whose notebook imports or uses the ``course_lib`` function it asks the
   student to write (``metadata.course.writes``) gets 0, status ``integrity``
   (:mod:`~course_grade.integrity`); the answers graded by hand are collected
   (:mod:`~course_grade.manual`).

Statuses: ``graded`` (the notebook ran to the end), ``timeout`` (a cell, or the whole
notebook, ran too long), ``crashed`` (the kernel died: ``os._exit``, a segfault, a fork
bomb or a memory bomb spread over processes, the runner killed), ``invalid`` (the file
could not be graded), ``error`` (the grader's own trouble, e.g. the kernel did not start;
not cached, so a rerun retries it). Parts whose checks did not run get 0 with the reason
in the feedback, and the row's status says why: a failure is never a silent 0.

Resuming: each result is cached in ``.cache/<key>.json`` as soon as it is known, keyed by
the SHA-256 of the submission's bytes, of the assignment, of the checks' and the grader's
code, and the limits. A rerun of the same command skips what is cached; all files are
written atomically.

Threat model
------------
The student controls the notebook's code and everything in the kernel: they can patch
numpy, builtins, ``course_lib``, and ``emit`` itself, print anything, and publish display
data. What we guarantee:

* **Patching cannot fake a pass.** The verdict is computed outside the kernel by
  unpatched code on inputs the judge redraws. The kernel only supplies *data* (the
  student's outputs). Forged data for a part are, at worst, outputs the student could
  have produced with honest code for that same part (calling statsmodels directly instead
  of solving the exercise is an academic-integrity question, not a sandbox one; calling
  ``course_lib``'s own implementation of the part is caught by the static integrity
  analysis, which runs in the grader on the submitted code).
  A result object whose ``==`` is always true never leaves the kernel: ``collect`` turns
  results into lists of floats.
* **Data cannot cross parts.** The part a record belongs to is the grader's knowledge
  (which restored cell produced it), never a field of the record. A record published
  from any other cell is ignored; a check cell that publishes more than one record (the
  student's code published one during the check) fails that part.
* **Stored outputs count for nothing.** Outputs and execution counts in the file are
  dropped before the run; grading reads only records of this run.
* **The instructor's files, other submissions and the grades are out of reach.** The
  sandbox's file system does not contain them (only the Python environment and the
  ``course_lib`` package are bound, read-only); the job's uid owns nothing else; results
  leave through the runner's stdout, which the kernel cannot reach (the runner is
  non-dumpable, so ``/proc/<pid>/fd`` and ptrace are closed to the same uid; the kernel's
  stdout and stderr are ``/dev/null``). Output files are written by the grader only.
* **Nothing a submission does stops the batch.** Each run has a per-cell and a total
  timeout, memory, process, file-size and CPU limits, and its own PID namespace; kernel
  death is reported by nbclient within about a second; the runner's output is parsed as
  untrusted, size-capped JSON; a judge that raises is caught.

What the student *can* do in the sandbox, and why it is acceptable: kill or stop the
runner (same uid) — the run ends as ``crashed`` or ``timeout``; sabotage their own
records (clear outputs, patch ``emit``) — their own parts fail; read the public
``course_lib`` (checks included; the references are computed, not stored); use CPU up to
the timeouts; fill its own home, ``/tmp`` and ``/dev/shm``, each a 256 MB tmpfs (the
write fails with "No space left on device"). Not covered: the weak sandbox used without
root or bubblewrap (no quota, no namespaces), which the grader announces with a warning.
"""

from __future__ import annotations

import importlib.util

__all__ = ["main"]

#: The grader's own dependencies, installed by the ``grade`` extra of ``pyproject.toml``
#: (import name: distribution name). Students' installs leave them out.
GRADE_EXTRA = {
    "nbclient": "nbclient", "jupyter_client": "jupyter-client", "ipykernel": "ipykernel",
    "IPython": "ipython", "tqdm": "tqdm", "markdown_it": "markdown-it-py",
    "mdit_py_plugins": "mdit-py-plugins", "dask": "dask", "distributed": "distributed",
}


def _require_grade_extra() -> None:
    """Fail on import, naming the extra, when the grader's dependencies are not installed
    (rather than a bare ImportError deep inside a batch, or in the sandboxed runner)."""
    missing = [dist for module, dist in GRADE_EXTRA.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ModuleNotFoundError(
            f"course_grade (course-grade) needs {', '.join(missing)}, which this environment "
            'lacks; install the grader\'s extra: pip install "course_lib[grade]"',
            name=missing[0])


_require_grade_extra()


def main(argv: list[str] | None = None) -> int:
    """Run ``course-grade`` (see the module docstring); returns the exit status."""
    from course_grade.cli import main as _main

    return _main(argv)
