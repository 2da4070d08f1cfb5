"""Academic integrity: a part whose answer uses the ``course_lib`` function it asks the
student to write gets 0 points, with a message saying where and why.

An exercise declares, on a solution cell, which ``course_lib`` functions that part asks
the student to write::

    "metadata": {"course": {"part": "ex5-negloglik", "role": "solution",
                            "writes": ["course_lib.lnp.negloglik"]}}

The grader reads the student's code cells (every code cell of the run plan except the
restored check cells) and analyses them *statically*, with :mod:`ast`, in its own process:
nothing the kernel does can hide a use from it, and nothing is executed. The notebook is
analysed as a whole, because a helper defined in any cell can be called from a solution.

What counts as a use of a target ``course_lib.m.f``:

* an import of it: ``from course_lib.m import f``, ``from course_lib.m import f as g``,
  ``from course_lib.m import *``;
* a reference through a name bound to its module: ``import course_lib.m as x; x.f``,
  ``from course_lib import m; m.f``, ``import course_lib; course_lib.m.f``, and through
  names those are assigned to (``y = x``);
* ``getattr(x, "f")``, ``vars(x)["f"]``, ``x.__dict__["f"]``, and any of these where the
  name is a constant expression (``"ne" + "gloglik"``, an f-string of constants);
* a module obtained dynamically: ``importlib.import_module("course_lib.m")``,
  ``__import__("course_lib.m", fromlist=[...])``, ``sys.modules["course_lib.m"]``;
* code in a constant string given to ``exec``/``eval``/``compile`` (analysed the same way).

An attribute of a ``course_lib`` module looked up with a *computed* name
(``getattr(lnp, name)``), or a dynamic import whose name mentions ``course_lib`` but is not
a constant, is reported as obfuscated: it is flagged for every part that declares a target
in that module. A student's own function with the same name as the target (``def
negloglik``) is never flagged: only names bound to ``course_lib`` objects are followed.

The checks' own code is out of bounds for every part. ``course_lib.checks`` holds each
part's reference answer, drawn cases and judge (``course_lib.checks.ex01._ols_params`` is
the reference for ``fit_ols``). A student's cells may call the checks' public API
(``checks.check``, ``checks.run``, ``checks.list_checks``), as the check cells do; any
other name under ``course_lib.checks`` they reach, in any of the ways above, gives 0 for
every autograded part, whatever the exercise declares.

Not covered (a determined student can defeat any static analysis): names built at run
time from data, code loaded from files, or a copy of the library's source pasted into the
notebook. Those remain a matter for the instructor's judgement.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CHECKS_PUBLIC", "Finding", "analyse", "apply_findings", "checks_internal", "parse_cell"]

PACKAGE = "course_lib"

#: Longest source analysed per cell (a larger cell is analysed up to this length).
MAX_CELL_CHARS = 200_000

#: The checks' package, and the names in it a student's own cells may use.
CHECKS = PACKAGE + ".checks"
CHECKS_PUBLIC = frozenset({CHECKS, f"{CHECKS}.check", f"{CHECKS}.run", f"{CHECKS}.list_checks"})


def checks_internal(name: str | None) -> bool:
    """Whether a qualified name is part of the checks' own code (see the module docstring)."""
    return name is not None and name.startswith(CHECKS + ".") and name not in CHECKS_PUBLIC


def _against_every_part(finding: Finding) -> bool:
    """A use of the checks' own code (or a computed lookup that may be one)."""
    return checks_internal(finding.target) or (finding.obfuscated and finding.target == CHECKS)


@dataclass(frozen=True)
class Finding:
    """One use of a forbidden ``course_lib`` function.

    Attributes
    ----------
    cell : str
        The cell it is in (its id, or ``#k`` for a cell without one).
    line : int
        Line number within the cell (1-based).
    target : str
        The qualified name used (``course_lib.lnp.negloglik``); for an obfuscated lookup,
        the module (``course_lib.lnp``).
    how : str
        What the code does, for the message (``imports it``, ``calls lnp.negloglik``...).
    obfuscated : bool
        The attribute name or module name is computed, so the function cannot be named.
    """

    cell: str
    line: int
    target: str
    how: str
    obfuscated: bool = False

    def to_dict(self) -> dict:
        return {"cell": self.cell, "line": self.line, "target": self.target, "how": self.how,
                "obfuscated": self.obfuscated}


