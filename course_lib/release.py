"""Make the student copies of the exercise notebooks from the instructor notebooks.

An instructor notebook (``exercises/NN-name.ipynb``) marks each solution between two
marker lines::

    ### BEGIN SOLUTION
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    ### END SOLUTION

The student copy (``exercises/student/NN-name.ipynb``) replaces each marked region by a
stub at the same indentation,
``raise NotImplementedError("ex1-fit-ols: replace this line with your solution")``,
and clears every output and execution count. Graded cells keep their ids and their
``metadata.course`` record (``part``, ``role``, ``points``), which the checks and the
grader match on.

Every student copy opens with an "Open in Colab" badge and a cell that installs
``course_lib`` in Colab only (:func:`add_colab_cells`); ``chapters/NN-name.ipynb``, the
chapters as notebooks for Colab, are made from the MyST chapters (:func:`release_chapters`).

Run ``python -m course_lib.release`` to regenerate every student copy and chapter notebook, or
``python -m course_lib.release --check`` to fail when a committed copy has drifted.

``python -m course_lib.release --student-tree DIR [--repository OWNER/NAME]`` writes a
student-only copy of the whole course into ``DIR``, to publish as the public repository a
class launches in Binder (:func:`student_tree`): the book (chapters, pages, data, Binder
files) and the student notebooks, but no instructor notebook, no tests, no grader, and a
``course_lib.checks`` without the checks' reference computations and mistake recognisers
(the reference code of a check *is* a solution). In that copy a check cell of a part whose
check declares ``public="stored"`` runs the answer on the part's public cases, stored here
at release time with their expected outputs and the outputs of the declared mistakes
(:func:`public_cases`), and prints ✔ or ✘ with the hint; for the other parts it says
whether the answer is written (no stub left) and that it is judged when handed in. The
grader judges every part on hidden cases of its own, so storing the public ones gives
nothing away.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<which>BEGIN|END) SOLUTION[ \t]*$")

__all__ = ["strip_solutions", "make_student_notebook", "points_table", "release", "student_tree", "main",
           "course_repository", "add_colab_cells", "chapter_notebook", "release_chapters"]


def strip_solutions(source: str, part: str, cell_type: str = "code") -> str:
    """Replace each marked solution region of a cell's source by a stub.

    Parameters
    ----------
    source : str
        The cell's source.
    part : str
        The part id named in the stub's message.
    cell_type : {"code", "markdown"}
        Code regions become ``raise NotImplementedError(...)``; Markdown regions become
        the line ``YOUR ANSWER HERE``.

    Returns
    -------
    str
        The source without the solution.

    Raises
    ------
    ValueError
        If the markers are unbalanced or nested.
    """
    out: list[str] = []
    inside = False
    for lineno, line in enumerate(source.splitlines(), start=1):
        marker = _MARKER.match(line)
        if marker is None:
            if not inside:
                out.append(line)
            continue
        if marker["which"] == "BEGIN":
            if inside:
                raise ValueError(f"part {part!r}: nested '{BEGIN}' at line {lineno}")
            inside = True
            indent = marker["indent"]
            if cell_type == "code":
                out.append(
                    f'{indent}raise NotImplementedError("{part}: replace this line with your solution")'
                )
            else:
                out.append(f"{indent}YOUR ANSWER HERE")
        else:
            if not inside:
                raise ValueError(f"part {part!r}: '{END}' without '{BEGIN}' at line {lineno}")
            inside = False
    if inside:
        raise ValueError(f"part {part!r}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def make_student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student copy of an instructor notebook: solutions stubbed, outputs cleared.

    Raises
    ------
    ValueError
        If a cell has no id, ids repeat, markers are unbalanced, or a solution marker sits in
        a cell without a ``course`` part.
    """
    student = copy.deepcopy(nb)
    seen: set[str] = set()
    for cell in student.cells:
        cell_id = cell.get("id")
        if not cell_id:
            raise ValueError("every cell needs a stable id (nbformat 4.5); one has none")
        if cell_id in seen:
            raise ValueError(f"cell id {cell_id!r} appears more than once")
        seen.add(cell_id)
        has_marker = BEGIN in cell.source or END in cell.source
        part = cell.metadata.get("course", {}).get("part")
        if has_marker and not part:
            raise ValueError(f"cell {cell_id!r} has a solution region but no metadata.course.part")
        if has_marker:
            cell.source = strip_solutions(cell.source, part, cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    return student


def points_table(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """The graded parts of a notebook and their points, in notebook order."""
    rows = []
    for cell in nb.cells:
        course = cell.metadata.get("course", {})
        if course.get("role") == "check":
            rows.append((course["part"], float(course["points"])))
    return rows


def _serialise(nb: nbformat.NotebookNode) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------------------
# Colab: an "Open in Colab" badge and an install cell on every student notebook, and the
# chapters as notebooks Colab can open (it opens .ipynb only, not MyST Markdown)

#: Ids of the cells the release adds for Colab (the grader keeps them as student cells).
COLAB_BADGE_ID = "colab-badge"
COLAB_INSTALL_ID = "colab-install"
_COLAB_BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                "(https://colab.research.google.com/github/{repository}/blob/{branch}/{path})")
_COLAB_INSTALL = """\
# Google Colab: install the course's package (course_lib, with its data) from the course's
# repository. Elsewhere (Binder, your own JupyterLab, the grader) this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "course_lib @ git+https://github.com/{repository}@{branch}"], check=True)"""


def course_repository(root: Path) -> tuple[str, str]:
    """The GitHub repository (``owner/name``) and branch named by the book's ``_config.yml``.

    Raises
    ------
    ValueError
        If ``repository.url`` is not a ``https://github.com/owner/name`` address.
    """
    config = (Path(root) / "_config.yml").read_text(encoding="utf-8")
    url = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config, re.M)
    branch = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+branch:\s*(\S+)", config, re.M)
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url.group(1) if url else "")
    if match is None:
        raise ValueError(f"_config.yml: repository.url must be https://github.com/OWNER/NAME, "
                         f"got {url.group(1) if url else 'nothing'}")
    return match.group(1), branch.group(1) if branch else "main"


