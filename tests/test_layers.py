"""The code's layers: no import circle anywhere in ``course_lib`` and ``course_grade``, and the
layering statistics modules < ``course_lib.checks`` < ``course_grade``.

Every module's source is read with :mod:`ast` (nothing is imported), and every import in it,
at module level or inside a function, is an edge of the import graph: ``import a.b`` and
``from a import b`` point at the module ``a.b`` when it exists, else at ``a``; so do
``__import__("a.b")`` and ``importlib.import_module("a.b")`` with a constant name. The implicit
import of a module's parent packages is not an edge (Python runs a package's
``__init__`` before its submodules whatever the order, so it cannot make a circle that
fails). Cycles are found by :mod:`graphlib` (the standard library's topological sort).

The layers:

* statistics modules: every ``course_lib`` module but ``checks``, ``release`` and the
  ``grading`` stub (which only says where the grader went);
* ``course_lib.checks``: may import statistics modules, nothing above;
* ``course_lib.release``: an author's tool; may import ``checks``;
* ``course_grade``: may import all of ``course_lib``; nothing in ``course_lib`` imports it.

Each module's third-party imports come from the dependencies a student installs, or, for
``course_grade`` only, from the ``grade`` extra (``pyproject.toml``).
"""

from __future__ import annotations

import ast
import graphlib
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("course_lib", "course_grade")


def module_files() -> dict[str, Path]:
    """Every module of the two packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imported_names(path: Path, module: str) -> set[str]:
    """The dotted names a module imports (absolute; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parts = parts if is_package else parts[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # each name: the submodule if it is one, else (resolved by import_graph) the module
            names.update(base if a.name == "*" else f"{base}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "id", None) == "__import__"
                   or getattr(node.func, "attr", None) == "import_module")):
            names.add(node.args[0].value)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules of the two packages it imports}``."""
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in imported_names(path, name):
            parts = imported.split(".")
            target = next((".".join(parts[:k]) for k in range(len(parts), 0, -1)
                           if ".".join(parts[:k]) in modules), None)
            if target is not None and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph (its modules in order, the first repeated at the end), or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


GRAPH = import_graph(module_files())


def layer(module: str) -> str:
    if module.startswith("course_grade"):
        return "course_grade"
    if module.startswith("course_lib.checks"):
        return "checks"
    if module == "course_lib.release":
        return "release"
    if module.startswith("course_lib.grading"):
        return "stub"
    return "statistics"


def test_the_cycle_finder_finds_a_circle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) is not None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    # the old circle of the grader, as the graph of its two modules was
    assert set(find_cycle({"batch": {"distributed"}, "distributed": {"batch"}})) == {"batch", "distributed"}


def test_the_graph_sees_every_module_and_the_imports_that_matter():
    assert {"course_lib.mixed.fit", "course_lib.checks.ex05", "course_grade.batch", "course_grade.cli"} <= set(GRAPH)
    assert "course_lib.checks" in GRAPH["course_grade.notebook"]  # the grader uses the checks
    assert "course_grade.batch" in GRAPH["course_grade.distributed"]
    assert {"course_grade.batch", "course_grade.distributed"} <= GRAPH["course_grade.cli"]


def test_no_module_imports_in_a_circle():
    cycle = find_cycle({m: set(targets) for m, targets in GRAPH.items()})
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"
    assert "course_grade.distributed" not in GRAPH["course_grade.batch"]
    assert find_cycle({m: t for m, t in GRAPH.items() if m.startswith("course_grade")}) is None


@pytest.mark.parametrize("lower,forbidden", [
    ("statistics", {"checks", "release", "course_grade", "stub"}),
    ("checks", {"release", "course_grade", "stub"}),
    ("release", {"course_grade", "stub"}),
    ("stub", {"statistics", "checks", "release", "course_grade"}),
])
def test_each_layer_imports_only_the_layers_below_it(lower, forbidden):
    wrong = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if layer(m) == lower
                   for t in targets if layer(t) in forbidden)
    assert not wrong, wrong


# ----------------------------------------------------------------------------------------
# Third-party imports: a student's install, and the grader's extra


def _dist(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def third_party(module: str) -> set[str]:
    """The distributions a module's imports come from (standard library and ours left out)."""
    top = importlib.metadata.packages_distributions()
    dists = set()
    for name in imported_names(module_files()[module], module):
        root = name.split(".")[0]
        if not root or root in PACKAGES or root in sys.stdlib_module_names or root == "__future__":
            continue
        found = top.get(root)
        assert found, f"{module} imports {root}, which no installed distribution provides"
        dists.update(d.lower().replace("_", "-") for d in found)
    return dists


def test_students_install_nothing_of_the_grader_and_the_grader_needs_only_its_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_dist(r) for r in project["dependencies"]}
    grade = {_dist(r) for r in project["optional-dependencies"]["grade"]}
    assert grade and not grade & base, f"the grader's dependencies {grade & base} are a student's too"
    from course_grade import GRADE_EXTRA

    assert {d for d in GRADE_EXTRA.values() if d not in base} == grade, "GRADE_EXTRA and the extra disagree"
    used_by_students, used_by_grader = set(), set()
    for module in GRAPH:
        (used_by_grader if layer(module) == "course_grade" else used_by_students).update(third_party(module))
    # release.py uses nbformat only (a base dependency); the checks and statistics the same
    assert not used_by_students & grade, f"course_lib imports the grader's {used_by_students & grade}"
    # every distribution the grader imports is declared: a student's dependency or the extra
    known = base | grade
    assert used_by_grader <= known, f"the grader imports {used_by_grader - known}, declared nowhere"
    assert {"nbclient", "distributed"} <= used_by_grader
