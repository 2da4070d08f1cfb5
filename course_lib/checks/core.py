"""The machinery of the exercise checks (the package docstring gives the flow): verdicts, the registry,
results as plain data and their comparison, time limits, a memo of reference outputs, the declaration
:class:`FunctionCheck`, and :class:`StoredCheck`, a student tree's public cases stored at release.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import functools
import importlib
import io
import re
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cachetools
import joblib
import numpy as np
import pandas as pd

@dataclass(frozen=True)
class Verdict:
    """One check's outcome: ``status`` (passed, failed, error, not-implemented), ``points`` of ``max_points``, a
    ``message`` (what was checked, or the failed step: what was expected, what came back), maybe a ``hint``."""

    part: str
    status: str
    points: float
    max_points: float
    message: str
    hint: str = ""

    passed = property(lambda self: self.status == "passed")

    def __str__(self) -> str:
        text = f"{'✔' if self.passed else '✘'} {self.part}  {self.points:g}/{self.max_points:g}  {self.message}"
        return text + (f"\n  Hint: {self.hint}" if self.hint else "")

    __repr__ = __str__


class CheckFailure(Exception):
    """A comparison's failed step (the message), with a hint when the step recognises why."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def first_failure(steps) -> None:
    """A property check's steps ``(failed, message, hint)``: raise the first that failed as a :class:`CheckFailure`."""
    for failed, message, hint in steps:
        if failed:
            raise CheckFailure(message, hint)


def hidden_seed(public_seed: int, run_seed: int) -> int:
    """The seed of a part's hidden cases: a 63-bit mix (numpy's SeedSequence) of its public seed and a run's
    (so a regrade with the run's seed draws the same cases)."""
    state = np.random.SeedSequence([int(run_seed) % 2**63, int(public_seed) % 2**63, 0x68696464656E])
    return int(state.generate_state(2, np.uint64)[0] >> np.uint64(1))


_REGISTRY: dict[str, FunctionCheck] = {}


def register(chk: FunctionCheck) -> FunctionCheck:
    """Add a check to the registry under its part id (ids must be unique)."""
    if chk.part in _REGISTRY:
        raise ValueError(f"a check for part '{chk.part}' is already registered")
    _REGISTRY[chk.part] = chk
    return chk


