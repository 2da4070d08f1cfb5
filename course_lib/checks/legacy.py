"""TEMPORARY: the check machinery before the declarative format of :mod:`course_lib.checks.core`,
kept only while exercises 2, 4 and 5 are ported (then deleted).

See :mod:`course_lib.checks` for the two-step design (``collect`` in the student's
kernel, ``judge`` wherever the grader trusts). Everything ``collect`` returns is plain,
JSON-serialisable data, and ``judge`` treats it as untrusted input.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import math
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from course_lib.checks.core import (  # noqa: F401  the shared registry and verdicts
    STATUSES, Check, CheckFailure, Verdict, get_check, hidden_seed, list_checks, register)


# ----------------------------------------------------------------------------------------
# Turning a student's return value into plain data, and back.


def to_data(value) -> dict:
    """Describe a returned value as JSON-serialisable data (run in the student's kernel)."""
    if isinstance(value, pd.Series):
        try:
            values = np.asarray(value.to_numpy(), dtype=float)
        except (TypeError, ValueError):
            return _other(value)
        return {
            "kind": "series",
            "index": [str(i) for i in value.index],
            "values": values.tolist(),
        }
    if isinstance(value, (pd.DataFrame, dict, str, bytes)) or value is None:
        return _other(value)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return _other(value)
    return {"kind": "array", "shape": list(arr.shape), "values": arr.ravel().tolist()}


def _other(value) -> dict:
    return {"kind": "other", "type": "None" if value is None else type(value).__name__}


@dataclass(frozen=True)
class Returned:
    """A student's return value as the judge sees it: rebuilt from plain data only."""

    kind: str
    type_name: str = ""
    array: np.ndarray | None = None
    index: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data) -> Returned:
        if not isinstance(data, dict) or data.get("kind") not in ("array", "series", "other"):
            raise CheckFailure("the check's record of your result is malformed")
        kind = data["kind"]
        if kind == "other":
            return cls("other", type_name=str(data.get("type", "?")))
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
    more = ", …" if arr.size > max_items else ""
    if np.ndim(x) == 0:
        return items[0]
    return "[" + ", ".join(items) + more + "]"


