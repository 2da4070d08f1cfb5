"""The machinery of the exercise checks: verdicts, the registry, and the one kind of check.

A part's check is a declaration (:class:`FunctionCheck`): a generator of inputs, a reference
implementation, the known mistakes as wrong implementations with their hints, other valid
implementations, and how an answer's result is read (``output``) and compared
(``compare``). Everything an answer returns is turned into plain, JSON-serialisable data by
``output`` in the student's kernel; the judge compares that data, untrusted, with the same
``output`` of the reference, of the valid alternatives and of the mistakes:

    verdict(answer) = ✔  if compare(output(answer), output(reference)) for every case
                         (or the result equals a valid alternative's),
                      ✘  with the hint of the mistake whose output it equals, otherwise.

Modules named ``exNN`` hold the declarations (their references *are* solutions and stay
with the instructor); every other module of this package (this one, ``figures``, ...) holds
only the reading and comparing of results and ships in the student tree, where the outputs
of the public cases are stored at release time (:mod:`course_lib.release`), so that a check
cell gives the same ✔/✘ and hint there with no reference present.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import io
import math
import re
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd

#: The statuses a verdict can have (``written``: judged when handed in, student tree only).
STATUSES = ("passed", "failed", "error", "not-implemented", "written")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``part``, ``status`` (one of :data:`STATUSES`), ``points``
    of ``max_points``, a ``message`` (what was checked, or which step failed with what was
    expected and what came back) and, for a known mistake, a ``hint``."""

    part: str
    status: str
    points: float
    max_points: float
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        mark = {"passed": "✔", "written": "✎"}.get(self.status, "✘")
        got = "?" if self.status == "written" else f"{self.points:g}"
        text = f"{mark} {self.part}  {got}/{self.max_points:g}  {self.message}"
        return text + (f"\n  Hint: {self.hint}" if self.hint else "")

    __repr__ = __str__


class CheckFailure(Exception):
    """A comparison's failed step (the message), with a hint when the step recognises why."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class Check:
    """Base class: a part id, its points, and the two steps ``collect`` and ``judge``."""

    part: str
    points: float

    def verdict(self, status: str, message: str, hint: str = "") -> Verdict:
        return Verdict(self.part, status, self.points if status == "passed" else 0.0,
                       self.points, message, hint)

    def for_seed(self, seed: int | None) -> Check:
        """This check on the hidden cases of a grading run's secret ``seed`` (``None``, the
        notebook: the public cases): the same generator, seeded by :func:`hidden_seed`."""
        if seed is None or not getattr(self, "hidden", False) or not dataclasses.is_dataclass(self):
            return self
        return dataclasses.replace(self, seed=hidden_seed(self.seed, seed))


def hidden_seed(public_seed: int, run_seed: int) -> int:
    """The seed of a part's hidden cases: a 63-bit mix (numpy's SeedSequence) of its public
    seed and a grading run's secret seed, the same on every regrade with the same run seed."""
    state = np.random.SeedSequence([int(run_seed) % 2**63, int(public_seed) % 2**63, 0x68696464656E])
    return int(state.generate_state(2, np.uint64)[0] >> np.uint64(1))


_REGISTRY: dict[str, Check] = {}


def register(chk: Check) -> Check:
    """Add a check to the registry under its part id (ids must be unique)."""
    if chk.part in _REGISTRY:
        raise ValueError(f"a check for part '{chk.part}' is already registered")
    _REGISTRY[chk.part] = chk
    return chk