def add_colab_cells(nb: nbformat.NotebookNode, path: str, repository: str, branch: str,
                    badge: bool = True) -> nbformat.NotebookNode:
    """Put an "Open in Colab" badge first and a Colab-only install cell before the first code cell.

    Parameters
    ----------
    nb : NotebookNode
        The notebook (changed in place, and returned).
    path : str
        The notebook's path in the repository, e.g. ``exercises/student/01-regression.ipynb``.
    repository, branch : str
        ``owner/name`` on GitHub and the branch (see :func:`course_repository`).
    badge : bool
        False for the install cell only (a chapter's page has the site's Colab button).
    """
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, nbformat.v4.new_code_cell(
        _COLAB_INSTALL.format(repository=repository, branch=branch), id=COLAB_INSTALL_ID))
    if badge:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(
            _COLAB_BADGE.format(repository=repository, branch=branch, path=path), id=COLAB_BADGE_ID))
    return nb


def chapter_notebook(chapter: Path, root: Path) -> str:
    """The ``.ipynb`` that Colab (and the site's Colab button) opens for a MyST chapter:
    its cells without outputs, a Colab install cell before the first code cell, stable cell ids.

    The book builds from the ``.md`` (``_config.yml`` excludes ``chapters/*.ipynb``);
    sphinx-book-theme points a page's launch buttons at a same-named ``.ipynb`` when one exists.
    """
    import jupytext  # imported here: an author's tool, not a student's

    nb = jupytext.read(chapter)
    nb.metadata = nbformat.NotebookNode(kernelspec=nb.metadata["kernelspec"])
    for i, cell in enumerate(nb.cells):
        cell.id = f"{chapter.stem[:2]}-cell-{i}"
    add_colab_cells(nb, chapter.relative_to(root).with_suffix(".ipynb").as_posix(),
                    *course_repository(root), badge=False)
    nbformat.validate(nb)
    return _serialise(nb)


