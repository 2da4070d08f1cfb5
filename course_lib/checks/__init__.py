"""Exercise checks: run a student's code on inputs the check draws, then judge the results.

A check cell in an exercise notebook calls :func:`check` with the part's id and the
student's answer (usually a function)::

    checks.check("ex1-fit-ols", fit_ols)

and prints one short verdict, for example::

    ✔ ex1-fit-ols  1/1  fit_ols agrees with least squares on 4 data sets the check drew.

Each check works in two steps, kept apart on purpose:

``collect(answer)``
    runs the student's code on inputs drawn from a fixed seed, and returns plain data
    (lists of floats, strings, and the text of any exception). Nothing else leaves it.
``judge(collected)``
    redraws the same inputs from the seed, computes the reference answer with a trusted
    library (numpy, statsmodels), and compares. It returns a :class:`Verdict`.

The cases a notebook shows are the *public* ones, drawn from the part's fixed seed. At
grading, ``check.for_seed(run_seed)`` draws *hidden* cases from the same generator with a
seed mixed from a secret the grader picks per run, so an answer that memorised the public
cases gets nothing.

In a notebook both steps run in the kernel. A grader runs ``collect`` in the sandboxed
student kernel and ``judge`` in its own process, so that patching numpy or this module in
the kernel cannot fake a pass.

In a student tree (:func:`course_lib.release.student_tree`) the ``exNN`` modules, which hold
the references, are absent; ``public.json`` beside this file holds each part's public cases
with the outputs of the reference, the valid alternatives and the known mistakes, made at
release time, and the same judge runs on them (:class:`~course_lib.checks.core.StoredCheck`).
A part that stores nothing says that the answer is written and is judged when handed in.
"""

from __future__ import annotations

import json as _json
from pathlib import Path as _Path

from course_lib.checks.core import (Check, CheckFailure, FunctionCheck, StoredCheck, Verdict, get_check,
                                    list_checks, register)

#: In a student tree: every graded part's points and the names its check cell passes, and
#: the parts whose public cases are stored (empty in the instructor's course).
PARTS: dict = {}
PUBLIC: dict = {}


def run(part: str, *answers, seed: int | None = None) -> Verdict:
    """Collect and judge the answer to one part, returning the verdict without printing.

    Parameters
    ----------
    part : str
        The part's id, as in the exercise notebook (``"ex1-fit-ols"``).
    *answers
        What the check cell passes in: usually the student's function.
    seed : int, optional
        A grading run's secret seed: judge on the hidden cases it draws
        (:meth:`Check.for_seed`) instead of the public ones.

    Returns
    -------
    Verdict
    """
    if part in PARTS and part not in PUBLIC:
        return _written(part, *answers)
    chk = get_check(part).for_seed(seed)
    return chk.judge(chk.collect(*answers))


def _written(part: str, *answers) -> Verdict:
    """In a student tree, for a part that stores no cases: whether the answer is written."""
    names, points = PARTS[part]["names"] or ["your answer"], PARTS[part]["points"]
    for name, answer in zip(names, answers):
        if not callable(answer):
            return Verdict(part, "error", 0.0, points, f"{name} should be a function, got {type(answer).__name__}")
        code = getattr(answer, "__code__", None)  # a stub's message names the part
        if code is not None and any(f"{part}: replace this line" in str(c) for c in code.co_consts):
            return Verdict(part, "not-implemented", 0.0, points,
                           f"{name} still raises NotImplementedError: replace the stub with your solution.")
    return Verdict(part, "written", 0.0, points,
                   f"{', '.join(names)} is written: it is judged when you hand in the notebook.")


def check(part: str, *answers) -> None:
    """Check the answer to one part and print the verdict (the call in a check cell)."""
    print(run(part, *answers))


# Importing the exercise modules registers their checks: every module ``exNN`` of this
# package, found by name, so that a new exercise registers by being there.
import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

for _mod in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if _mod.startswith("ex") and _mod[2:].isdigit():
        _importlib.import_module(f"{__name__}.{_mod}")

if (_PUBLIC_FILE := _Path(__file__).with_name("public.json")).is_file():  # a student tree
    _tree = _json.loads(_PUBLIC_FILE.read_text(encoding="utf-8"))
    PARTS, PUBLIC = _tree["parts"], _tree["public"]
    for _part, _record in PUBLIC.items():
        register(StoredCheck.from_record(_part, _record))

__all__ = ["Check", "CheckFailure", "FunctionCheck", "PARTS", "PUBLIC", "StoredCheck", "Verdict", "check",
           "get_check", "list_checks", "register", "run"]