def get_check(part: str) -> FunctionCheck:
    """The registered check of a part; a ``ValueError`` lists the known parts otherwise."""
    if part not in _REGISTRY:
        raise ValueError(f"no check for part {part!r}; known parts are {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[part]


def list_checks() -> pd.DataFrame:
    """All registered checks with their points, one row per part."""
    return pd.DataFrame([{"part": c.part, "points": c.points} for c in _REGISTRY.values()]).set_index("part")


# --- Results as plain data (made in the student's kernel), read back untrusted by the judge.


def to_data(value) -> dict:
    """A returned value as JSON data: ``array``, ``series`` (numbers by label), ``text``, ``tuple``, or ``other``."""
    if isinstance(value, str):
        return {"kind": "text", "value": value[:500]}
    with contextlib.suppress(TypeError, ValueError):
        if isinstance(value, pd.Series):
            return {"kind": "series", "index": [str(i) for i in value.index], "by": str(value.index.name or "label"),
                    "values": np.asarray(value.to_numpy(), dtype=float).tolist()}
        if not isinstance(value, (pd.DataFrame, dict, bytes)) and value is not None:
            arr = np.asarray(value, dtype=float)
            return {"kind": "array", "shape": list(arr.shape), "values": arr.ravel().tolist()}
    if isinstance(value, (tuple, list)) and 0 < len(value) <= 20:
        return {"kind": "tuple", "items": [to_data(v) for v in value]}
    return {"kind": "other", "type": "None" if value is None else type(value).__name__}


def returned(fn: Callable, args: tuple):
    """The default ``output`` of a check: what ``fn(*args)`` returns, as :func:`to_data`."""
    return to_data(fn(*args))


@dataclass(frozen=True)
class Returned:
    """A result as the judge sees it, rebuilt from :func:`to_data`'s (untrusted) plain data."""

    kind: str
    type_name: str = ""
    array: np.ndarray | None = None
    index: tuple[str, ...] = ()
    text: str = ""

    @classmethod
    def from_data(cls, data) -> Returned:
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind in ("other", "tuple"):
            return cls("other", type_name=str(data.get("type", "tuple")))
        if kind == "text":
            return cls("text", "str", text=str(data.get("value", "")))
        with contextlib.suppress(TypeError, ValueError, KeyError, OverflowError):
            values = np.array(data["values"], dtype=float)
            if values.ndim == 1 and kind == "series" and isinstance(data["index"], list) \
                    and len(data["index"]) == values.size:
                return cls("series", "Series", values, tuple(str(i) for i in data["index"]))
            if values.ndim == 1 and kind == "array":
                return cls("array", "ndarray", values.reshape([int(s) for s in data["shape"]]))
        raise CheckFailure("the check's record of your result is malformed")

    def described(self) -> str:
        if self.kind == "other":
            return "None (did you forget to return?)" if self.type_name == "None" else f"a {self.type_name}"
        return {"text": "a string", "series": "a pandas Series"}.get(self.kind, "an array")


def fmt(x, digits: int = 4, max_items: int = 6) -> str:
    """Format a number or array compactly, for a failure message."""
    arr = np.atleast_1d(np.asarray(x, dtype=float))
    items = [f"{v:.{digits}g}" for v in arr.ravel()[:max_items]]
    return items[0] if np.ndim(x) == 0 else "[" + ", ".join(items) + (", …" if arr.size > max_items else "") + "]"


def compare_arrays(got: Returned, expected, what: str, rtol=1e-6, atol=1e-8) -> None:
    """Type, then shape, then values; raise :class:`CheckFailure` at the first that fails."""
    expected = np.asarray(expected, dtype=float)
    if got.kind not in ("array", "series"):
        raise CheckFailure(f"type: {what} should be an array of numbers, got {got.described()}")
    arr = got.array
    if arr.shape != expected.shape:
        same = arr.size == expected.size and arr.squeeze().ndim <= 1
        fix = "return it as one number, float(x)" if expected.ndim == 0 else "flatten it with .ravel()"
        raise CheckFailure(f"shape: {what} should have shape {expected.shape}, got {arr.shape}"
                           + (f" (same numbers, wrong shape: {fix})" if same else ""))
    bad = ~np.isfinite(arr)  # (allowed where a mistake's output has them too)
    if bad.any() and not np.array_equal(bad, ~np.isfinite(expected)):
        raise CheckFailure(f"values: {what} should be {fmt(expected)}, got NaN or infinite values: {fmt(arr)}")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol, equal_nan=True):
        reordered = arr.ndim == 1 and np.allclose(np.sort(arr), np.sort(expected), rtol=rtol, atol=atol)
        raise CheckFailure(f"values: {what} should be {fmt(expected)}, got {fmt(arr)}",
                           "right values in the wrong order: check the order the task asks for." if reordered else "")


def compare_data(got, expected, what: str, rtol=1e-6, atol=1e-8) -> None:
    """Compare plain data (:func:`to_data`'s kinds; a Series by label, a tuple by item, another dict by key)."""
    kind = expected.get("kind") if isinstance(expected, dict) else None
    if kind == "tuple":
        items, n = got.get("items") if isinstance(got, dict) else None, len(expected["items"])
        if not isinstance(items, list) or got.get("kind") != "tuple" or len(items) != n:
            came = Returned.from_data(got).described() if isinstance(got, dict) and "kind" in got else "something else"
            raise CheckFailure(f"type: {what} should return a tuple of {n} values, got {came}")
        for k, (g, e) in enumerate(zip(items, expected["items"])):
            compare_data(g, e, f"item {k} of {what}", rtol, atol)
    elif kind == "text":
        g = Returned.from_data(got)
        if g.kind != "text" or g.text != expected["value"]:
            raise CheckFailure(f"values: {what} should be {expected['value']!r}, got "
                               f"{repr(g.text) if g.kind == 'text' else g.described()}")
    elif kind == "series":
        want, g = Returned.from_data(expected), Returned.from_data(got)
        if g.kind != "series":
            raise CheckFailure(f"type: {what} should be a pandas Series indexed by {expected.get('by', 'label')}, "
                               f"got {g.described()}")
        if sorted(g.index) != sorted(want.index) or len(set(g.index)) != len(g.index):
            raise CheckFailure(f"index: {what} should have one value for each of the {len(want.index)} labels "
                               f"{sorted(want.index)[:6]}, got {len(g.index)} values labelled {sorted(g.index)[:6]}")
        order = {k: i for i, k in enumerate(g.index)}
        compare_arrays(Returned("array", array=g.array[[order[k] for k in want.index]]), want.array, what, rtol, atol)
    elif kind == "array":
        compare_arrays(Returned.from_data(got), Returned.from_data(expected).array, what, rtol, atol)
    elif isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            raise CheckFailure(f"values: {what} is not what the check can read")
        for key in expected:
            compare_data(got[key], expected[key], f"{key} of {what}", rtol, atol)
    elif isinstance(expected, (str, bool)) or expected is None:
        if got != expected:
            raise CheckFailure(f"values: {what} should be {expected!r}, got {got!r}")
    else:  # a number, or a list of numbers
        compare_arrays(Returned.from_data({"kind": "array", "shape": list(np.shape(got)),
                                           "values": np.ravel(got).tolist()}), expected, what, rtol, atol)


