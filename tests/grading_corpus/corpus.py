"""A corpus of exercise-1 submissions for ``course-grade``: right, wrong, broken and hostile.

Each submission is generated from the instructor notebook ``exercises/01-regression.ipynb``
(or from its student copy), so that the corpus follows the exercise when it changes. Each
comes with what the grader must say about it: the row's status and every part's points.

    python tests/grading_corpus/corpus.py OUTDIR      # write the corpus, to try by hand

The hostile submissions test the sandbox through their points: each stolen or leaked
resource turns one wrong answer into a right one, so a leak shows as points that should
not be there. ``build`` takes the paths and the port the hostile notebooks aim at.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = ROOT / "exercises" / "01-regression.ipynb"
STUDENT = ROOT / "exercises" / "student" / "01-regression.ipynb"

FULL = {
    "ex1-fit-ols": 1.0,
    "ex1-standard-errors": 1.0,
    "ex1-predict": 0.5,
    "ex1-days-to-slow": 0.5,
    "ex1-residuals-by-subject": 1.0,
}
PARTS = list(FULL)


@dataclass(frozen=True)
class Expect:
    """What the grader must report for one submission.

    ``points`` maps each part to its points (None for a row that was not graded); ``words``
    must appear in the row's reason (the feedback says why). ``judged``, for a notebook that
    gets 0 for integrity, is what the judge gave each part before that (``points``-like).
    """

    status: str
    points: dict | None
    words: str = ""
    judged: dict | None = None

    @property
    def total(self) -> float | None:
        return None if self.points is None else sum(self.points.values())


def full(**lost: float) -> dict:
    """FULL with some parts at other points: ``full(ex1_predict=0)``."""
    points = dict(FULL)
    for key, value in lost.items():
        points[key.replace("_", "-")] = value
    return points


def only(*parts: str) -> dict:
    """Points for the named parts only, 0 for the others."""
    return {p: (FULL[p] if p in parts else 0.0) for p in PARTS}


# ----------------------------------------------------------------------------------------
# Notebook surgery


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _cell(nb: dict, cid: str) -> dict:
    return next(c for c in nb["cells"] if c.get("id") == cid)


def _index(nb: dict, cid: str) -> int:
    return next(k for k, c in enumerate(nb["cells"]) if c.get("id") == cid)


def _code(source: str, cid: str) -> dict:
    return {"cell_type": "code", "id": cid, "metadata": {}, "source": source,
            "outputs": [], "execution_count": None}


def _set(nb: dict, cid: str, source: str) -> dict:
    _cell(nb, cid)["source"] = source
    return nb


def _after(nb: dict, cid: str, *cells: dict) -> dict:
    k = _index(nb, cid) + 1
    nb["cells"][k:k] = list(cells)
    return nb


def _strip(nb: dict) -> dict:
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def _checks(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("course", {}).get("role") == "check"]


def _json(nb: dict) -> bytes:
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# Wrong or odd solutions, one function each (the cell ids are the instructor notebook's).
REVERSED_BETA = "def fit_ols(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y)[::-1]\n"
SE_DIVIDE_BY_N = (
    "def ols_standard_errors(X, y):\n    n, p = X.shape\n    resid = y - X @ fit_ols(X, y)\n"
    "    return np.sqrt(resid @ resid / n * np.diag(np.linalg.inv(X.T @ X)))\n"
)
PREDICT_SWAPPED = "def predict_reaction(beta, days):\n    return beta[1] + beta[0] * np.asarray(days, dtype=float)\n"
CONSTANT = {
    "ex1-fit-ols": "def fit_ols(X, y):\n    return np.zeros(X.shape[1])\n",
    "ex1-standard-errors": "def ols_standard_errors(X, y):\n    return np.ones(X.shape[1])\n",
    "ex1-predict": "def predict_reaction(beta, days):\n    return np.zeros(len(days))\n",
    "ex1-days-to-slow": "def days_to_slow_by(beta, ms):\n    return 1.0\n",
    "ex1-residuals-by-subject": (
        "def residuals_by_subject(data, beta):\n"
        "    return data.groupby('Subject', observed=True)['Reaction'].mean() * 0\n"
    ),
}


RESIDUALS_ALONE = (  # right, and independent of predict_reaction
    "def residuals_by_subject(data, beta):\n"
    "    resid = data['Reaction'] - beta[0] - beta[1] * data['Days']\n"
    "    return resid.groupby(data['Subject'], observed=True).mean()\n"
)
SE_ALONE = (  # right, and independent of fit_ols
    "def ols_standard_errors(X, y):\n    n, p = X.shape\n"
    "    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]\n"
    "    return np.sqrt(r @ r / (n - p) * np.diag(np.linalg.inv(X.T @ X)))\n"
)


PATCH_CHECKS = """\
import course_lib.checks as checks_pkg
import course_lib.checks.core as core
import course_grade.kernel as grading_kernel
from IPython.display import publish_display_data