def _student_with_colab(nb: nbformat.NotebookNode, source: Path) -> nbformat.NotebookNode:
    """The student copy of the instructor notebook ``source`` (``exercises/NN-name.ipynb``),
    with the Colab cells pointing at its committed copy in ``exercises/student/``."""
    root = Path(source).resolve().parents[1]
    return add_colab_cells(make_student_notebook(nb), f"exercises/student/{Path(source).name}",
                           *course_repository(root))


def release_chapters(root: Path, check_only: bool = False) -> list[Path]:
    """Write (or, with ``check_only``, compare) ``chapters/NN-name.ipynb`` for every chapter.

    Returns
    -------
    list of Path
        The chapters whose notebook was stale (``check_only``) or was (re)written.
    """
    changed = []
    for chapter in sorted((Path(root) / "chapters").glob("*.md")):
        text, target = chapter_notebook(chapter, Path(root)), chapter.with_suffix(".ipynb")
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        changed.append(chapter)
        if not check_only:
            target.write_text(text, encoding="utf-8")
    return changed


def release(source: Path, out_dir: Path, check_only: bool = False) -> bool:
    """Write (or, with ``check_only``, compare) the student copy of one notebook.

    Returns
    -------
    bool
        True when the student copy on disk is (now) up to date.
    """
    nb = nbformat.read(source, as_version=4)
    nbformat.validate(nb)
    text = _serialise(_student_with_colab(nb, source))
    target = out_dir / source.name
    if check_only:
        return target.exists() and target.read_text(encoding="utf-8") == text
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


# ----------------------------------------------------------------------------------------
# The student tree: a copy of the course to publish, without solutions or references

#: The repository the course's own links name (Binder, download, the book's buttons).
UPSTREAM = "mixed-models-neuro/course"
#: Files and folders copied as they are (when they exist).
TREE_FILES = ["references.bib", "requirements.txt", ".gitignore"]
TREE_FOLDERS = ["chapters", "_ext", "binder"]
#: Book pages only instructors need: left out of the tree and its table of contents.
INSTRUCTOR_PAGES = ["instructors"]
#: course_lib's instructor-side code, left out of the tree (checks/ is replaced).
PRIVATE_MODULES = ["checks", "grading", "release.py"]
#: Build output and caches, never copied.
_SKIPPED = {"__pycache__", ".ipynb_checkpoints", "_build", ".jupyter_cache"}