def _holds(compare: Callable, *args) -> bool:
    """Whether ``compare(*args)`` passes (a CheckFailure, or data it cannot read: it does not)."""
    try:
        compare(*args)
    except Exception:
        return False
    return True


# --- Running an answer in the kernel, within a time limit per case.


class CaseTimeout(BaseException):
    """A case's time limit passed (not an Exception: the student's own ``except Exception`` must not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (wall clock), by ``SIGALRM`` in
    the main thread of a Unix process (a kernel runs cells there); elsewhere no limit applies
    (the grader's per-cell timeout still stops the code)."""
    def expired(signum, frame):
        raise CaseTimeout(f"ran longer than {seconds:g} s")

    if not (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0):
        yield
        return
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- Reference outputs, computed once per process (a batch judges every submission on the same
# cases). functools.lru_cache cannot key on arrays or data frames: joblib.hash keys them by content
# (functions by identity); cachetools' condition makes threads wait for one computation of an answer.


def _read_only(value):
    """Arrays in a shared answer are made read-only, so no caller can change it for the next."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for item in value:
            _read_only(item)
    return value


MEMO_SIZE = 256
_MEMO, _MEMO_LOCK = cachetools.LRUCache(MEMO_SIZE), threading.Condition()


@cachetools.cached(_MEMO, key=lambda key, fn, args, kwargs: key, lock=_MEMO_LOCK, condition=_MEMO_LOCK)
def _remembered(key, fn, args, kwargs):
    return _read_only(fn(*args, **kwargs))


def memo_call(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` of a pure ``fn``, once per distinct input (the last :data:`MEMO_SIZE`; no failure)."""
    try:
        key = (fn, *filter(callable, args), joblib.hash(([a for a in args if not callable(a)], kwargs)))
    except Exception:  # an argument that cannot be pickled: no cache
        return fn(*args, **kwargs)
    return _remembered(key, fn, args, kwargs)


def reference_cache(fn: Callable) -> Callable:
    """Decorator: cache a pure reference computation with :func:`memo_call`."""
    return functools.wraps(fn)(lambda *args, **kwargs: memo_call(fn, *args, **kwargs))


class Case(NamedTuple):
    """One input the check draws: the arguments, and a short description for messages."""

    args: tuple
    label: str


@functools.lru_cache(maxsize=None)
def drawn_cases(draw: Callable[[np.random.Generator], Sequence[Case]], seed: int) -> tuple[Case, ...]:
    """``draw(np.random.default_rng(seed))``, once per process, arrays read-only (each caller gets a deep copy)."""
    cases = tuple(draw(np.random.default_rng(seed)))
    for case in cases:
        _read_only(case.args)
    return cases


def _output_of(output: Callable, fn: Callable, args: tuple):
    return output(fn, copy.deepcopy(args))


# --- The declaration of a part's check.


@dataclass
class FunctionCheck:
    """A part's check, declared (CONTRIBUTING.md has a worked example).

    Parameters
    ----------
    part, points, function : str, float, str
        Part id, points for a pass, and the name the student knows the function by.
    draw, seed, hidden : callable(rng) -> list of Case, int, bool
        The inputs, well-conditioned for every seed; the public seed; whether grading draws hidden cases.
    reference, mistakes, valid : callable, list of (callable, str), list of callable
        A right implementation (the student's signature); wrong ones with their hints; other valid ones.
    output, compare : callable(fn, args) -> plain data, callable(got, expected, what, args)
        Shipped functions (not of an ``exNN`` module): ``fn``'s result on a case as JSON data (default
        :func:`returned`); a comparison raising :class:`CheckFailure` (default :func:`compare_data`).
    error_hints, tolerance : list of (words, hint), (rtol, atol)
        A hint for an exception whose text holds the words; the default comparison's tolerance.
    time_limit, success : float, str
        Seconds one case may run in the kernel; the message of a pass (``{function}``, ``{n}``).
    """

    part: str
    points: float
    function: str
    draw: Callable[[np.random.Generator], Sequence[Case]]
    reference: Callable[..., Any]
    output: Callable[[Callable, tuple], Any] = returned
    compare: Callable[[Any, Any, str, tuple], None] | None = None
    mistakes: Sequence[tuple[Callable[..., Any], str]] = ()
    valid: Sequence[Callable[..., Any]] = ()
    error_hints: Sequence[tuple[str, str]] = ()
    seed: int = 0
    hidden: bool = True
    tolerance: tuple[float, float] = (1e-6, 1e-8)
    time_limit: float = 30.0
    success: str = "{function} gives the right answer on {n} inputs the check drew."

    def verdict(self, status: str, message: str, hint: str = "") -> Verdict:
        return Verdict(self.part, status, self.points if status == "passed" else 0.0, self.points, message, hint)

    def for_seed(self, seed: int | None) -> FunctionCheck:
        """This check on the hidden cases of a grading run's ``seed`` (None: the public ones): :func:`hidden_seed`."""
        return self if seed is None or not self.hidden else dataclasses.replace(self, seed=hidden_seed(self.seed, seed))

    def cases(self) -> Sequence[Case]:
        return drawn_cases(self.draw, self.seed)

    def collect(self, answer=None, *extra) -> dict:
        """Run the answer on each case, in the kernel: its outputs as plain data, or the first case's error."""
        record: dict[str, Any] = {"part": self.part, "outputs": []}
        if not callable(answer):
            return {**record, "error": f"{self.function} should be a function, got {type(answer).__name__}"}
        for case in self.cases():
            try:
                with time_limit(self.time_limit):
                    record["outputs"].append(self.output(answer, copy.deepcopy(case.args)))
            except NotImplementedError:
                return {**record, "not_implemented": True}
            except CaseTimeout:
                return {**record, "error": f"{self.function} ran longer than {self.time_limit:g} s on {case.label}: "
                                           "the check expected an answer well within that time"}
            except Exception as err:  # the student's code may raise anything
                return {**record, "error": f"{self.function} raised {f'{type(err).__name__}: {err}'[:300]} on "
                                           f"{case.label}"}
        return record

    def outputs(self, index: int, case: Case, keys=("expected", "valid", "mistakes")) -> dict:
        """The outputs a case is judged against, once per process and when asked: ``expected`` (the reference's),
        ``valid``, and ``mistakes`` (``[output, hint]``; none for a mistake that raises on this case)."""
        def run(fn):
            return memo_call(_output_of, self.output, fn, case.args)

        def applicable(wrong, hint):
            with contextlib.suppress(Exception):  # a mistake that does not apply to this case
                return [[run(wrong), hint]]
            return []

        makers = {"expected": lambda: run(self.reference), "valid": lambda: [run(v) for v in self.valid],
                  "mistakes": lambda: [m for w, h in self.mistakes for m in applicable(w, h)]}
        return {key: makers[key]() for key in keys}

    def _compare(self, got, expected, what: str, args: tuple) -> None:
        (self.compare or (lambda g, e, w, a: compare_data(g, e, w, *self.tolerance)))(got, expected, what, args)

    def judge(self, collected) -> Verdict:
        """The verdict on the plain data :meth:`collect` returned (untrusted: it may be forged): ✘ at the first failing
        case, with the hint of a mistake whose output the answer equals on every case it fails, else the step's own."""
        cases = self.cases()
        if isinstance(collected, dict) and collected.get("not_implemented"):
            return self.verdict("not-implemented", f"{self.function} still raises NotImplementedError: "
                                                   "replace the stub with your solution.")
        if isinstance(collected, dict) and collected.get("error"):
            text = str(collected["error"])[:400]
            return self.verdict("error", text, next((h for words, h in self.error_hints if words in text), ""))
        outputs = collected.get("outputs") if isinstance(collected, dict) else None
        if not isinstance(outputs, list) or len(outputs) != len(cases):
            return self.verdict("error", "the check could not read your results")
        failures = []  # (the first failure, the hints of the mistakes the answer equals) of each failing case
        for index, (case, got) in enumerate(zip(cases, outputs)):
            what = f"{self.function}(…) on {case.label}"
            try:
                self._compare(got, self.outputs(index, case, ["expected"])["expected"], what, case.args)
            except CheckFailure as failure:
                want = self.outputs(index, case, ["valid", "mistakes"])
                if not any(_holds(self._compare, got, other, what, case.args) for other in want["valid"]):
                    failures.append((failure, [h for w, h in want["mistakes"]
                                               if _holds(compare_data, got, w, "", *self.tolerance)]))
            except Exception:  # malformed or forged records never pass
                return self.verdict("error", f"the check could not read what {self.function} returned")
        if not failures:
            return self.verdict("passed", self.success.format(function=self.function, n=len(cases)))
        (failure, hints), *others = failures  # a mistake's hint only if it explains every failing case
        return self.verdict("failed", str(failure), next((h for h in hints if all(h in o for _, o in others)),
                                                         failure.hint))


# --- Public cases stored in a student tree (made by course_lib.release): inputs as JSON data.


def encode(x):
    """A case's argument as JSON data (:func:`decode` rebuilds it): arrays as base64 ``.npy``."""
    if isinstance(x, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, x, allow_pickle=False)
        return {"npy": base64.b64encode(buf.getvalue()).decode("ascii")}
    if isinstance(x, pd.DataFrame):  # a categorical column's dtype: its categories
        return {"df": {str(c): x[c].tolist() for c in x}, "index": x.index.tolist(), "dtypes": {
            str(c): x[c].cat.categories.tolist() if isinstance(x[c].dtype, pd.CategoricalDtype) else str(x[c].dtype)
            for c in x}}
    if isinstance(x, dict):
        return {"map": {str(k): encode(v) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"seq": [encode(v) for v in x], "tuple": isinstance(x, tuple)}
    return x.item() if isinstance(x, np.generic) else x


def decode(x):
    """An argument rebuilt from :func:`encode`'s data."""
    if not isinstance(x, dict):
        return x
    if "npy" in x:
        return np.load(io.BytesIO(base64.b64decode(x["npy"])), allow_pickle=False)
    if "seq" in x:
        return (tuple if x.get("tuple") else list)(decode(v) for v in x["seq"])
    if "map" in x:
        return {k: decode(v) for k, v in x["map"].items()}
    return pd.DataFrame(x["df"], index=x["index"]).astype(
        {c: pd.CategoricalDtype(d) if isinstance(d, list) else d for c, d in x["dtypes"].items()})


def qualname(fn: Callable) -> str:
    """``module:name``, by which a student tree imports a shipped function (not a lambda, not of an ``exNN``)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    shipped(name)
    return name


def shipped(name: str) -> Callable:
    """The function ``module:name`` names, from a shipped module of this package."""
    module, _, attr = name.partition(":")
    if not re.fullmatch(r"course_lib\.checks\.(?!ex\d)\w+", module) or not attr.isidentifier():
        raise ValueError(f"{name!r} is not in a shipped module of course_lib.checks")
    return getattr(importlib.import_module(module), attr)


@dataclass
class StoredCheck(FunctionCheck):
    """A part's check in a student tree: the public cases and their outputs, stored at release; the same judge."""

    stored: Sequence[dict] = ()
    hidden: bool = False

    @classmethod
    def from_record(cls, part: str, rec: dict) -> StoredCheck:
        return cls(part=part, points=rec["points"], function=rec["function"], draw=None, reference=None,
                   output=shipped(rec["output"]), compare=shipped(rec["compare"]) if rec["compare"] else None,
                   error_hints=[tuple(p) for p in rec["error_hints"]], tolerance=tuple(rec["tolerance"]),
                   time_limit=rec["time_limit"], success=rec["success"], stored=rec["cases"])

    @functools.cached_property
    def _cases(self) -> tuple[Case, ...]:  # decoded once: collect and judge both ask
        return tuple(Case(tuple(decode(a) for a in c["args"]), c["label"]) for c in self.stored)

    def cases(self) -> Sequence[Case]:
        return self._cases

    def outputs(self, index: int, case: Case, keys=("expected", "valid", "mistakes")) -> dict:
        return {key: self.stored[index][key] for key in keys}


def stored_record(chk: FunctionCheck) -> dict:
    """What a student tree stores of a part: its public cases, their outputs, how results are read and compared."""
    cases = [{"label": c.label, "args": [encode(a) for a in c.args], **chk.outputs(i, c)}
             for i, c in enumerate(chk.cases())]
    return {"points": chk.points, "function": chk.function, "output": qualname(chk.output),
            "compare": qualname(chk.compare) if chk.compare else None,
            "error_hints": [list(p) for p in chk.error_hints], "tolerance": list(chk.tolerance),
            "time_limit": chk.time_limit, "success": chk.success, "cases": cases}