def get_check(part: str) -> Check:
    """The registered check of a part; a ``ValueError`` lists the known parts otherwise."""
    if part not in _REGISTRY:
        raise ValueError(f"no check for part {part!r}; known parts are {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[part]


def list_checks() -> pd.DataFrame:
    """All registered checks with their points, one row per part."""
    return pd.DataFrame([{"part": c.part, "points": c.points} for c in _REGISTRY.values()]).set_index("part")


# ----------------------------------------------------------------------------------------
# Results as plain data (run in the student's kernel), read back untrusted by the judge.


def to_data(value) -> dict:
    """Describe a returned value as JSON data: ``array`` (numbers, any shape), ``series``
    (numbers with labels), ``text``, ``tuple`` (of such), or ``other`` (its type only)."""
    if isinstance(value, str):
        return {"kind": "text", "value": value[:500]}
    if isinstance(value, pd.Series):
        try:
            values = np.asarray(value.to_numpy(), dtype=float)
        except (TypeError, ValueError):
            return _other(value)
        return {"kind": "series", "index": [str(i) for i in value.index], "values": values.tolist(),
                "by": str(value.index.name or "label")}
    if isinstance(value, (pd.DataFrame, dict, bytes)) or value is None:
        return _other(value)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        if isinstance(value, (tuple, list)) and 0 < len(value) <= 20:
            return {"kind": "tuple", "items": [to_data(v) for v in value]}
        return _other(value)
    return {"kind": "array", "shape": list(arr.shape), "values": arr.ravel().tolist()}


def _other(value) -> dict:
    return {"kind": "other", "type": "None" if value is None else type(value).__name__}


def returned(fn: Callable, args: tuple):
    """The default ``output`` of a check: what ``fn(*args)`` returns, as :func:`to_data`."""
    return to_data(fn(*args))


@dataclass(frozen=True)
class Returned:
    """A result as the judge sees it, rebuilt from plain data only."""

    kind: str
    type_name: str = ""
    array: np.ndarray | None = None
    index: tuple[str, ...] = ()
    text: str = ""

    @classmethod
    def from_data(cls, data) -> Returned:
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind == "other":
            return cls("other", type_name=str(data.get("type", "?")))
        if kind == "text":
            return cls("text", "str", text=str(data.get("value", "")))
        if kind == "tuple":
            return cls("other", type_name="tuple")
        if kind not in ("array", "series"):
            raise CheckFailure("the check's record of your result is malformed")
        values = np.asarray(_float_list(data.get("values")), dtype=float)
        if kind == "series":
            index = data.get("index")
            if not isinstance(index, list) or len(index) != len(values):
                raise CheckFailure("the check's record of your result is malformed")
            return cls("series", "Series", values, tuple(str(i) for i in index))
        shape = data.get("shape")
        if not isinstance(shape, list) or math.prod(int(s) for s in shape) != values.size:
            raise CheckFailure("the check's record of your result is malformed")
        return cls("array", "ndarray", values.reshape([int(s) for s in shape]))

    def described(self) -> str:
        if self.kind == "other":
            return "None (did you forget to return?)" if self.type_name == "None" else f"a {self.type_name}"
        return {"text": "a string", "series": "a pandas Series"}.get(self.kind, "an array")


def _float_list(values) -> list[float]:
    if not isinstance(values, list):
        raise CheckFailure("the check's record of your result is malformed")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise CheckFailure("the check's record of your result is malformed") from None


def fmt(x, digits: int = 4, max_items: int = 6) -> str:
    """Format a number or array compactly, for a failure message."""
    arr = np.atleast_1d(np.asarray(x, dtype=float))
    items = [f"{v:.{digits}g}" for v in arr.ravel()[:max_items]]
    if np.ndim(x) == 0:
        return items[0]
    return "[" + ", ".join(items) + (", …" if arr.size > max_items else "") + "]"


def compare_arrays(got: Returned, expected, what: str, rtol=1e-6, atol=1e-8) -> None:
    """Type, then shape, then values; raise :class:`CheckFailure` at the first that fails."""
    expected = np.asarray(expected, dtype=float)
    if got.kind not in ("array", "series"):
        raise CheckFailure(f"type: {what} should be an array of numbers, got {got.described()}")
    arr = got.array
    if arr.shape != expected.shape:
        same = arr.size == expected.size and arr.squeeze().ndim <= 1
        raise CheckFailure(f"shape: {what} should have shape {expected.shape}, got {arr.shape}"
                           + (" (same numbers, wrong shape: flatten it with .ravel())" if same else ""))
    bad = ~np.isfinite(arr)  # (allowed where a mistake's output has them too)
    if bad.any() and not np.array_equal(bad, ~np.isfinite(expected)):
        raise CheckFailure(f"values: {what} should be {fmt(expected)}, got NaN or infinite values: {fmt(arr)}")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol, equal_nan=True):
        reordered = arr.ndim == 1 and np.allclose(np.sort(arr), np.sort(expected), rtol=rtol, atol=atol)
        raise CheckFailure(f"values: {what} should be {fmt(expected)}, got {fmt(arr)}",
                           "right values in the wrong order: check the order the task asks for."
                           if reordered else "")