_STUDENT_CHECKS = '''"""Exercise checks, student edition.

This copy of the course holds no reference implementation: the code that computes the
right answers and recognises the mistakes stays with your instructor, whose grader judges
the notebook you hand in on inputs of its own. What it holds instead, for the parts that
declare it, are the *public cases*: inputs, the outputs a right answer gives on them, and
the outputs of the common mistakes with their hints, all stored when the course was
released. A check cell runs your function on those inputs and prints ✔ or ✘ at once::

    ✔ ex1-fit-ols  1/1  fit_ols agrees with statsmodels' OLS on 4 data sets the check drew.

For the other parts it says whether your answer is written (judged when handed in)::

    ✎ ex2-lrt  ?/1  lrt_by_hand is written: it is judged when you hand in the notebook.
"""

from __future__ import annotations

import copy
import json
import signal
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PARTS", "Verdict", "run", "check"]

#: Every graded part: its points and the names its check cell passes.
PARTS = @@PARTS@@

#: The public cases of the parts that store them (made by course_lib.release).
PUBLIC = json.loads(@@PUBLIC@@)

#: Seconds one public case may run before the check gives up on it.
CASE_SECONDS = 30.0


@dataclass(frozen=True)
class Verdict:
    """``passed``, ``failed``, ``written`` (judged when handed in), ``not-implemented``, ``error``."""

    part: str
    status: str
    max_points: float
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        mark = {"passed": "✔", "written": "✎"}.get(self.status, "✘")
        points = {"passed": f"{self.max_points:g}", "written": "?"}.get(self.status, "0")
        text = f"{mark} {self.part}  {points}/{self.max_points:g}  {self.message}"
        return text + (f"\\n  Hint: {self.hint}" if self.hint else "")

    __repr__ = __str__


def _is_stub(code, part: str) -> bool:
    stub = f"{part}: replace this line with your solution"
    for const in code.co_consts:
        if isinstance(const, str) and stub in const:
            return True
        if hasattr(const, "co_consts") and _is_stub(const, part):
            return True
    return False


def _decode(x):
    """An input of a public case, rebuilt from its stored form."""
    if not isinstance(x, dict):
        return x
    if "nd" in x:
        return np.array(x["nd"], dtype=x["dtype"])
    if "seq" in x:
        return [_decode(v) for v in x["seq"]]
    if "map" in x:
        return {k: _decode(v) for k, v in x["map"].items()}
    frame = pd.DataFrame(x["df"], index=x["index"])
    for col, dtype in x["dtypes"].items():
        cats = x["categories"].get(col)
        frame[col] = pd.Categorical(frame[col], categories=cats) if cats is not None else frame[col].astype(dtype)
    return frame


def _returned(value) -> dict:
    """What an answer returned, described as the stored outputs are."""
    if isinstance(value, str):
        return {"label": value}
    if isinstance(value, pd.Series):
        try:
            return {"series": [str(i) for i in value.index], "values": value.to_numpy(dtype=float).tolist()}
        except (TypeError, ValueError):
            return {"other": "Series of non-numbers"}
    if value is None or isinstance(value, (pd.DataFrame, dict, bytes)):
        return {"other": "None (did you forget to return?)" if value is None else f"a {type(value).__name__}"}
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return {"other": f"a {type(value).__name__}"}
    return {"array": arr.ravel().tolist(), "shape": list(arr.shape)}


def _show(values) -> str:
    items = [f"{v:.4g}" for v in values[:6]]
    return "[" + ", ".join(items) + (", …" if len(values) > 6 else "") + "]"


def _difference(got: dict, want: dict, what: str, rtol: float, atol: float) -> str:
    """Why ``got`` is not ``want`` ('' when it is), cheapest test first."""
    if "label" in want:
        if "label" not in got:
            return f"type: {what} should be the string {want['label']!r}, got {got.get('other', 'a number')}"
        return "" if got["label"] == want["label"] else f"values: {what} should be {want['label']!r}, got {got['label']!r}"
    kind = "a pandas Series" if "series" in want else "an array of numbers"
    if "other" in got or "label" in got or ("series" in want) != ("series" in got):
        came = got.get("other") or ("a string" if "label" in got else "a Series" if "series" in got else "an array")
        return f"type: {what} should be {kind}, got {came}"
    values = np.asarray(got["values"] if "series" in got else got["array"], dtype=float)
    target = np.asarray(want["values"] if "series" in want else want["array"], dtype=float)
    if "series" in want:
        if sorted(got["series"]) != sorted(want["series"]):
            return (f"index: {what} should have one value for each of the labels {sorted(want['series'])[:6]}, "
                    f"got {len(got['series'])} values labelled {sorted(got['series'])[:6]}")
        order = {k: i for i, k in enumerate(got["series"])}
        values = values[[order[k] for k in want["series"]]]
    elif list(got["shape"]) != list(want["shape"]):
        return f"shape: {what} should have shape {tuple(want['shape'])}, got {tuple(got['shape'])}"
    if not np.all(np.isfinite(values)):
        return f"values: {what} contains NaN or infinite values: {_show(values)}"
    if not np.allclose(values, target, rtol=rtol, atol=atol):
        return f"values: {what} should be {_show(target)}, got {_show(values)}"
    return ""


def _on_alarm(signum, frame):
    raise TimeoutError


def _call(answer, args):
    """``answer(*args)``, stopped after CASE_SECONDS where a timer signal is available."""
    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        return answer(*args)
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _judge_public(part: str, answer, info: dict) -> Verdict:
    spec = PUBLIC[part]
    for case in spec["cases"]:
        what = f"{spec['function']}(…) on {case['label']}"
        try:
            got = _returned(_call(answer, [_decode(copy.deepcopy(a)) for a in case["args"]]))
        except NotImplementedError:
            return Verdict(part, "not-implemented", info["points"],
                           f"{spec['function']} still raises NotImplementedError: replace the stub with your solution.")
        except TimeoutError:
            return Verdict(part, "error", info["points"],
                           f"{spec['function']} ran longer than {CASE_SECONDS:g} s on {case['label']}")
        except Exception as err:  # the answer may raise anything: say what, never a traceback
            return Verdict(part, "error", info["points"],
                           f"{spec['function']} raised {type(err).__name__}: {str(err)[:300]} on {case['label']}")
        why = _difference(got, case["expected"], what, spec["rtol"], spec["atol"])
        if why and any(not _difference(got, v, what, spec["rtol"], spec["atol"]) for v in case["valid"]):
            continue  # another valid answer (another method or convention)
        if why:
            hint = next((h for wrong, h in case["mistakes"]
                         if not _difference(got, wrong, what, 1e-6, 1e-8)), "")
            return Verdict(part, "failed", info["points"], why, hint)
    return Verdict(part, "passed", info["points"], spec["success"])


def run(part: str, *answers) -> Verdict:
    """Check the answer to one part on its public cases (or whether it is written)."""
    if part not in PARTS:
        raise ValueError(f"no check for part {part!r}; known parts are {', '.join(sorted(PARTS))}")
    info = PARTS[part]
    names = info["names"] or ["your answer"]
    for name, answer in zip(names, answers):
        if not callable(answer):
            return Verdict(part, "error", info["points"],
                           f"{name} should be a function, got {type(answer).__name__}")
        code = getattr(answer, "__code__", None)
        if code is not None and _is_stub(code, part):
            return Verdict(part, "not-implemented", info["points"],
                           f"{name} still raises NotImplementedError: replace the stub with your solution.")
    if part in PUBLIC and len(answers) == 1:
        return _judge_public(part, answers[0], info)
    return Verdict(part, "written", info["points"],
                   f"{', '.join(names)} is written: it is judged when you hand in the notebook.")


def check(part: str, *answers) -> None:
    """Check the answer to one part and print the verdict (a check cell)."""
    print(run(part, *answers))
'''

