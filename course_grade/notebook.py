"""Assignments and submissions: reading them, validating them, and building the notebook
that is run for a submission.

The run notebook holds the submission's code cells in the student's order, with every
check cell removed and the assignment's check cells put back where they belong (each one
replaced by a call to :func:`course_grade.kernel.emit`). Markdown, stored outputs
and execution counts of the submission are dropped: nothing stored in the file counts.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

#: Largest submission read, in bytes (a notebook with a few figures is well under 10 MB).
MAX_SUBMISSION_BYTES = 50 * 2**20

_BEGIN = "### BEGIN SOLUTION"


class AssignmentError(ValueError):
    """The assignment notebook cannot be used for grading (raised before any grading)."""


class InvalidSubmission(ValueError):
    """A submission that cannot be graded; the message says why, for the student."""


@dataclass(frozen=True)
class Part:
    """One graded part of the assignment.

    Attributes
    ----------
    part : str
        The part id (``"ex1-fit-ols"``).
    points : float
        Points for the part, from the check cell's ``metadata.course.points``.
    check_id : str
        Id of the assignment's check cell.
    names : tuple of str
        The names the check cell passes to ``checks.check`` after the part id.
    position : int
        Index of the check cell in the assignment.
    """

    part: str
    points: float
    check_id: str
    names: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class ManualPart:
    """A part graded by hand (a derivation, a written answer): ``role: manual``.

    Attributes
    ----------
    part : str
        The part id (``"ex5-derivation"``).
    points : float
        Points for the part, from the cell's ``metadata.course.points``.
    cell_id : str
        Id of the answer cell; the student's answer is the source of their cell with it.
    cell_type : str
        ``markdown`` or ``code``.
    question : str
        The source of the cell before the answer cell (the task), for the reviewer.
    model_answer : str
        The instructor's answer (the cell's solution region), for the reviewer.
    """

    part: str
    points: float
    cell_id: str
    cell_type: str
    question: str = ""
    model_answer: str = ""


@dataclass(frozen=True)
class Assignment:
    """An instructor notebook, as far as grading needs it.

    Attributes
    ----------
    path : Path
    sha256 : str
        Hash of the file's bytes (part of the key of cached results).
    cell_ids : tuple of str
        Ids of all cells, in order.
    parts : tuple of Part
        The graded parts in notebook order.
    manual : tuple of ManualPart
        The parts graded by hand, in notebook order.
    writes : dict of str to tuple of str
        For each part, the ``course_lib`` functions it asks the student to write
        (``metadata.course.writes`` of its cells): using them gives 0 for the part
        (:mod:`~course_grade.integrity`).
    """

    path: Path
    sha256: str
    cell_ids: tuple[str, ...]
    parts: tuple[Part, ...]
    manual: tuple[ManualPart, ...] = ()
    writes: dict = field(default_factory=dict)

    @property
    def max_total(self) -> float:
        """Points of every part, autograded and graded by hand."""
        return float(sum(p.points for p in self.parts) + sum(m.points for m in self.manual))

    @classmethod
    def load(cls, path: Path) -> Assignment:
        """Read and check an instructor notebook.

        Raises
        ------
        AssignmentError
            If the file is missing or unreadable, is not an instructor notebook (no
            solution regions, e.g. a student copy), has no check cells, or a check cell is
            not exactly ``checks.check("<part>", <names>)`` with ``points`` in its metadata.
        """
        path = Path(path)
        if not path.is_file():
            raise AssignmentError(f"assignment notebook not found: {path}")
        data = path.read_bytes()
        try:
            nb = json.loads(data.decode("utf-8"))
            cells = nb["cells"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
            raise AssignmentError(f"{path} is not a readable notebook: {err}") from None
        if nb.get("nbformat") != 4:
            raise AssignmentError(f"{path} is not an nbformat 4 notebook")
        ids = tuple(str(c.get("id", "")) for c in cells)
        if "" in ids or len(set(ids)) != len(ids):
            raise AssignmentError(f"{path}: every cell needs a unique id (nbformat 4.5)")
        parts, solutions, manual, writes = [], [], [], {}
        for position, cell in enumerate(cells):
            course = cell.get("metadata", {}).get("course", {})
            role = course.get("role")
            if role == "solution":
                solutions.append(_source(cell))
            elif role == "check":
                parts.append(_check_part(path, cell, course, position))
            elif role == "manual":
                question = _source(cells[position - 1]) if position else ""
                manual.append(_manual_part(path, cell, course, question))
            if "writes" in course:
                writes.setdefault(course.get("part"), set()).update(_writes(path, cell, course))
        if not parts:
            raise AssignmentError(
                f"{path} is not an instructor notebook: it has no check cells "
                "(metadata.course.role == 'check')"
            )
        if not solutions or not all(_BEGIN in s for s in solutions):
            raise AssignmentError(
                f"{path} is not an instructor notebook: its solution cells have no "
                f"'{_BEGIN}' region (is it a student copy from exercises/student/?)"
            )
        if len({p.part for p in parts}) != len(parts):
            raise AssignmentError(f"{path}: a part has more than one check cell")
        names = [p.part for p in parts] + [m.part for m in manual]
        if len(set(names)) != len(names):
            raise AssignmentError(f"{path}: a part has more than one manual cell, or is both "
                                  f"autograded and graded by hand: {sorted(names)}")
        unknown = set(writes) - {p.part for p in parts}
        if unknown:
            raise AssignmentError(f"{path}: metadata.course.writes is on cells of parts without a "
                                  f"check cell: {sorted(map(str, unknown))}")
        return cls(path, hashlib.sha256(data).hexdigest(), ids, tuple(parts), tuple(manual),
                   {part: tuple(sorted(w)) for part, w in writes.items()})

    def check_registry(self) -> None:
        """Cross-check each part's points with the check registry.

        Raises
        ------
        AssignmentError
            If a part has no registered check, or the points disagree.
        """
        from course_lib.checks import get_check

        for p in self.parts:
            try:
                registered = float(get_check(p.part).points)
            except ValueError as err:
                raise AssignmentError(f"{self.path}: {err}") from None
            if registered != p.points:
                raise AssignmentError(
                    f"{self.path}: part '{p.part}' is worth {p.points:g} points in the "
                    f"notebook's metadata but {registered:g} in the check registry"
                )

    def plan(self, nb: dict, seed: int | None = None) -> RunPlan:
        """Build the notebook to run for a (validated) submission.

        ``seed`` is the grading run's secret seed: the restored check cells collect on the
        hidden cases it draws (None: the public cases, as in the notebook).

        Every check cell of the submission (by id, or by ``metadata.course.role``), edited,
        duplicated or moved, is dropped. Each check cell of the assignment goes after the
        submission's copy of the last assignment cell that precedes it (normally the
        part's solution cell): where the student's copy of that check cell still follows
        it, in its place; otherwise after the cells the student added below the anchor.

        Raises
        ------
        InvalidSubmission
            If the submission contains none of the assignment's cells.
        """
        check_ids = {p.check_id: p.part for p in self.parts}
        known = set(self.cell_ids)
        # (cell id, cell type, source, part of a dropped check cell); a dropped check cell
        # stays as a marker of where the student kept it
        kept: list[tuple[str | None, str, str, str | None]] = []
        for cell in nb["cells"]:
            cid = cell.get("id") if isinstance(cell.get("id"), str) else None
            meta = cell.get("metadata")
            course = meta.get("course") if isinstance(meta, dict) else None
            is_check = isinstance(course, dict) and course.get("role") == "check"
            if cid in check_ids or is_check:
                kept.append((None, "marker", "", check_ids.get(cid) or course.get("part")))
            else:
                kept.append((cid, cell["cell_type"], _source(cell), None))
        last_seen = {cid: k for k, (cid, *_) in enumerate(kept) if cid is not None}
        if not known & set(last_seen):
            raise InvalidSubmission(
                "none of the assignment's cells is in this notebook (cells are matched by "
                "id): is it the right exercise, saved from the student copy?"
            )
        slots: dict[int, list[Part]] = {}
        for p in self.parts:
            anchor = next(
                (
                    last_seen[cid]
                    for cid in reversed(self.cell_ids[: p.position])
                    if cid not in check_ids and cid in last_seen
                ),
                -1,
            )
            k = anchor + 1
            while k < len(kept) and kept[k][3] != p.part and kept[k][0] not in known:
                k += 1
            slots.setdefault(k, []).append(p)
        cells: list[RunCell] = []
        for k in range(len(kept) + 1):
            for p in slots.get(k, []):
                cells.append(RunCell(p.check_id, _restored_source(p, seed), part=p.part))
            if k < len(kept) and kept[k][1] == "code" and kept[k][2].strip():
                cells.append(RunCell(kept[k][0], kept[k][2]))
        wanted = {m.cell_id for m in self.manual}
        answers: dict[str, list[str]] = {}
        for cid, _, source, _ in kept:
            if cid in wanted:
                answers.setdefault(cid, []).append(source)
        return RunPlan(cells, answers)


@dataclass(frozen=True)
class RunCell:
    """A code cell of the run notebook: its origin, its source, and its part if a check."""

    cell_id: str | None
    source: str
    part: str | None = None


@dataclass
class RunPlan:
    """The cells to run for one submission, in order, and its answers graded by hand.

    ``answers`` maps the id of each manual cell of the assignment to the sources of the
    submission's cells with that id (in order; absent if the student has none).
    """

    cells: list[RunCell] = field(default_factory=list)
    answers: dict[str, list[str]] = field(default_factory=dict)

    def notebook_json(self) -> str:
        """The run notebook as nbformat 4 JSON (what the sandboxed runner reads)."""
        return json.dumps(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {
                    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
                },
                "cells": [
                    {
                        "id": f"run-{i}",
                        "cell_type": "code",
                        "metadata": {"course_grade": {"check": c.part}} if c.part else {},
                        "source": c.source,
                        "outputs": [],
                        "execution_count": None,
                    }
                    for i, c in enumerate(self.cells)
                ],
            }
        )

    def check_index(self) -> dict[str, int]:
        """Run-notebook index of each part's check cell."""
        return {c.part: i for i, c in enumerate(self.cells) if c.part is not None}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _check_part(path: Path, cell: dict, course: dict, position: int) -> Part:
    part, cid = course.get("part"), cell.get("id")
    try:
        points = float(course["points"])
    except (KeyError, TypeError, ValueError):
        raise AssignmentError(f"{path}: check cell {cid!r} has no numeric metadata.course.points") from None
    try:
        call = ast.parse(_source(cell).strip(), mode="eval").body
        ok = (
            isinstance(call, ast.Call)
            and ast.unparse(call.func) == "checks.check"
            and not call.keywords
            and isinstance(call.args[0], ast.Constant)
            and call.args[0].value == part
            and all(isinstance(a, ast.Name) for a in call.args[1:])
        )
    except (SyntaxError, IndexError):
        ok = False
    if not ok or not isinstance(part, str):
        raise AssignmentError(
            f"{path}: check cell {cid!r} must be exactly checks.check(\"<part>\", <names>) "
            f"with the part of its metadata, got {_source(cell).strip()!r}"
        )
    names = tuple(a.id for a in call.args[1:])
    return Part(part, points, cid, names, position)