def compare_arrays(got: Returned, expected, what: str, rtol=1e-6, atol=1e-8) -> None:
    """Type, then shape, then values; raise :class:`CheckFailure` at the first that fails."""
    expected = np.asarray(expected, dtype=float)
    if got.kind == "other":
        got_what = "None (did you forget to return?)" if got.type_name == "None" else f"a {got.type_name}"
        raise CheckFailure(f"type: {what} should be an array of numbers, got {got_what}")
    arr = got.array
    if arr.shape != expected.shape and arr.size == expected.size and arr.squeeze().ndim <= 1:
        raise CheckFailure(
            f"shape: {what} should have shape {expected.shape}, got {arr.shape} "
            "(same numbers, wrong shape: flatten it with .ravel())"
        )
    if arr.shape != expected.shape:
        raise CheckFailure(f"shape: {what} should have shape {expected.shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CheckFailure(f"values: {what} contains NaN or infinite values: {fmt(arr)}")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol):
        raise CheckFailure(f"values: {what} should be {fmt(expected)}, got {fmt(arr)}")


def compare_series(got: Returned, expected: pd.Series, what: str, rtol=1e-6, atol=1e-6) -> None:
    """A Series matched by its labels (in any order), then :func:`compare_arrays`."""
    if got.kind != "series":
        kind = "an array" if got.kind == "array" else f"a {got.type_name}"
        raise CheckFailure(f"type: {what} should be a pandas Series indexed by "
                           f"{expected.index.name or 'label'}, got {kind}")
    want = {str(k): float(v) for k, v in expected.items()}
    if len(got.index) != len(want) or set(got.index) != set(want):
        raise CheckFailure(
            f"index: {what} should have one value for each of the {len(want)} labels "
            f"{sorted(want)}, got {len(got.index)} values labelled {sorted(got.index)[:6]}"
        )
    aligned = Returned("array", array=np.array([got.array[got.index.index(k)] for k in want]))
    compare_arrays(aligned, list(want.values()), what, rtol=rtol, atol=atol)


def matches(got: Returned, value, rtol=1e-6, atol=1e-8) -> bool:
    """Whether a returned result equals ``value`` (a Series by its labels, else
    :func:`close_to`): how a declared mistake is recognised."""
    if isinstance(value, pd.Series):
        if got.kind != "series" or sorted(got.index) != sorted(map(str, value.index)):
            return False
        value = value.set_axis(value.index.map(str))[list(got.index)].to_numpy()
    return close_to(got, value, rtol, atol)


# ----------------------------------------------------------------------------------------
# The loop every case-based check shares: run the answer on each drawn case in the kernel,
# then read the record back, untrusted, before judging it.


#: Seconds one case may take in the student's kernel before the check gives up on it.
CASE_TIME_LIMIT = 30.0


class CaseTimeout(Exception):
    """The student's code ran past a case's time limit."""


class time_limit:  # noqa: N801 - used as a context manager
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (wall clock).

    Uses ``SIGALRM``, so it applies in the main thread of a Unix process (a notebook
    kernel runs cells there); elsewhere the block runs without a limit (the grader's
    per-cell timeout still stops it).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = False

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

    Stops at the first case whose code raises: ``NotImplementedError`` marks the stub, any
    other exception is recorded with the case it happened on.
    """
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
            text = f"{type(err).__name__}: {err}"
            record["error"] = f"{chk.function} raised {text[:300]} on {case.label}"
            return record
    return record


def read_collected(chk, collected, key: str, n_cases: int,
                   error_hint: Callable[[str], str] | None = None) -> list | Verdict:
    """The per-case records of a collected dict, or the verdict that ends judging early."""
    if not isinstance(collected, dict):
        return chk.verdict("error", "the check could not read your results")
    if collected.get("not_implemented"):
        return chk.verdict(
            "not-implemented",
            f"{chk.function} still raises NotImplementedError: "
            "replace the stub with your solution.",
        )
    if collected.get("error"):
        text = str(collected["error"])[:400]
        return chk.verdict("error", text, (error_hint(text) if error_hint else "") or "")
    records = collected.get(key)
    if not isinstance(records, list) or len(records) != n_cases:
        return chk.verdict("error", "the check could not read your results")
    return records


# ----------------------------------------------------------------------------------------
# Reference answers, computed once per batch.
#
# The grader judges every submission of a class against the same drawn cases, so the
# reference answers (statsmodels GLMs, lmer fits) repeat. functools.lru_cache cannot key on
# arrays or data frames, hence this small content-keyed cache: the key is a BLAKE2 digest of
# the arguments' bytes, so equal inputs share an answer and any change of input misses.


class _Uncachable(TypeError):
    pass


def _digest(h, obj) -> None:
    """Feed ``obj`` to the hash ``h``; raise :class:`_Uncachable` for unknown types."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise _Uncachable(obj.dtype)
        h.update(f"nd{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (pd.DataFrame, pd.Series)):
        h.update(f"pd{type(obj).__name__}{list(map(str, obj.dtypes if obj.ndim == 2 else [obj.dtype]))}"
                 f"{list(obj.columns) if obj.ndim == 2 else obj.name}".encode())
        h.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, (tuple, list)):
        h.update(f"{type(obj).__name__}[{len(obj)}".encode())
        for item in obj:
            _digest(h, item)
        h.update(b"]")
    elif isinstance(obj, dict):
        h.update(f"dict{{{len(obj)}".encode())
        for key in sorted(obj, key=repr):
            _digest(h, key)
            _digest(h, obj[key])
        h.update(b"}")
    else:
        raise _Uncachable(type(obj))


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
    """``fn(*args, **kwargs)``, computed once per distinct input for a pure function ``fn``.

    Arguments are keyed by content (arrays, data frames, numbers, strings, and tuples,
    lists and dicts of these); a call with any other argument is not cached. Threads that
    ask for the same answer at once wait for one computation. At most :data:`MEMO_SIZE`
    answers are kept (least recently used first out).
    """
    h = hashlib.blake2b(digest_size=20)
    try:
        _digest(h, (args, kwargs))
    except TypeError:  # _Uncachable, or pandas cannot hash a column (e.g. of lists)
        return fn(*args, **kwargs)
    key = (fn, h.digest())
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _MEMO_LOCK:
            if key in _MEMO:
                return _MEMO[key]
        try:
            value = _read_only(fn(*args, **kwargs))
        except BaseException:  # nothing to keep: forget the key's lock too
            with _MEMO_LOCK:
                _KEY_LOCKS.pop(key, None)
            raise
        with _MEMO_LOCK:
            _MEMO[key] = value
            _KEY_LOCKS.pop(key, None)
            while len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    return value


def reference_cache(fn: Callable) -> Callable:
    """Decorator: cache a pure reference function with :func:`memo_call`."""

    @functools.wraps(fn)
    def cached(*args, **kwargs):
        return memo_call(fn, *args, **kwargs)

    return cached


# ----------------------------------------------------------------------------------------
# The common kind of check: call a student's function on drawn cases.


@dataclass(frozen=True)
class Case:
    """One input the check draws: the arguments, and a short description for messages."""

    args: tuple
    label: str


def drawn_cases(draw: Callable[[np.random.Generator], Sequence[Case]], seed: int) -> tuple[Case, ...]:
    """``draw(np.random.default_rng(seed))``, drawn once per process and shared read-only.

    A check's cases depend on its seed only, and some draws fit models to choose them, so
    the judge of a batch draws them once. The arrays of the shared cases are read-only:
    ``collect`` hands the student a deep copy of each case.
    """
    key = (draw, int(seed))
    with _DRAWN_LOCK:
        if key not in _DRAWN:
            cases = tuple(draw(np.random.default_rng(seed)))
            for case in cases:
                _read_only(case.args)
            _DRAWN[key] = cases
        return _DRAWN[key]


_DRAWN: dict = {}
_DRAWN_LOCK = threading.Lock()


Diagnosis = Callable[[Returned, Any, tuple], "str | None"]


@dataclass
class FunctionCheck(Check):
    """Check a student's function against a reference on cases drawn from a fixed seed.

    Parameters
    ----------
    part : str
        Part id.
    points : float
        Points for a pass.
    function : str
        The name the student knows the function by, used in messages.
    draw : callable(rng) -> list of Case
        Draws the inputs; must be deterministic given the generator.
    reference : callable(*args)
        The right answer for one case, computed with a trusted library.
    compare : callable(got, expected, what), optional
        Raises :class:`CheckFailure` when ``got`` is wrong; by default
        :func:`compare_arrays` with ``tolerance``.
    tolerance : (float, float)
        ``(rtol, atol)`` of the default comparison, and of the student tree's.
    diagnoses : list of callable(got, expected, args) -> str or None
        Recognisers for known mistakes; the first that returns a string gives the hint.
    valid : list of callable(*args)
        Other valid answers (another valid method or convention): a result that matches
        one of them passes, compared as with the reference.
    mistakes : list of (callable(*args), str)
        Known mistakes declared as the wrong answer they compute and their hint: a result
        that matches ``wrong(*args)`` (:func:`close_to`) gets the hint. Tried after
        ``diagnoses``.
    seed : int
        Seed of the generator handed to ``draw`` for the public cases; the grader draws
        hidden cases from the same ``draw`` (:meth:`Check.for_seed`), so ``draw`` must
        give well-conditioned cases for every seed.
    time_limit : float
        Seconds one case may run in the student's kernel.
    hidden : bool
        Whether the grader judges the part on hidden cases (:meth:`Check.for_seed`);
        declare it once ``draw`` is proven well-conditioned on many seeds.
    public : str
        What a student copy without the checks' code can tell (:mod:`course_lib.release`):
        ``"stored"``, the public cases with their expected outputs and the outputs of the
        declared ``mistakes``, stored at release time (✔/✘ and the hint); ``"written"``,
        only whether the answer is written (judged when handed in).
    success : str
        Message of a pass; ``{function}`` and ``{n}`` (number of cases) are filled in.
    """

    part: str
    points: float
    function: str
    draw: Callable[[np.random.Generator], Sequence[Case]]
    reference: Callable[..., Any]
    compare: Callable[[Returned, Any, str], None] | None = None
    diagnoses: list[Diagnosis] = field(default_factory=list)
    seed: int = 0
    success: str = "{function} gives the right answer on {n} inputs the check drew."
    mistakes: Sequence[tuple[Callable[..., Any], str]] = ()
    valid: Sequence[Callable[..., Any]] = ()
    time_limit: float = CASE_TIME_LIMIT
    tolerance: tuple[float, float] = (1e-6, 1e-8)
    hidden: bool = False
    public: str = "written"

    def compare_fn(self) -> Callable[[Returned, Any, str], None]:
        if self.compare is not None:
            return self.compare
        rtol, atol = self.tolerance

        def compare(got, expected, what):
            kind = compare_series if isinstance(expected, pd.Series) else compare_arrays
            kind(got, expected, what, rtol, atol)

        return compare

    def cases(self) -> Sequence[Case]:
        return drawn_cases(self.draw, self.seed)

    def collect(self, answer=None, *extra) -> dict:
        return collect_cases(self, answer, lambda fn, case: to_data(fn(*case.args)), "outputs")

    def judge(self, collected) -> Verdict:
        cases = self.cases()
        outputs = read_collected(self, collected, "outputs", len(cases))
        if isinstance(outputs, Verdict):
            return outputs
        for case, output in zip(cases, outputs):
            expected = memo_call(self.reference, *case.args)
            got = None
            what = f"{self.function}(…) on {case.label}"
            try:
                got = Returned.from_data(output)
                self.compare_fn()(got, expected, what)
            except CheckFailure as failure:
                if got is not None and any(self._agrees(got, memo_call(v, *case.args), what)
                                           for v in self.valid):
                    continue
                recognisers = [*self.diagnoses, *(_declared(w, h) for w, h in self.mistakes)]
                hint = next(
                    (h for d in recognisers if (h := _safe(d, got, expected, case.args))),
                    "",
                )
                return self.verdict("failed", str(failure), hint)
        return self.verdict("passed", self.success.format(function=self.function, n=len(cases)))

    def _agrees(self, got: Returned, other, what: str) -> bool:
        try:
            self.compare_fn()(got, other, what)
        except CheckFailure:
            return False
        return True


def _declared(wrong: Callable[..., Any], hint: str) -> Diagnosis:
    """A recogniser for a mistake declared as the wrong answer it computes."""
    return lambda got, expected, args: hint if matches(got, wrong(*args)) else None


def _safe(diagnosis: Diagnosis, got, expected, args):
    try:
        return diagnosis(got, expected, args)
    except Exception:  # a recogniser that does not apply to this output says nothing
        return None


def close_to(got: Returned, target, rtol=1e-6, atol=1e-8) -> bool:
    """Whether a returned array equals ``target`` (same shape, same values)."""
    target = np.asarray(target, dtype=float)
    return (
        got.array is not None
        and got.array.shape == target.shape
        and bool(np.allclose(got.array, target, rtol=rtol, atol=atol))
    )