def always_pass(self, collected):
    return core.Verdict(self.part, "passed", self.points, self.points, "patched")

# the verdict machinery, as a student might find it in the notebook
core.FunctionCheck.judge = always_pass
core.compare_arrays = lambda *a, **k: None
core.Returned.from_data = classmethod(lambda cls, data: cls("array", array=np.zeros(1)))
checks_pkg.run = lambda part, *a: always_pass(checks_pkg.get_check(part), None)
checks_pkg.check = lambda part, *a: print(f"✔ {part}  1/1  patched")

# what the grader runs in the kernel: collect (for fit_ols) and emit (for days_to_slow_by)
real_collect, real_emit = core.FunctionCheck.collect, grading_kernel.emit

def fake_collect(self, *answers):
    if self.part == "ex1-fit-ols":
        return {"part": self.part, "passed": True, "outputs": "all good"}
    return real_collect(self, *answers)

def fake_emit(part, namespace, *names, **seed):
    if part != "ex1-days-to-slow":
        return real_emit(part, namespace, *names, **seed)
    forged = {"collected": {"part": part, "passed": True, "outputs": [1.0, 2.0, 3.0, 4.0]}}
    publish_display_data({grading_kernel.RECORD_MIME: json.dumps(forged)})

import json
core.FunctionCheck.collect = fake_collect
grading_kernel.emit = fake_emit
"""

PATCH_NUMPY = """\
import math
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
"""

ALWAYS_EQUAL = """\
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__

def predict_reaction(beta, days):
    return AlwaysEqual()
"""

FORGED = (
    '{"collected": {"part": "ex1-fit-ols", "outputs": '
    '[{"kind": "array", "shape": [2], "values": [1.0, 2.0]}]}}'
)
FORGE_RECORDS = f"""\
from IPython.display import publish_display_data
from course_grade.kernel import RECORD_MIME
for part in {PARTS!r}:
    publish_display_data({{RECORD_MIME: '{{"collected": {{"part": "' + part + '", "passed": true}}}}'}})

def residuals_by_subject(data, beta):
    publish_display_data({{RECORD_MIME: '{FORGED}'}})  # forged during another part's check
    resid = data["Reaction"] - predict_reaction(beta, data["Days"])
    return resid.groupby(data["Subject"], observed=True).mean()
"""


def _snoop(assignment: Path, corpus: Path, out: Path, port: int) -> str:
    return f"""\
import os, socket, time
ASSIGNMENT, CORPUS, OUT, PORT = {str(assignment)!r}, {str(corpus)!r}, {str(out)!r}, {port}

def attempt(action):
    try:
        action()
        return True
    except Exception:
        return False

def find_solutions():
    start = time.monotonic()
    for folder, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in ("/proc", "/sys", "/dev", "/usr")]
        for f in files:
            if f.endswith(".ipynb"):
                path = os.path.join(folder, f)
                if attempt(lambda: open(path).read().index("### BEGIN SOLUTION")):
                    return True
        if time.monotonic() - start > 8:
            break
    return False

def connect(host, port):
    with socket.create_connection((host, port), timeout=1) as s:
        s.sendall(b"leaked from a sandbox")