def _manual_part(path: Path, cell: dict, course: dict, question: str) -> ManualPart:
    part, cid = course.get("part"), cell.get("id")
    try:
        points = float(course["points"])
    except (KeyError, TypeError, ValueError):
        raise AssignmentError(f"{path}: manual cell {cid!r} has no numeric metadata.course.points") from None
    if not isinstance(part, str) or not part or points <= 0:
        raise AssignmentError(f"{path}: manual cell {cid!r} needs a part id and positive points, "
                              f"got part {part!r}, points {points:g}")
    source = _source(cell)
    start, end = source.find(_BEGIN), source.find("### END SOLUTION")
    model = source[start + len(_BEGIN):end].strip() if 0 <= start < end else ""
    return ManualPart(part, points, cid, cell.get("cell_type", "markdown"), question, model)


def _writes(path: Path, cell: dict, course: dict) -> set[str]:
    writes = course["writes"]
    if not isinstance(writes, list) or not all(
        isinstance(w, str) and w.startswith("course_lib.") and w.count(".") >= 2 for w in writes
    ):
        raise AssignmentError(
            f"{path}: cell {cell.get('id')!r}: metadata.course.writes must be a list of qualified "
            f"names such as 'course_lib.lnp.negloglik', got {writes!r}"
        )
    return set(writes)


