"""The grader's side of a check cell, run *inside* the student's kernel.

When ``course-grade`` runs a submission, every check cell is replaced by one line::

    __import__("course_grade.kernel", fromlist=["emit"]).emit("ex1-fit-ols", globals(), "fit_ols")

:func:`emit` looks the answers up in the notebook's namespace, calls the part's
``collect`` (which runs the student's code on the check's own inputs) and publishes the
collected data as one display output of MIME type :data:`RECORD_MIME`. It never judges:
the grader reads the record from *this cell's* outputs and judges it in its own process.

Everything here runs next to the student's code and may have been patched by it; the
grader treats the record as untrusted data (see the threat model in
:mod:`course_grade`).
"""

from __future__ import annotations

import json

#: MIME type of the one display output a restored check cell publishes.
RECORD_MIME = "text/x-course-grade-record"


def emit(part: str, namespace, *names: str, seed: int | None = None) -> None:
    """Collect the answers to ``part`` and publish them as one record (no verdict).

    Parameters
    ----------
    part : str
        The part id, e.g. ``"ex1-fit-ols"``.
    namespace : dict
        The notebook's global namespace (``globals()`` in the cell).
    *names : str
        The names the assignment's check cell passes to ``checks.check``.
    seed : int, optional
        The grading run's secret seed: collect on the part's hidden cases
        (:meth:`course_lib.checks.FunctionCheck.for_seed`); the judge draws the same ones.
    """
    from IPython.display import publish_display_data

    try:
        text = json.dumps(_collect(part, namespace, names, seed))
    except Exception as err:  # a result that cannot be written down is an error
        text = json.dumps({"problem": f"the check could not record your results ({type(err).__name__})"})
    publish_display_data({RECORD_MIME: text})


def _collect(part: str, namespace, names, seed: int | None = None) -> dict:
    if not isinstance(namespace, dict):
        return {"problem": "the check could not read the notebook's variables"}
    missing = [n for n in names if n not in namespace]
    if missing:
        return {
            "problem": f"{missing[0]} is not defined when the check runs: run the cell that "
            f"defines it above the check, and keep its name"
        }
    from course_lib.checks import get_check

    try:
        return {"collected": get_check(part).for_seed(seed).collect(*(namespace[n] for n in names))}
    except (Exception, SystemExit) as err:  # the student's code may raise anything, or exit
        text = f"{type(err).__name__}: {err}"[:300]
        return {"problem": f"running your code for the check raised {text}"}