def write(path):
    with open(path, "a") as fh:
        fh.write("forged.ipynb,graded,4,4,1,1,0.5,0.5,1\\n")

def grades():
    outcomes = [attempt(lambda: os.listdir(OUT)), attempt(lambda: open(os.path.join(OUT, "grades.csv")).read())]
    outcomes += [attempt(lambda: os.listdir(os.path.join(OUT, ".cache")))]
    outcomes += [attempt(lambda: write(os.path.join(OUT, "grades.csv"))),
                 attempt(lambda: write(os.path.join(OUT, "results.json"))),
                 attempt(lambda: write(os.path.join(OUT, "forged.txt")))]
    return any(outcomes)

LEAK = {{
    "assignment": attempt(lambda: open(ASSIGNMENT).read()) or find_solutions(),
    "others": attempt(lambda: os.listdir(CORPUS)) or attempt(lambda: open(os.path.join(CORPUS, "correct.ipynb")).read()),
    "grades": grades(),
    "network": attempt(lambda: connect("127.0.0.1", PORT)) or attempt(lambda: connect("1.1.1.1", 53))
               or attempt(lambda: socket.getaddrinfo("example.com", 80)),
    "corpus-write": attempt(lambda: write(os.path.join(CORPUS, "correct.ipynb"))),
}}
print(LEAK)

def fit_ols(X, y):  # right only if the instructor's notebook leaked
    return np.linalg.lstsq(X, y, rcond=None)[0] if LEAK["assignment"] else np.zeros(X.shape[1])

def ols_standard_errors(X, y):  # right only if other submissions leaked
    n, p = X.shape
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    se = np.sqrt(r @ r / (n - p) * np.diag(np.linalg.inv(X.T @ X)))
    return se if LEAK["others"] or LEAK["corpus-write"] else se * 2

def predict_reaction(beta, days):  # right only if the grades could be read or written
    return beta[0] + beta[1] * np.asarray(days, dtype=float) + (0 if LEAK["grades"] else 1)

def days_to_slow_by(beta, ms):  # right only if the network was reachable
    return ms / beta[1] if LEAK["network"] else ms / beta[0]
"""


# A submission that solves nothing: it recorded the public cases its check cells drew and
# what they should give (honest numpy answers, computed here), and looks them up.
MEMO_KEY = """\
def _memo_key(*args):  # the inputs' sum identifies a public case
    total = 0.0
    for a in args:
        if hasattr(a, "columns"):
            a = a[["Reaction", "Days"]].to_numpy()
        total += float(np.sum(np.asarray(a, dtype=float)))
    return f"{total:.6f}"
"""
MEMO_FUNCTIONS = {
    "ex1-fit-ols": ("fit_ols", "X, y"),
    "ex1-standard-errors": ("ols_standard_errors", "X, y"),
    "ex1-predict": ("predict_reaction", "beta, days"),
    "ex1-days-to-slow": ("days_to_slow_by", "beta, ms"),
    "ex1-residuals-by-subject": ("residuals_by_subject", "data, beta"),
}


def _honest(part: str, *args):
    import numpy as np

    if part in ("ex1-fit-ols", "ex1-standard-errors"):
        X, y = args
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        if part == "ex1-fit-ols":
            return beta.tolist()
        r = y - X @ beta
        return np.sqrt(r @ r / (len(y) - X.shape[1]) * np.diag(np.linalg.inv(X.T @ X))).tolist()
    if part == "ex1-predict":
        return (args[0][0] + args[0][1] * np.asarray(args[1], dtype=float)).tolist()
    if part == "ex1-days-to-slow":
        return float(args[1] / args[0][1])
    data, beta = args
    mean = (data["Reaction"] - beta[0] - beta[1] * data["Days"]).groupby(data["Subject"], observed=True).mean()
    return {"index": [str(i) for i in mean.index], "values": mean.tolist()}


def memorised_sources() -> tuple[str, dict[str, str]]:
    """The lookup-table cell and each part's function of the memorising submission."""
    import numpy as np

    from course_lib import checks

    namespace: dict = {"np": np}
    exec(MEMO_KEY, namespace)
    table = {part: {namespace["_memo_key"](*case.args): _honest(part, *case.args)
                    for case in checks.get_check(part).cases()} for part in MEMO_FUNCTIONS}
    setup = f"import pandas as pd\n{MEMO_KEY}\nMEMO = {json.dumps(table)}\n"
    functions = {}
    for part, (name, params) in MEMO_FUNCTIONS.items():
        lookup = f"MEMO[{part!r}].get(_memo_key({params}), next(iter(MEMO[{part!r}].values())))"
        body = (f"    found = {lookup}\n    return pd.Series(found['values'], index=found['index'])\n"
                if part == "ex1-residuals-by-subject" else f"    return np.asarray({lookup})\n")
        functions[part] = f"def {name}({params}):\n{body}"
    return setup, functions