def parse_cell(source: str) -> ast.Module | None:
    """Parse a notebook cell, IPython syntax included (``%magic``, ``!shell``, ``x?``).

    Returns None when the cell is not valid Python even after IPython's transformations
    (such a cell raises a SyntaxError when run, so nothing in it executes).
    """
    source = source[:MAX_CELL_CHARS]
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # IPython's transformers raise assorted errors on garbage
        return None


def _const_str(node: ast.AST) -> str | None:
    """The value of a constant string expression, or None if it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left), _const_str(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        pieces = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                pieces.append(value.value)
            elif isinstance(value, ast.FormattedValue) and value.format_spec is None:
                inner = _const_str(value.value)
                if inner is None:
                    return None
                pieces.append(inner)
            else:
                return None
        return "".join(pieces)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join" and len(node.args) == 1 and not node.keywords):
        sep = _const_str(node.func.value)
        items = node.args[0]
        if sep is not None and isinstance(items, (ast.List, ast.Tuple)):
            parts = [_const_str(e) for e in items.elts]
            if all(p is not None for p in parts):
                return sep.join(parts)
    return None


def _mentions_package(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and PACKAGE in n.value
               for n in ast.walk(node))


def _is_package_name(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


class _Analyser:
    """Walks the cells in order, tracking names bound to ``course_lib`` objects."""

    def __init__(self, targets: Iterable[str]):
        self.targets = frozenset(targets)
        self.modules = {t.rpartition(".")[0] for t in self.targets}
        self.aliases: dict[str, str] = {}  # notebook name -> qualified course_lib name
        self.findings: list[Finding] = []
        self.cell = ""
        self.recording = True

    # -- resolving expressions to qualified names ----------------------------------------

    def qualify(self, node: ast.AST) -> str | None:
        """The qualified ``course_lib`` name an expression refers to, if any."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            if base is not None and node.attr != "__dict__":
                return f"{base}.{node.attr}"
            return None
        if isinstance(node, ast.Subscript):
            # sys.modules["course_lib.x"], vars(m)["f"], m.__dict__["f"]
            key = _const_str(node.slice)
            container = node.value
            if isinstance(container, ast.Attribute) and container.attr == "modules":
                if key is not None and _is_package_name(key):
                    return key
                return None
            owner = self._namespace_of(container)
            if owner is not None and key is not None:
                return f"{owner}.{key}"
            return None
        if isinstance(node, ast.Call):
            return self._call_result(node)
        return None

    def _namespace_of(self, node: ast.AST) -> str | None:
        """The module whose namespace ``vars(m)`` or ``m.__dict__`` is."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" \
                and len(node.args) == 1:
            return self.qualify(node.args[0])
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self.qualify(node.value)
        return None

    def _call_result(self, node: ast.Call) -> str | None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "getattr" and len(node.args) >= 2:
            base = self.qualify(node.args[0])
            attr = _const_str(node.args[1])
            if base is not None and attr is not None:
                return f"{base}.{attr}"
            return None
        if name in ("import_module", "__import__") and node.args:
            module = _const_str(node.args[0])
            if module is None or not _is_package_name(module):
                return None
            if name == "import_module":
                return module
            fromlist = node.args[3] if len(node.args) > 3 else next(
                (k.value for k in node.keywords if k.arg == "fromlist"), None)
            has_fromlist = fromlist is not None and not (
                isinstance(fromlist, (ast.List, ast.Tuple)) and not fromlist.elts)
            return module if has_fromlist else PACKAGE
        return None

    # -- recording -----------------------------------------------------------------------

    def flag(self, node: ast.AST, target: str, how: str, obfuscated: bool = False) -> None:
        if self.recording:
            self.findings.append(Finding(self.cell, getattr(node, "lineno", 0), target, how, obfuscated))

    def forbidden(self, qualified: str | None) -> bool:
        return qualified in self.targets or checks_internal(qualified)

    def check_use(self, node: ast.AST, qualified: str | None, how: str) -> None:
        if self.forbidden(qualified):
            self.flag(node, qualified, how)

    # -- the walk ------------------------------------------------------------------------

    def run_cell(self, cell: str, tree: ast.AST) -> None:
        self.cell = cell
        for node in ast.walk(tree):
            self.visit(node)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_package_name(alias.name):
                    continue
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                    self.check_use(node, alias.name, f"imports {alias.name} as {alias.asname}")
                else:
                    self.aliases[alias.name.split(".")[0]] = PACKAGE
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or not _is_package_name(module):
                return
            for alias in node.names:
                if alias.name == "*":
                    for target in sorted(self.targets):
                        if target.rpartition(".")[0] == module:
                            self.flag(node, target, f"imports everything from {module} (*)")
                    if module == CHECKS or checks_internal(module):
                        self.flag(node, f"{module}.*", f"imports everything from {module} (*)")
                    continue
                qualified = f"{module}.{alias.name}"
                bound = alias.asname or alias.name
                self.aliases[bound] = qualified
                self.check_use(node, qualified, f"imports {qualified}"
                               + (f" as {alias.asname}" if alias.asname else ""))
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            value = node.value
            qualified = self.qualify(value) if value is not None else None
            names = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in names:
                if isinstance(target, ast.Name):
                    if qualified is not None:
                        self.aliases[target.id] = qualified
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            qualified = self.qualify(node)
            if self.forbidden(qualified):
                self.flag(node, qualified, f"uses {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript):
            qualified = self.qualify(node)
            if self.forbidden(qualified):
                self.flag(node, qualified, f"looks up {ast.unparse(node)}")
            elif isinstance(node.value, ast.Attribute) and node.value.attr == "modules" \
                    and _const_str(node.slice) is None and _mentions_package(node.slice):
                self.flag_module(node, None, f"looks up a course_lib module by a computed name "
                                             f"({ast.unparse(node)[:80]})")
            else:
                owner = self._namespace_of(node.value)
                if owner is not None and _const_str(node.slice) is None:
                    self.flag_module(node, owner, f"looks up a name computed at run time in {owner} "
                                                  f"({ast.unparse(node)[:80]})")
        elif isinstance(node, ast.Call):
            self.visit_call(node)

    def visit_call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "getattr" and len(node.args) >= 2:
            base = self.qualify(node.args[0])
            if base is None:
                return
            attr = _const_str(node.args[1])
            if attr is None:
                self.flag_module(node, base, f"looks up a name computed at run time in {base} "
                                             f"({ast.unparse(node)[:80]})")
            else:
                self.check_use(node, f"{base}.{attr}", f"gets {base}.{attr} with {ast.unparse(node)[:80]}")
        elif name in ("import_module", "__import__") and node.args:
            if _const_str(node.args[0]) is None and _mentions_package(node.args[0]):
                self.flag_module(node, None, f"imports a course_lib module by a computed name "
                                             f"({ast.unparse(node)[:80]})")
        elif name in ("exec", "eval", "compile") and node.args:
            code = _const_str(node.args[0])
            if code is not None and PACKAGE in code:
                inner = parse_cell(code)
                if inner is not None:
                    for sub in ast.walk(inner):
                        if hasattr(sub, "lineno"):
                            sub.lineno = node.lineno  # report the line of the exec call
                        self.visit(sub)
            elif code is None and _mentions_package(node.args[0]):
                self.flag_module(node, None, f"runs computed code that mentions course_lib "
                                             f"({ast.unparse(node)[:80]})")

    def flag_module(self, node: ast.AST, module: str | None, how: str) -> None:
        """An obfuscated lookup: flag every target in ``module`` (all targets if unknown),
        and the checks' code if the lookup may reach it."""
        for target in sorted(self.targets):
            owner = target.rpartition(".")[0]
            if module is None or owner == module or (module == PACKAGE and _is_package_name(owner)):
                self.flag(node, target, how, obfuscated=True)
        if module in (None, PACKAGE, CHECKS) or checks_internal(module):
            self.flag(node, CHECKS, how, obfuscated=True)