def _restored_source(p: Part, seed: int | None = None) -> str:
    args = ", ".join([repr(p.part), "globals()", *map(repr, p.names),
                      *([] if seed is None else [f"seed={int(seed)}"])])
    return f'__import__("course_grade.kernel", fromlist=["emit"]).emit({args})'


def read_submission(data: bytes) -> dict:
    """Parse and validate a submission's bytes; the notebook as plain JSON data.

    Checks, in order: size, UTF-8, JSON, nbformat 4, a Python kernelspec, and the shape
    of every cell (a cell type and a text source). Cell ids are not required to be unique
    here: a duplicated cell must not make a notebook ungradable.

    Raises
    ------
    InvalidSubmission
        With a message for the student naming what is wrong.
    """
    if len(data) > MAX_SUBMISSION_BYTES:
        raise InvalidSubmission(
            f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_SUBMISSION_BYTES // 2**20} MB"
        )
    if not data.strip():
        raise InvalidSubmission("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidSubmission(
            f"the file is not UTF-8 text (byte {err.start}): save the notebook from Jupyter again"
        ) from None
    try:
        nb = json.loads(text)
    except ValueError as err:
        raise InvalidSubmission(f"the file is not valid JSON ({err}): it may be truncated or corrupted") from None
    if not isinstance(nb, dict) or "cells" not in nb and "worksheets" not in nb:
        raise InvalidSubmission("the file is JSON but not a Jupyter notebook")
    version = nb.get("nbformat")
    if version != 4:
        raise InvalidSubmission(
            f"the notebook is in nbformat {version!r}; only nbformat 4 is graded: "
            "open it in a current Jupyter and save it again"
        )
    meta = nb.get("metadata")
    spec = meta.get("kernelspec") if isinstance(meta, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidSubmission(
            "the notebook has no kernelspec in its metadata: open it in Jupyter, choose the "
            "Python 3 kernel and save it again"
        )
    info = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    language = spec.get("language") or info.get("name")
    if (language or ("python" if "python" in spec["name"].lower() else "")).lower() != "python":
        raise InvalidSubmission(f"the notebook's kernel is {spec['name']!r}, not a Python kernel")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise InvalidSubmission("the notebook's 'cells' is not a list")
    for k, cell in enumerate(cells):
        source = cell.get("source") if isinstance(cell, dict) else None
        if (
            not isinstance(cell, dict)
            or cell.get("cell_type") not in ("code", "markdown", "raw")
            or not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source)))
        ):
            raise InvalidSubmission(f"cell {k + 1} of the notebook is malformed")
    return nb