def build(corpus: Path, out: Path, port: int, cell_timeout: int, timeout: float) -> dict[str, Expect]:
    """Write the corpus into ``corpus``; return what the grader must say about each file.

    Parameters
    ----------
    corpus : Path
        Folder to write the submissions into (created).
    out : Path
        The grader's output folder, which the hostile notebooks try to read and write.
    port : int
        A TCP port on the host's loopback that the network probe tries to reach.
    cell_timeout, timeout : int, float
        The limits the batch will run with (the slow notebooks are sized from them).
    """
    corpus.mkdir(parents=True, exist_ok=True)
    solved = _load(ASSIGNMENT)
    student = _load(STUDENT)
    expect: dict[str, Expect] = {}
    files: dict[str, bytes] = {}

    def add(name: str, nb_or_bytes, expected: Expect) -> None:
        files[name] = nb_or_bytes if isinstance(nb_or_bytes, bytes) else _json(nb_or_bytes)
        expect[name] = expected

    def sol() -> dict:
        return copy.deepcopy(solved)

    # -- right answers, and answers graded on fresh execution only ------------------------
    add("correct.ipynb", sol(), Expect("graded", full()))
    faked = copy.deepcopy(student)  # the stubs, untouched
    solved_cells = {c["id"]: c for c in solved["cells"]}  # by id: the student copy has Colab cells too
    for cell in faked["cells"]:
        source = solved_cells.get(cell["id"])
        if cell["cell_type"] == "code" and source is not None:  # the instructor's ✔ outputs pasted over the stubs
            cell["outputs"], cell["execution_count"] = source["outputs"], source["execution_count"]
    add("faked-outputs.ipynb", faked, Expect("graded", only()))
    # answers memorised from the public cases: the grader's hidden cases give them 0
    setup, functions = memorised_sources()
    nb = _after(sol(), "setup", _code(setup, "memorised-table"))
    for part, source in functions.items():
        _set(nb, part, source)
    add("memorised-public-answers.ipynb", nb, Expect("graded", only()))

    # -- the chapter's common mistakes lose exactly the parts they break ------------------
    add("mistake-reversed-beta.ipynb", _set(sol(), "ex1-fit-ols", REVERSED_BETA),
        Expect("graded", full(ex1_fit_ols=0, ex1_standard_errors=0)))  # SE calls fit_ols
    add("mistake-se-divide-by-n.ipynb", _set(sol(), "ex1-standard-errors", SE_DIVIDE_BY_N),
        Expect("graded", full(ex1_standard_errors=0)))
    add("mistake-predict-swapped.ipynb", _set(sol(), "ex1-predict", PREDICT_SWAPPED),
        Expect("graded", full(ex1_predict=0, ex1_residuals_by_subject=0)))  # residuals use it

    # -- check cells deleted, edited, duplicated, moved: no effect ------------------------
    # One tampering per part, so that each one that worked would change that part's points;
    # the outputs are stripped, which must not matter either.
    nb = _set(_strip(sol()), "ex1-standard-errors", SE_DIVIDE_BY_N)
    nb["cells"].remove(_cell(nb, "ex1-fit-ols-check"))  # deleted: still checked
    _set(nb, "ex1-standard-errors-check",  # edited to check a right answer: ignored
         "checks.check('ex1-standard-errors', lambda X, y: np.sqrt(np.diag(np.linalg.inv(X.T @ X))))")
    twin = copy.deepcopy(_cell(nb, "ex1-predict-check"))
    renamed = dict(copy.deepcopy(twin), id="ex1-predict-check-copy")
    _after(nb, "ex1-predict-check", twin, renamed)  # duplicated, same id and a new id
    nb["cells"].insert(0, copy.deepcopy(twin))  # and above everything
    moved = _cell(nb, "ex1-days-to-slow-check")  # moved to the top, where it cannot run
    nb["cells"].remove(moved)
    nb["cells"].insert(0, moved)
    _set(nb, "ex1-residuals-by-subject-check", "")  # emptied
    add("check-cells-tampered.ipynb", nb, Expect("graded", full(ex1_standard_errors=0)))

    # -- patching inside the kernel cannot fake a pass -----------------------------------
    # Each part is attacked differently and answered wrongly; the untouched part is right.
    nb = _set(sol(), "ex1-fit-ols", CONSTANT["ex1-fit-ols"])  # + helpers and judge patched
    _set(nb, "ex1-standard-errors", CONSTANT["ex1-standard-errors"])  # + numpy patched
    _set(nb, "ex1-predict", ALWAYS_EQUAL)  # an object equal to everything
    _set(nb, "ex1-days-to-slow", CONSTANT["ex1-days-to-slow"])  # + emit patched
    _set(nb, "ex1-residuals-by-subject", RESIDUALS_ALONE)
    _after(nb, "setup", _code(PATCH_CHECKS, "patch-checks"), _code(PATCH_NUMPY, "patch-numpy"))
    # The patches use the checks' own code, which costs every part its points for
    # integrity; what the judge said before that must still be right.
    add("patched.ipynb", nb, Expect("graded", only(), judged=only("ex1-residuals-by-subject")))
    nb = _set(sol(), "ex1-fit-ols", "from course_lib.checks.ex01 import _ols_params\n\n"
                                    "def fit_ols(X, y):\n    return _ols_params(X, y)\n")
    add("checks-reference.ipynb", nb, Expect("graded", only(), "", judged=full()))
    nb = _set(sol(), "ex1-fit-ols", "def fit_ols(X, y):\n    return X.T @ y\n")
    _set(nb, "ex1-standard-errors", SE_ALONE)
    _set(nb, "ex1-residuals-by-subject", FORGE_RECORDS)
    add("forged-records.ipynb", nb, Expect("graded", full(ex1_fit_ols=0, ex1_residuals_by_subject=0)))

    # -- exits and crashes ---------------------------------------------------------------
    nb = _after(sol(), "setup", _code("import sys\nsys.exit(1)", "exit-cell"))
    _set(nb, "ex1-days-to-slow", "import sys\n\ndef days_to_slow_by(beta, ms):\n    sys.exit(0)\n")
    add("sys-exit.ipynb", nb, Expect("graded", full(ex1_days_to_slow=0)))
    add("os-exit.ipynb", _after(sol(), "ex1-standard-errors-check", _code("import os\nos._exit(3)", "bye")),
        Expect("crashed", only("ex1-fit-ols", "ex1-standard-errors"), "kernel died while running cell bye"))
    add("segfault.ipynb", _set(sol(), "ex1-predict",
                               "import ctypes\n\ndef predict_reaction(beta, days):\n    return ctypes.string_at(0)\n"),
        Expect("crashed", only("ex1-fit-ols", "ex1-standard-errors"), "the check of part ex1-predict"))

    # -- resources -----------------------------------------------------------------------
    add("endless-loop.ipynb", _after(sol(), "ex1-fit-ols-check", _code("while True:\n    pass", "spin")),
        Expect("timeout", only("ex1-fit-ols"), f"cell spin ran longer than {cell_timeout} s"))
    nap = round(cell_timeout * 0.8)
    naps = [_code(f"import time\ntime.sleep({nap})", f"nap-{k}") for k in range(math.ceil(timeout / nap) + 1)]
    add("notebook-timeout.ipynb", _after(sol(), "ex1-standard-errors-check", *naps),
        Expect("timeout", only("ex1-fit-ols", "ex1-standard-errors"), f"longer than {timeout:g} s in all"))
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    add("fork-bomb.ipynb", _after(sol(), "ex1-predict-check", _code(bomb, "bomb")),
        Expect("crashed", only("ex1-fit-ols", "ex1-standard-errors", "ex1-predict"), "processes"))
    # a memory bomb (stopped by the kernel's memory limit: MemoryError) and a huge output
    # (not stored): both contained, the notebook goes on and is graded
    hog = "hog = []\nwhile True:\n    hog.append(bytearray(256 * 2**20))"
    flood = 'print("x" * 100_000_000)\nfor i in range(100_000):\n    print(i, "y" * 200)'
    nb = _after(sol(), "setup", _code(flood, "flood"))
    _after(nb, "ex1-residuals-by-subject-check", _code(hog, "hog"))
    add("memory-bomb-and-huge-output.ipynb", nb, Expect("graded", full()))

    # -- snooping and the network: each leak would turn a wrong answer into a right one ---
    nb = sol()
    for part in ("ex1-fit-ols", "ex1-standard-errors", "ex1-predict", "ex1-days-to-slow"):
        _set(nb, part, "# the answers are defined in the snoop cell, from what leaked\n")
    _set(nb, "ex1-residuals-by-subject", RESIDUALS_ALONE)
    _after(nb, "setup", _code(_snoop(ASSIGNMENT, corpus, out, port), "snoop"))
    add("snoop.ipynb", nb, Expect("graded", only("ex1-residuals-by-subject")))

    # -- files that cannot be graded ------------------------------------------------------
    text = _json(sol())
    add("broken-json.ipynb", text[: len(text) // 2], Expect("invalid", None, "not valid JSON"))
    add('=HYPERLINK("http:evil") ..x.ipynb', text[:100], Expect("invalid", None, "not valid JSON"))
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "1", "language": "python", "outputs": []}]}]}
    add("nbformat3.ipynb", _json(v3), Expect("invalid", None, "nbformat 3"))
    nb = sol()
    del nb["metadata"]["kernelspec"]
    add("no-kernelspec.ipynb", nb, Expect("invalid", None, "no kernelspec"))
    nb = sol()
    nb["cells"][0]["source"] = "# Exercice 1 — régression"
    add("latin1.ipynb", json.dumps(nb, ensure_ascii=False).encode("latin-1", "replace"),
        Expect("invalid", None, "not UTF-8"))
    add("empty.ipynb", b"", Expect("invalid", None, "empty"))
    other = {"nbformat": 4, "nbformat_minor": 5, "metadata": copy.deepcopy(solved["metadata"]),
             "cells": [_code("print('exercise 2?')", "something-else")]}
    add("wrong-exercise.ipynb", other, Expect("invalid", None, "none of the assignment's cells"))

    for name, data in files.items():
        (corpus / name).write_bytes(data)
    link = corpus / "symlink.ipynb"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(ASSIGNMENT, link)  # the instructor's notebook, under a student's name
    expect["symlink.ipynb"] = Expect("invalid", None, "symbolic link")
    return expect