def compare_data(got, expected, what: str, rtol=1e-6, atol=1e-8) -> None:
    """Compare a result's plain data with the expected plain data (:func:`to_data`'s kinds,
    a Series by its labels in any order, a tuple item by item; any other dict key by key)."""
    kind = expected.get("kind") if isinstance(expected, dict) else None
    if kind == "tuple":
        items = got.get("items") if isinstance(got, dict) and got.get("kind") == "tuple" else None
        n = len(expected["items"])
        if not isinstance(items, list) or len(items) != n:
            came = Returned.from_data(got).described() if isinstance(got, dict) and "kind" in got else "something else"
            raise CheckFailure(f"type: {what} should return a tuple of {n} values, got {came}")
        for k, (g, e) in enumerate(zip(items, expected["items"])):
            compare_data(g, e, f"item {k} of {what}", rtol, atol)
        return
    if kind == "text":
        g = Returned.from_data(got)
        if g.kind != "text" or g.text != expected["value"]:
            came = repr(g.text) if g.kind == "text" else g.described()
            raise CheckFailure(f"values: {what} should be {expected['value']!r}, got {came}")
        return
    if kind in ("array", "series"):
        want, g = Returned.from_data(expected), Returned.from_data(got)
        if kind == "series":
            if g.kind != "series":
                raise CheckFailure(f"type: {what} should be a pandas Series indexed by "
                                   f"{expected.get('by', 'label')}, got {g.described()}")
            if sorted(g.index) != sorted(want.index) or len(set(g.index)) != len(g.index):
                raise CheckFailure(f"index: {what} should have one value for each of the {len(want.index)} "
                                   f"labels {sorted(want.index)[:6]}, got {len(g.index)} values labelled "
                                   f"{sorted(g.index)[:6]}")
            order = {k: i for i, k in enumerate(g.index)}
            g = Returned("array", array=g.array[[order[k] for k in want.index]])
        compare_arrays(g, want.array, what, rtol, atol)
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            raise CheckFailure(f"values: {what} is not what the check can read")
        for key in expected:
            compare_data(got[key], expected[key], f"{key} of {what}", rtol, atol)
        return
    if isinstance(expected, str) or expected is None or isinstance(expected, bool):
        if got != expected:
            raise CheckFailure(f"values: {what} should be {expected!r}, got {got!r}")
        return
    compare_arrays(Returned("array", array=np.asarray(_float_list(list(np.ravel([got]))), dtype=float)
                            .reshape(np.shape(got))), expected, what, rtol, atol)


def same(got, other, rtol=1e-6, atol=1e-8) -> bool:
    """Whether a result's plain data equals another's (how a declared mistake is recognised)."""
    try:
        compare_data(got, other, "", rtol, atol)
    except Exception:  # CheckFailure, or data that cannot be read: not this mistake
        return False
    return True


# ----------------------------------------------------------------------------------------
# Running the answer on each case in the kernel; reading the record back, untrusted.


#: Seconds one case may take in the student's kernel before the check gives up on it.
CASE_TIME_LIMIT = 30.0


class CaseTimeout(Exception):
    """The student's code ran past a case's time limit."""