def analyse(cells: Iterable[tuple[str, str]], targets: Iterable[str]) -> list[Finding]:
    """Find every use of a forbidden ``course_lib`` function in a notebook's code.

    Parameters
    ----------
    cells : iterable of (str, str)
        ``(cell label, source)`` of each code cell, in the order they run.
    targets : iterable of str
        Qualified names of the functions the student must write
        (``"course_lib.lnp.negloglik"``); may be empty. Uses of the checks' own code are
        found whatever the targets.

    Returns
    -------
    list of Finding
        In the order found; empty when the code uses none of the targets and none of the
        checks' code. Cells that are not valid Python are skipped.
    """
    targets = list(targets)
    for t in targets:
        if not _is_package_name(t) or t.count(".") < 1:
            raise ValueError(f"an integrity target must be a qualified course_lib name, got {t!r}")
    analyser = _Analyser(targets)
    trees = [(label, parse_cell(source)) for label, source in cells]
    trees = [(label, tree) for label, tree in trees if tree is not None]
    # Names are bound in one pass and used in the next, whatever the order of the cells
    # (a function may use a module imported in a later cell): two passes settle chains of
    # aliases, then the last pass records the uses.
    for recording in (False, False, True):
        analyser.recording = recording
        for label, tree in trees:
            analyser.run_cell(label, tree)
    unique: dict[tuple, Finding] = {}
    for f in analyser.findings:
        unique.setdefault((f.cell, f.line, f.target, f.how), f)
    return list(unique.values())


