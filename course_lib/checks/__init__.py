"""Exercise checks: run a student's code on inputs the check draws, then judge the results.

A check cell calls ``checks.check("ex1-fit-ols", fit_ols)`` and prints one verdict (✔ or ✘, the points, a hint).
``collect(answer)`` runs the student's code on the part's cases in the kernel and returns plain data only;
``judge(collected)`` reads that untrusted data and compares it with the outputs of a trusted reference:

    ✔ if compare(output(answer), output(reference)) holds on every case, or output(answer) equals a valid
    alternative's; else ✘, with the hint of the declared mistake whose output it equals.

A notebook judges the *public* cases (a fixed seed); a grader runs ``collect`` in the sandboxed kernel and
``judge`` in its own process on *hidden* cases (``check.for_seed(run_seed)``), so that neither patching this
package nor memorising the public cases earns a point. The ``exNN`` modules hold the references; in a student
tree they are absent and ``public.json`` holds the public cases with the outputs to judge them against.
"""

import importlib as _importlib
import json as _json
import pkgutil as _pkgutil
from pathlib import Path as _Path

from course_lib.checks.core import (CheckFailure, FunctionCheck, StoredCheck, Verdict, get_check, list_checks,
                                    register)


def run(part: str, *answers, seed: int | None = None) -> Verdict:
    """Collect and judge the answer to ``part`` (``*answers``: what its check cell passes in) and
    return the verdict, on the public cases, or on a grading run's hidden ones given its ``seed``."""
    chk = get_check(part).for_seed(seed)
    return chk.judge(chk.collect(*answers))


def check(part: str, *answers) -> None:
    """Check the answer to one part and print the verdict (the call in a check cell)."""
    print(run(part, *answers))


# Every module ``exNN`` of this package registers its checks on import: found by name, so that
# a new exercise registers by being there.
for _mod in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if _mod.startswith("ex") and _mod[2:].isdigit():
        _importlib.import_module(f"{__name__}.{_mod}")

if (_PUBLIC_FILE := _Path(__file__).with_name("public.json")).is_file():  # a student tree
    for _part, _record in _json.loads(_PUBLIC_FILE.read_text(encoding="utf-8")).items():
        register(StoredCheck.from_record(_part, _record))

__all__ = ["CheckFailure", "FunctionCheck", "StoredCheck", "Verdict", "check", "get_check", "list_checks", "register",
           "run"]