_STUDENT_README = """# {title}

The student copy of the course: the chapters, the exercise notebooks, the data and the
`course_lib` package they import.

- **Read** the book: build it with `jupyter-book build .` (after
  `pip install -r requirements.txt`), or open a chapter in `chapters/` as a notebook.
- **Work** on the exercises in `exercises/`: open them in Binder (the links are on the
  exercises page) or locally in JupyterLab. Fill in each function where it says
  `raise NotImplementedError(...)`; the check cell below it runs it on a few inputs and
  prints ✔ or ✘ with a hint (for some parts it says only that the answer is written). Written answers go in the cells that say `YOUR ANSWER HERE`.
- **Hand in** the `.ipynb` file itself, saved from Jupyter. Your instructor's grader runs it
  from scratch and sends you a feedback page for every part.

Use your own code for what an exercise asks you to write: a part whose answer uses the
`course_lib` function that does that job gets 0 points, with a message saying why.

Code: BSD-3-Clause. The data sets keep their own licences, listed in
[course_lib/data/README.md](course_lib/data/README.md).
"""

_EXERCISES_INTRO = """# Exercises

Each chapter has an exercise notebook. Open it in Binder, fill in each function where it says
`raise NotImplementedError(...)`, and run the check cell below it. The check runs your
function on a few stored inputs and prints ✔ or ✘ at once, with a hint for the common
mistakes (for some parts it says only that your answer is written). Your instructor's
grader judges every part again, on inputs of its own, when you hand in the notebook, and
sends you a feedback page with a verdict for every part:

```text
✔ ex1-fit-ols  1/1  fit_ols agrees with statsmodels' OLS on 4 data sets the check drew.
✘ ex1-predict  0/0.5  values: predict_reaction(…) on … should be [...], got [...]
  Hint: you left out the intercept: the prediction at Days = 0 is beta[0] ms, not 0.
```

Use your own code for what a part asks you to write: a part whose answer uses the
`course_lib` function that does that job gets 0 points, with a message saying why.

"""


