"""Exercise checks: run a student's code on inputs the check draws, then judge the results.

A check cell calls ``checks.check("ex1-fit-ols", fit_ols)`` and prints one verdict, e.g.
``✔ ex1-fit-ols  1/1  fit_ols agrees with least squares on 4 data sets the check drew.``
It works in two steps, kept apart on purpose: ``collect(answer)`` runs the student's code on
the part's cases and returns plain data only; ``judge(collected)`` redraws the cases, computes
the reference answer with a trusted library and compares. A notebook runs both in the kernel on
the *public* cases (a fixed seed); a grader runs ``collect`` in the sandboxed student kernel and
``judge`` in its own process, on *hidden* cases drawn from a secret seed per run
(``check.for_seed(run_seed)``), so that neither patching this module nor memorising the public
cases earns a point. In a student tree the ``exNN`` modules (the references) are absent and
``public.json`` holds the public cases with the outputs to judge them against
(:class:`~course_lib.checks.core.StoredCheck`); a part that stores none says the answer is
written and is judged when handed in.
"""

from __future__ import annotations

import importlib as _importlib
import json as _json
import pkgutil as _pkgutil
from pathlib import Path as _Path

from course_lib.checks.core import (CheckFailure, FunctionCheck, StoredCheck, Verdict, get_check, list_checks,
                                    register)

#: In a student tree: every graded part's points and the names its check cell passes, and the
#: parts whose public cases are stored (both empty in the instructor's course).
PARTS: dict = {}
PUBLIC: dict = {}


def run(part: str, *answers, seed: int | None = None) -> Verdict:
    """Collect and judge the answer to ``part`` (``*answers``: what its check cell passes in) and
    return the verdict, on the public cases, or on a grading run's hidden ones given its ``seed``."""
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


# Every module ``exNN`` of this package registers its checks on import: found by name, so that
# a new exercise registers by being there.
for _mod in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if _mod.startswith("ex") and _mod[2:].isdigit():
        _importlib.import_module(f"{__name__}.{_mod}")

if (_PUBLIC_FILE := _Path(__file__).with_name("public.json")).is_file():  # a student tree
    _tree = _json.loads(_PUBLIC_FILE.read_text(encoding="utf-8"))
    PARTS, PUBLIC = _tree["parts"], _tree["public"]
    for _part, _record in PUBLIC.items():
        register(StoredCheck.from_record(_part, _record))

__all__ = ["CheckFailure", "FunctionCheck", "PARTS", "PUBLIC", "StoredCheck", "Verdict", "check", "get_check",
           "list_checks", "register", "run"]
