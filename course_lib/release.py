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

Run ``python -m course_lib.release`` to regenerate every student copy, or
``python -m course_lib.release --check`` to fail when a committed copy has drifted.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<which>BEGIN|END) SOLUTION[ \t]*$")

__all__ = ["strip_solutions", "make_student_notebook", "points_table", "release", "main"]


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


def release(source: Path, out_dir: Path, check_only: bool = False) -> bool:
    """Write (or, with ``check_only``, compare) the student copy of one notebook.

    Returns
    -------
    bool
        True when the student copy on disk is (now) up to date.
    """
    nb = nbformat.read(source, as_version=4)
    nbformat.validate(nb)
    text = _serialise(make_student_notebook(nb))
    target = out_dir / source.name
    if check_only:
        return target.exists() and target.read_text(encoding="utf-8") == text
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


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
    args = parser.parse_args(argv)
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
    if stale:
        print(
            f"stale student copies: {', '.join(stale)}; run `python -m course_lib.release`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