# ----------------------------------------------------------------------------------------
# Exercise 5: written answers (graded by hand) and integrity (the library's own function)

EX5 = ROOT / "exercises" / "05-lnp-receptive-fields.ipynb"
EX5_FULL = {
    "ex5-sampler": 0.5, "ex5-response-plot": 0.5, "ex5-negloglik": 0.5, "ex5-fit": 1.0,
    "ex5-rf-plot": 0.5, "ex5-binning": 0.5, "ex5-lagged": 1.0, "ex5-lagged-plots": 0.5,
    "ex5-svd": 0.5, "ex5-space-time-plots": 0.5, "ex5-ridge": 1.0, "ex5-alpha-plots": 0.5,
}
EX5_MANUAL = {"ex5-derivation": 2.0, "ex5-alpha-answer": 0.5, "ex5-lasso": 1.0,
              "ex5-choose-penalty": 0.5}

# Each cheat is right (its part's check passes on it) and uses course_lib's implementation
# of the function the part asks for, in a different way; the functions that build on it
# (fit_lags calls fit_rf, fit_ridge calls negloglik) keep working and keep their points.
CHEATS = {
    "integrity-import-by-name.ipynb": ("ex5-sampler", "course_lib.lnp.sample_lnp",
                                       "from course_lib.lnp import sample_lnp\n"),
    "integrity-alias.ipynb": ("ex5-negloglik", "course_lib.lnp.negloglik",
                              "import course_lib.lnp as L\n\n"
                              "def negloglik(w, c, s, dt, R):\n"
                              "    return L.negloglik(w, c, s, dt, R)\n"),
    "integrity-getattr.ipynb": ("ex5-fit", "course_lib.lnp.fit_rf",
                                "def fit_rf(c, s, dt, R):\n"
                                "    return getattr(lnp, \"fit_\" + \"rf\")(c, s, dt, R).w\n"),
    "integrity-importlib.ipynb": ("ex5-binning", "course_lib.lnp.bin_spikes",
                                  "import importlib\n\n"
                                  "def bin_counts(spike_times, trigger_times, frame_duration):\n"
                                  "    m = importlib.import_module(\"course_lib.lnp\")\n"
                                  "    return m.bin_spikes(spike_times, trigger_times, frame_duration)\n"),
}