def _student_checks(notebooks: list[Path]) -> str:
    parts = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            course = cell.metadata.get("course", {})
            if course.get("role") == "check":
                names = re.findall(r",\s*(\w+)", cell.source)
                parts[course["part"]] = {"points": float(course["points"]), "names": names}
    public = json.dumps(public_cases(parts), ensure_ascii=False, separators=(",", ":"))
    return (_STUDENT_CHECKS.replace("@@PARTS@@", json.dumps(parts, indent=4, ensure_ascii=False))
            .replace("@@PUBLIC@@", repr(public)))


# The public cases a student copy stores: inputs, expected outputs and the outputs of the
# declared mistakes, computed here, in the instructor's process, with the checks' code.


def _encode(x):
    """An input of a case as JSON data (what the student checks' ``_decode`` rebuilds)."""
    import numpy as np
    import pandas as pd

    if isinstance(x, np.ndarray):
        return {"nd": x.tolist(), "dtype": x.dtype.str}
    if isinstance(x, pd.DataFrame):
        cats = {str(c): x[c].cat.categories.tolist() for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)}
        return {"df": {str(c): x[c].tolist() for c in x.columns}, "index": x.index.tolist(),
                "dtypes": {str(c): str(x[c].dtype) for c in x.columns}, "categories": cats}
    if isinstance(x, dict):
        return {"map": {str(k): _encode(v) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"seq": [_encode(v) for v in x]}
    return x.item() if isinstance(x, np.generic) else x


def _output(value) -> dict:
    """A reference or mistaken output, described as the student checks' ``_returned`` does."""
    import numpy as np
    import pandas as pd

    if isinstance(value, str):
        return {"label": value}
    if isinstance(value, pd.Series):
        return {"series": [str(i) for i in value.index], "values": value.to_numpy(dtype=float).tolist()}
    arr = np.asarray(value, dtype=float)
    return {"array": arr.ravel().tolist(), "shape": list(arr.shape)}


def public_cases(parts) -> dict:
    """For each part whose check declares ``public="stored"``: its public cases, with the
    expected output, the outputs of its other valid answers, and the outputs of its
    declared mistakes (and their hints)."""
    from course_lib import checks

    stored = {}
    for part in parts:
        chk = checks.get_check(part)
        if getattr(chk, "public", "written") != "stored":
            continue
        cases = []
        for case in chk.cases():
            mistakes = []
            for wrong, hint in chk.mistakes:
                try:
                    mistakes.append([_output(wrong(*copy.deepcopy(case.args))), hint])
                except Exception:  # a mistake that does not apply to this case
                    continue
            cases.append({"label": case.label, "args": [_encode(a) for a in case.args],
                          "expected": _output(chk.reference(*copy.deepcopy(case.args))),
                          "valid": [_output(v(*copy.deepcopy(case.args))) for v in chk.valid],
                          "mistakes": mistakes})
        stored[part] = {"function": chk.function, "rtol": chk.tolerance[0], "atol": chk.tolerance[1],
                        "success": chk.success.format(function=chk.function, n=len(cases)),
                        "cases": cases}
    return stored


def _retarget(text: str, repository: str | None) -> str:
    """The course's links, pointed at the published tree (``exercises/`` holds the students'
    notebooks; ``repository`` replaces the upstream repository)."""
    text = text.replace("exercises/student/", "exercises/")
    return text.replace(UPSTREAM, repository) if repository else text


def student_tree(root: Path, dest: Path, repository: str | None = None) -> list[Path]:
    """Write a student-only copy of the course into ``dest``.

    What it holds: ``_config.yml``, ``_toc.yml`` and the book's pages without the
    instructors' page; ``chapters/`` and ``_ext/``; the student notebooks, made afresh
    from the instructor notebooks, as ``exercises/``; ``course_lib`` with every topic
    module and its data, but without ``grading``, ``release`` and the checks' modules
    (replaced by a ``checks`` that judges the public cases stored for it, or says whether
    an answer is written); the Binder
    files; ``pyproject.toml`` without the instructors' commands; a student README.

    The topic modules stay because the chapters use them, and some implement what an
    exercise asks for (``course_lib.lnp.negloglik``); the grader gives 0 to a part whose
    answer uses them (:mod:`course_lib.grading.integrity`).

    Parameters
    ----------
    root : Path
        The course repository (with ``_toc.yml``, ``chapters/``, ``exercises/``).
    dest : Path
        A new or empty folder.
    repository : str or None
        ``owner/name`` of the repository the tree will be published as: the Binder and
        download links and the book's repository button are pointed at it.

    Returns
    -------
    list of Path
        Every file written.

    Raises
    ------
    ValueError
        If ``dest`` is not an empty folder, is inside the course, ``repository`` is not
        ``owner/name``, or an instructor notebook has unbalanced solution markers.
    """
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"--student-tree {dest} is not an empty folder; choose a new one")
    if dest == root or root in dest.parents:
        raise ValueError(f"--student-tree {dest} is inside the course {root}; choose a folder outside it")
    if repository is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"--repository must be OWNER/NAME as on GitHub, got {repository!r}")
    instructor = sorted((root / "exercises").glob("*.ipynb"))
    if not instructor:
        raise ValueError(f"no instructor notebooks in {root / 'exercises'}")
    students = {}
    for path in instructor:  # first, so that a bad notebook leaves nothing half-written
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        students[path.name] = _retarget(_serialise(_student_with_colab(nb, path)), repository)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)

    def copy_file(src: Path, rel: str) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        written.append(target)

    def published(src: Path, rel: Path) -> bool:  # a source file, not a build or cache
        return src.is_file() and not _SKIPPED & set(rel.parts) and src.suffix != ".pyc"

    for name in TREE_FILES:
        if (root / name).is_file():
            copy_file(root / name, name)
    for folder in TREE_FOLDERS:
        for src in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []:
            if published(src, src.relative_to(root)):
                copy_file(src, src.relative_to(root).as_posix())
    for chapter in sorted((dest / "chapters").glob("*.ipynb")):  # their Colab install cell
        chapter.write_text(_retarget(chapter.read_text(encoding="utf-8"), repository), encoding="utf-8")
    # the book: its configuration, table of contents and pages, without the instructors'
    write("_config.yml", _retarget((root / "_config.yml").read_text(encoding="utf-8"), repository))
    toc = [line for line in (root / "_toc.yml").read_text(encoding="utf-8").splitlines(keepends=True)
           if not any(re.fullmatch(rf"\s*- file: {page}\s*", line) for page in INSTRUCTOR_PAGES)]
    write("_toc.yml", "".join(toc))
    for page in re.findall(r"^(?:root|\s*- file):\s*(\S+)\s*$", "".join(toc), flags=re.M):
        if page.startswith("chapters/"):
            continue
        text = _retarget((root / f"{page}.md").read_text(encoding="utf-8"), repository)
        if page == "exercises":
            _, sep, table = text.partition("| exercise |")
            if not sep:
                raise ValueError("exercises.md has no table starting '| exercise |' to keep")
            text = _EXERCISES_INTRO + sep + table
        write(f"{page}.md", text)
    title = re.search(r"^title:\s*(.+)$", (root / "_config.yml").read_text(encoding="utf-8"), re.M)
    write("README.md", _STUDENT_README.format(title=title.group(1).strip() if title else "The course"))
    # pyproject: the package, without the instructors' commands and the test settings
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    pyproject = re.sub(r"^\[(?:project\.scripts|tool\.pytest\.ini_options)\]\n(?:(?!\[).*\n?)*", "",
                       pyproject, flags=re.M)
    write("pyproject.toml", pyproject.rstrip() + "\n")
    # course_lib: every topic module and the data; checks without references; no grader
    package = root / "course_lib"
    for src in sorted(package.rglob("*")):
        rel = src.relative_to(package)
        if rel.parts[0] not in PRIVATE_MODULES and published(src, rel):
            copy_file(src, f"course_lib/{rel.as_posix()}")
    init = (package / "__init__.py").read_text(encoding="utf-8")
    write("course_lib/__init__.py", "".join(
        line for line in init.splitlines(keepends=True) if not re.match(r"(release|grading)\s{2,}", line)))
    write("course_lib/checks/__init__.py", _student_checks(instructor))
    for name, text in students.items():
        write(f"exercises/{name}", text)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.release",
        description="Generate the student copies of the exercise notebooks.",
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="instructor notebooks (default: exercises/*.ipynb)"
    )
    parser.add_argument("--out", type=Path, default=Path("exercises/student"))
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if a student copy is stale"
    )
    parser.add_argument("--student-tree", type=Path, metavar="DIR",
                        help="write a student-only copy of the course into DIR (a new folder), to "
                             "publish as the repository a class launches in Binder")
    parser.add_argument("--repository", metavar="OWNER/NAME",
                        help="with --student-tree: the GitHub repository the tree is published as "
                             "(its Binder and download links point there)")
    args = parser.parse_args(argv)
    if args.student_tree is not None:
        try:
            files = student_tree(Path.cwd(), args.student_tree, args.repository)
        except (ValueError, OSError) as err:
            parser.error(str(err))
        print(f"student tree: {len(files)} files in {args.student_tree}")
        if args.repository is None:
            print(f"note: its links still name {UPSTREAM}; pass --repository OWNER/NAME to point "
                  "them at the repository you publish it as", file=sys.stderr)
        return 0
    notebooks = args.notebooks or sorted(Path("exercises").glob("*.ipynb"))
    if not notebooks:
        parser.error("no instructor notebooks found in exercises/")
    stale = []
    for path in notebooks:
        ok = release(path, args.out, check_only=args.check)
        nb = nbformat.read(path, as_version=4)
        parts = points_table(nb)
        total = sum(p for _, p in parts)
        state = ("up to date" if ok else "STALE") if args.check else "written"
        print(f"{path.name}: {state}, {len(parts)} graded parts, {total:g} points")
        for part, points in parts:
            print(f"  {part:<32} {points:g}")
        if not ok:
            stale.append(path.name)
    if not args.notebooks and Path("chapters").is_dir():  # the chapters' notebooks for Colab
        chapters = release_chapters(Path.cwd(), check_only=args.check)
        print(f"chapters/*.ipynb: {len(chapters)} {'STALE' if args.check else 'written'}")
        stale += [f"chapters/{c.with_suffix('.ipynb').name}" for c in chapters] if args.check else []
    if stale:
        print(
            f"stale copies: {', '.join(stale)}; run `python -m course_lib.release`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