def message(findings: list[Finding], part: str) -> str:
    """The feedback for a part that used what it asks the student to write, or the
    checks' own code."""
    names = sorted({f.target for f in findings if not f.obfuscated})
    lines = []
    for f in findings[:5]:
        lines.append(f"cell {f.cell}, line {f.line}: {f.how}")
    if len(findings) > 5:
        lines.append(f"… and {len(findings) - 5} more")
    what = ", ".join(names) if names else "a course_lib function by a computed name"
    if any(_against_every_part(f) for f in findings):
        return (
            f"0 points for integrity: your notebook uses the checks' own code ({what}), which "
            "holds the reference answers (" + "; ".join(lines) + "). Only checks.check, "
            "checks.run and checks.list_checks may be called from your cells; using anything "
            f"else of course_lib.checks gives 0 for every part, {part} included."
        )
    return (
        f"0 points for integrity: part {part} asks you to write this yourself, but your notebook "
        f"uses {what} from the course's library ("
        + "; ".join(lines)
        + "). Using the library's implementation instead of your own does not count, even "
        "when the result is right. The other parts are graded normally."
    )


def apply_findings(result: dict, findings: list[Finding], writes: Mapping[str, tuple[str, ...]]) -> dict:
    """Set every part that used one of its own targets, and every part when the code used
    the checks' own code, to 0 points, status ``integrity``.

    Parameters
    ----------
    result : dict
        A grading result (see :mod:`course_grade.report`); not modified.
    findings : list of Finding
        From :func:`analyse` on the submission's code.
    writes : mapping of str to tuple of str
        Each part's targets (the functions it asks the student to write).

    Returns
    -------
    dict
        The result with those parts replaced (the judge's own verdict kept under
        ``judged``), the total recomputed, and ``integrity``: every finding, as dicts.
    """
    result = dict(result)
    result["integrity"] = [f.to_dict() for f in findings]
    if not findings:
        return result
    parts = []
    for p in result.get("parts", []):
        mine = [f for f in findings
                if f.target in writes.get(p["part"], ()) or _against_every_part(f)]
        if mine:
            p = {**p, "status": "integrity", "points": 0.0, "judged": p["status"],
                 "message": message(mine, p["part"]), "hint": ""}
        parts.append(p)
    result["parts"] = parts
    result["total"] = round(sum(p["points"] for p in parts), 6)
    return result