class time_limit:  # noqa: N801 - used as a context manager
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (wall clock), by ``SIGALRM``
    in the main thread of a Unix process (a kernel runs cells there); elsewhere no limit
    applies (the grader's per-cell timeout still stops the code)."""

    def __init__(self, seconds: float):
        self.seconds, self.active = seconds, False

    def _expired(self, signum, frame):
        raise CaseTimeout(f"ran longer than {self.seconds:g} s")

    def __enter__(self):
        if (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
                and signal.getitimer(signal.ITIMER_REAL)[0] == 0):
            self.previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.active = True
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def collect_cases(chk, answer, run_one: Callable[[Any, Case], Any], key: str) -> dict:
    """Run ``run_one(answer, case)`` on each of ``chk.cases()``; plain data under ``key``.
    Stops at the first case that raises (``NotImplementedError`` marks the stub)."""
    record: dict[str, Any] = {"part": chk.part, key: []}
    if not callable(answer):
        record["error"] = f"{chk.function} should be a function, got {type(answer).__name__}"
        return record
    limit = float(getattr(chk, "time_limit", CASE_TIME_LIMIT))
    for case in chk.cases():
        try:
            with time_limit(limit):
                record[key].append(run_one(answer, copy.deepcopy(case)))
        except NotImplementedError:
            record["not_implemented"] = True
            return record
        except CaseTimeout:
            record["error"] = (f"{chk.function} ran longer than {limit:g} s on {case.label}: "
                               "the check expected an answer well within that time")
            return record
        except Exception as err:  # the student's code may raise anything
            record["error"] = f"{chk.function} raised {f'{type(err).__name__}: {err}'[:300]} on {case.label}"
            return record
    return record


def read_collected(chk, collected, key: str, n_cases: int, error_hints=()) -> list | Verdict:
    """The per-case records of a collected dict, or the verdict that ends judging early.
    ``error_hints`` are ``(words, hint)`` pairs: an error whose text holds the words gets the hint."""
    if not isinstance(collected, dict):
        return chk.verdict("error", "the check could not read your results")
    if collected.get("not_implemented"):
        return chk.verdict("not-implemented", f"{chk.function} still raises NotImplementedError: "
                                              "replace the stub with your solution.")
    if collected.get("error"):
        text = str(collected["error"])[:400]
        return chk.verdict("error", text, next((h for w, h in error_hints if w in text), ""))
    records = collected.get(key)
    if not isinstance(records, list) or len(records) != n_cases:
        return chk.verdict("error", "the check could not read your results")
    return records


# ----------------------------------------------------------------------------------------
# Reference outputs, computed once per process: a batch judges every submission on the same
# cases, so the references repeat. functools.lru_cache cannot key on arrays or data frames;
# joblib.hash keys them by content (and functions, which it cannot pickle, by identity).


def _read_only(value):
    """Arrays in a shared answer are made read-only, so no caller can change it for the next."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for item in value:
            _read_only(item)
    return value


_MEMO: OrderedDict = OrderedDict()
_MEMO_LOCK = threading.Lock()
_KEY_LOCKS: dict = {}
MEMO_SIZE = 256


def memo_call(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` computed once per distinct input, for a pure ``fn``. Threads
    asking for the same answer wait for one computation; a failure is not remembered; the
    :data:`MEMO_SIZE` most recently used answers are kept."""
    try:
        key = (fn, *filter(callable, args), joblib.hash(([a for a in args if not callable(a)], kwargs)))
    except Exception:  # an argument that cannot be pickled: no cache
        return fn(*args, **kwargs)
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        try:
            with _MEMO_LOCK:
                if key in _MEMO:
                    return _MEMO[key]
            value = _read_only(fn(*args, **kwargs))
            with _MEMO_LOCK:
                _MEMO[key] = value
                while len(_MEMO) > MEMO_SIZE:
                    _MEMO.popitem(last=False)
            return value
        finally:
            with _MEMO_LOCK:
                _KEY_LOCKS.pop(key, None)


def reference_cache(fn: Callable) -> Callable:
    """Decorator: cache a pure reference computation with :func:`memo_call`."""
    return functools.wraps(fn)(lambda *args, **kwargs: memo_call(fn, *args, **kwargs))


# ----------------------------------------------------------------------------------------
# The declaration of a part's check.


@dataclass(frozen=True)
class Case:
    """One input the check draws: the arguments, and a short description for messages."""

    args: tuple
    label: str


_DRAWN: dict = {}
_DRAWN_LOCK = threading.Lock()


def drawn_cases(draw: Callable[[np.random.Generator], Sequence[Case]], seed: int) -> tuple[Case, ...]:
    """``draw(np.random.default_rng(seed))``, drawn once per process; the shared cases'
    arrays are read-only (``collect`` hands the student a deep copy of each case)."""
    with _DRAWN_LOCK:
        if (draw, int(seed)) not in _DRAWN:
            cases = tuple(draw(np.random.default_rng(seed)))
            for case in cases:
                _read_only(case.args)
            _DRAWN[draw, int(seed)] = cases
        return _DRAWN[draw, int(seed)]


def _output_of(output: Callable, fn: Callable, args: tuple):
    return output(fn, copy.deepcopy(args))


@dataclass
class FunctionCheck(Check):
    """A part's check, declared: run the student's function on drawn cases and compare its
    output with the reference implementation's.

    Parameters
    ----------
    part, points, function : str, float, str
        Part id, points for a pass, and the name the student knows the function by.
    draw : callable(rng) -> list of Case
        The inputs, deterministic given the generator, well-conditioned for every seed
        (the grader draws hidden cases from it).
    reference : callable
        A right implementation, with the student's signature.
    output : callable(fn, args) -> plain data
        Runs ``fn`` (the answer, the reference, a mistake) on one case's ``args`` and
        describes the result as JSON data (default :func:`returned`). Shipped code: it
        must live in a module of this package that is not an ``exNN``.
    compare : callable(got, expected, what, args), optional
        Raises :class:`CheckFailure` (with a hint when it can tell why) when the plain data
        ``got`` is wrong; default :func:`compare_data` with ``tolerance``. Shipped code.
    mistakes : list of (callable, str)
        Known mistakes, as wrong implementations with the student's signature, and their
        hints: a result equal to a mistake's output gets its hint.
    valid : list of callable
        Other valid implementations (another method or convention): a result that
        compares equal to one of their outputs passes.
    error_hints : list of (str, str)
        ``(words, hint)``: an exception whose text holds ``words`` gets ``hint``.
    seed : int
        Seed of the public cases.
    hidden : bool
        Whether the grader judges the part on hidden cases (:meth:`Check.for_seed`).
    public : {"stored", "written"}
        In a student tree: ``"stored"``, the public cases with the outputs of the
        reference, the valid alternatives and the mistakes stored at release time (✔/✘
        and the hint at once); ``"written"``, only whether the answer is written.
    tolerance : (float, float)
        ``(rtol, atol)`` of the default comparison.
    time_limit : float
        Seconds one case may run in the student's kernel.
    success : str
        Message of a pass; ``{function}`` and ``{n}`` (number of cases) are filled in.
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
    public: str = "stored"
    tolerance: tuple[float, float] = (1e-6, 1e-8)
    time_limit: float = CASE_TIME_LIMIT
    success: str = "{function} gives the right answer on {n} inputs the check drew."

    def cases(self) -> Sequence[Case]:
        return drawn_cases(self.draw, self.seed)

    def collect(self, answer=None, *extra) -> dict:
        return collect_cases(self, answer, lambda fn, case: self.output(fn, case.args), "outputs")

    def outputs(self, index: int, case: Case, keys=("expected", "valid", "mistakes")) -> dict:
        """The outputs one case is judged against: ``expected`` (the reference's), ``valid``
        and ``mistakes`` (``[output, hint]`` pairs; a mistake that raises on this case is
        left out), each computed once per process and only when asked for."""
        def run(fn):
            return memo_call(_output_of, self.output, fn, case.args)

        def applicable(wrong, hint):
            try:
                return [[run(wrong), hint]]
            except Exception:  # a mistake that does not apply to this case
                return []

        makers = {"expected": lambda: run(self.reference), "valid": lambda: [run(v) for v in self.valid],
                  "mistakes": lambda: [m for w, h in self.mistakes for m in applicable(w, h)]}
        return {key: makers[key]() for key in keys}

    def _compare(self, got, expected, what: str, args: tuple) -> None:
        if self.compare is not None:
            self.compare(got, expected, what, args)
        else:
            compare_data(got, expected, what, *self.tolerance)

    def judge(self, collected) -> Verdict:
        cases = self.cases()
        outputs = read_collected(self, collected, "outputs", len(cases), self.error_hints)
        if isinstance(outputs, Verdict):
            return outputs
        for index, (case, got) in enumerate(zip(cases, outputs)):
            what = f"{self.function}(…) on {case.label}"
            try:
                self._compare(got, self.outputs(index, case, ["expected"])["expected"], what, case.args)
            except CheckFailure as failure:
                want = self.outputs(index, case, ["valid", "mistakes"])
                if any(self._agrees(got, other, what, case.args) for other in want["valid"]):
                    continue
                hint = next((h for wrong, h in want["mistakes"] if same(got, wrong, *self.tolerance)), "") \
                    or failure.hint
                return self.verdict("failed", str(failure), hint)
            except Exception:  # malformed or forged records never pass
                return self.verdict("error", f"the check could not read what {self.function} returned")
        return self.verdict("passed", self.success.format(function=self.function, n=len(cases)))

    def _agrees(self, got, other, what: str, args: tuple) -> bool:
        try:
            self._compare(got, other, what, args)
        except Exception:
            return False
        return True


# ----------------------------------------------------------------------------------------
# Public cases stored in a student tree (made by course_lib.release): inputs as JSON data.


def encode(x):
    """A case's argument as JSON data (:func:`decode` rebuilds it): arrays as base64 ``.npy``."""
    if isinstance(x, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, x, allow_pickle=False)
        return {"npy": base64.b64encode(buf.getvalue()).decode("ascii")}
    if isinstance(x, pd.DataFrame):
        cats = {str(c): x[c].cat.categories.tolist() for c in x.columns
                if isinstance(x[c].dtype, pd.CategoricalDtype)}
        return {"df": {str(c): x[c].tolist() for c in x.columns}, "index": x.index.tolist(),
                "dtypes": {str(c): str(x[c].dtype) for c in x.columns}, "categories": cats}
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
        items = [decode(v) for v in x["seq"]]
        return tuple(items) if x.get("tuple") else items
    if "map" in x:
        return {k: decode(v) for k, v in x["map"].items()}
    frame = pd.DataFrame(x["df"], index=x["index"])
    for col, dtype in x["dtypes"].items():
        cats = x["categories"].get(col)
        frame[col] = pd.Categorical(frame[col], categories=cats) if cats is not None else frame[col].astype(dtype)
    return frame


def qualname(fn: Callable) -> str:
    """``module:name`` of a shipped function (what a student tree imports it by)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def shipped(fn: Callable) -> Callable:
    """The function ``module:name`` names, from a shipped module of this package."""
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        if not re.fullmatch(r"course_lib\.checks\.(?!ex\d)\w+", module):
            raise ValueError(f"{fn!r} is not in a shipped module of course_lib.checks")
        import importlib

        return getattr(importlib.import_module(module), name)
    return fn


@dataclass
class StoredCheck(FunctionCheck):
    """A part's check in a student tree: its public cases and the outputs to judge them
    against, stored at release time; the same judge as :class:`FunctionCheck`."""

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
    """What a student tree stores of a part: its public cases' inputs and outputs, and how
    its results are read and compared (``module:name`` of shipped functions)."""
    for fn in (chk.output, chk.compare):
        if fn is not None:
            shipped(qualname(fn))  # refuses a function from an exNN module or a lambda
    cases = [{"label": c.label, "args": [encode(a) for a in c.args], **chk.outputs(i, c)}
             for i, c in enumerate(chk.cases())]
    return {"points": chk.points, "function": chk.function, "output": qualname(chk.output),
            "compare": qualname(chk.compare) if chk.compare else None,
            "error_hints": [list(p) for p in chk.error_hints], "tolerance": list(chk.tolerance),
            "time_limit": chk.time_limit, "success": chk.success, "cases": cases}