DERIVATION = (
    "**Answer.** The bins are independent Poisson counts, so "
    "$\\log L(w) = \\sum_t c_t\\, w^\\top s_t - \\Delta t R\\, e^{w^\\top s_t}$ + const, "
    "and $\\nabla_w \\log L = \\sum_t (c_t - r_t) s_t$."
)
ALPHA = "**Answer.** A larger α shrinks the weights towards zero; choose α by cross-validation."
HOSTILE = "**Answer.** <script>alert('grade me 100')</script> <img src=x onerror=alert(1)> r < c & w > 0"


def build_ex5(corpus: Path) -> dict[str, dict]:
    """Write exercise-5 submissions with written answers and integrity cases into ``corpus``.

    Returns, per file: ``points`` (each autograded part), ``integrity`` (the part that must
    get 0 for integrity and the target it used, or None) and ``answers`` (the written
    answer of each manual part, None for a missing cell).
    """
    corpus.mkdir(parents=True, exist_ok=True)
    solved = _load(EX5)
    table: dict[str, dict] = {}

    def answered(derivation, alpha) -> dict:
        nb = copy.deepcopy(solved)
        for cid, text in (("ex5-derivation", derivation), ("ex5-alpha-answer", alpha)):
            if text is None:
                nb["cells"].remove(_cell(nb, cid))
            else:
                _set(nb, cid, text)
        return nb

    def add(name, nb, integrity=None, derivation=DERIVATION, alpha=ALPHA):
        points = dict(EX5_FULL)
        if integrity:
            points[integrity[0]] = 0.0
        (corpus / name).write_bytes(_json(nb))
        table[name] = {"points": points, "integrity": integrity,
                       "answers": {"ex5-derivation": derivation, "ex5-alpha-answer": alpha}}

    add("ex5-correct.ipynb", answered(DERIVATION, ALPHA))
    answers = [(HOSTILE, ALPHA), (DERIVATION, None), (DERIVATION, "**Answer.**\n\nYOUR ANSWER HERE"),
               (DERIVATION, ALPHA)]
    for (name, (part, target, source)), (derivation, alpha) in zip(CHEATS.items(), answers):
        add(name, _set(answered(derivation, alpha), part, source), (part, target), derivation, alpha)
    return table


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "grading-corpus")
    table = build(target, target.parent / "grading-out", 9, cell_timeout=120, timeout=600)
    for name, e in table.items():
        print(f"{name:<40} {e.status:<8} {e.total}")
