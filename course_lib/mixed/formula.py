r"""Reading an lme4 formula: response, fixed part, random-effects terms and offsets.

``y ~ 1 + x + (1 + x | g) + offset(log(t))`` is split at the top-level ``+`` and ``-`` signs:
each parenthesised term containing ``|`` becomes a :class:`RandomTerm` ``(lhs | g)``; every
``offset(expr)`` is kept apart and added to the linear predictor with coefficient 1; the rest
is the fixed part, handed to patsy in R's syntax (``^`` becomes ``**``, so ``I(day^2)`` is day
squared, as in R).

R's nesting and independence operators are expanded as lme4 expands them:

- ``(1 | a/b)`` is ``(1 | a) + (1 | b:a)`` (lme4's ``expandSlash`` names the interaction inner
  factor first, which sets the printed name and the order of its levels);
- ``(1 + x || g)`` is ``(1 | g) + (0 + x | g)``: independent intercept and slope.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | g1:g2...)`` of an lme4 formula."""

    lhs: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """The grouping factor as lme4 names it, e.g. ``'Side:Dog'``."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        return f"({self.lhs} | {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into response, fixed part and random terms (patsy syntax)."""

    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    text: str
    offsets: tuple[str, ...] = ()


_NAME = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_.]*")
# Names patsy itself provides inside a formula (contrasts, transforms), never columns.
_PATSY_NAMES = {"Sum", "Treatment", "Poly", "Helmert", "Diff", "np", "center",
                "standardize", "scale", "TRUE", "FALSE"}


def _malformed(formula: str, why: str) -> ValueError:
    return ValueError(f"malformed formula {formula!r}: {why}")


def _split_top_level(text: str, formula: str, seps: str = "+-") -> list[tuple[str, str]]:
    """Split ``text`` at the operators in ``seps`` outside parentheses: [(sign, summand)]."""
    parts, depth, sign, start = [], 0, "+", 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _malformed(formula, "a ')' has no matching '('")
        elif depth == 0 and ch in seps and not _is_exponent_sign(text, i):
            parts.append((sign, text[start:i].strip()))
            sign, start = ch, i + 1
    if depth != 0:
        raise _malformed(formula, "a '(' is not closed")
    parts.append((sign, text[start:].strip()))
    if parts[0] == ("+", "") and len(parts) > 1 and parts[1][0] == "-":
        parts = parts[1:]  # a leading minus, as in "-1 + x"
    for sign, part in parts:
        if not part:
            raise _malformed(formula, f"an empty term next to '{sign}'")
    return parts


def _is_exponent_sign(text: str, i: int) -> bool:
    """True for the sign in a number such as ``1e-3``, which is not an operator."""
    return i >= 2 and text[i - 1] in "eE" and text[i - 2].isdigit()


def _random_term(inner: str, formula: str) -> list[RandomTerm]:
    """Read the inside of ``( lhs | g )`` or ``( lhs || g )`` into one or more terms."""
    double = "||" in inner
    lhs, _, group = inner.partition("||" if double else "|")
    lhs, group = lhs.strip(), group.strip()
    if not lhs or not group or "|" in group:
        raise _malformed(formula, f"random term '({inner})' must read (terms | group)")
    # R's nesting operator: (1 | a/b) means (1 | a) + (1 | b:a), and (1 | a/b/c) adds
    # (1 | c:b:a). lme4 (its expandSlash) names the interaction inner factor first, which
    # sets the printed group name and the order of its levels (b slowest).
    nests = [g.strip() for g in group.split("/")]
    groups = [tuple(f.strip() for f in ":".join(reversed(nests[: k + 1])).split(":"))
              for k in range(len(nests))]
    for factors in groups:
        for f in factors:
            if not _NAME.fullmatch(f):
                raise _malformed(formula, f"grouping factor '{f}' in '({inner})' is not a "
                                          "column name")
    if not double:
        return [RandomTerm(lhs, factors) for factors in groups]
    # (1 + x || g): independent terms (1 | g) + (0 + x | g)
    pieces = _split_top_level(lhs, formula)
    names = [p for s, p in pieces if s == "+" and p not in ("0", "1")]
    intercept = not any((s == "+" and p == "0") or (s == "-" and p == "1") for s, p in pieces)
    lhss = (["1"] if intercept else []) + [f"0 + {p}" for p in names]
    return [RandomTerm(lhs_k, factors) for factors in groups for lhs_k in lhss]


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into its response, fixed part and random-effects terms.

    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"Reaction ~ 1 + Days + (1 + Days | Subject)"``.

    Returns
    -------
    ParsedFormula
        ``response`` and ``fixed`` in patsy syntax (R's ``^`` becomes ``**``, so
        ``I(day^2)`` is day squared) and ``random``, the terms ``(lhs | group)`` in order.

    Raises
    ------
    ValueError
        If the formula is not a string, lacks a single ``~``, has unbalanced parentheses,
        an empty term, or a random term that does not read ``(terms | group)``.
    """
    if not isinstance(formula, str):
        raise ValueError(f"formula must be a string, got {type(formula).__name__}")
    if formula.count("~") != 1:
        raise _malformed(formula, "it needs exactly one '~' between response and terms")
    lhs, rhs = (s.strip() for s in formula.replace("^", "**").split("~"))
    if not lhs or not rhs:
        raise _malformed(formula, "the response or the terms are missing")
    fixed, random, offsets = [], [], []
    for sign, part in _split_top_level(rhs, formula):
        inner = part[1:-1] if part.startswith("(") and part.endswith(")") else None
        if inner is not None and "|" in inner and _closes_at_end(part):
            if sign == "-":
                raise _malformed(formula, f"a random term cannot be subtracted: '- {part}'")
            random.extend(_random_term(inner, formula))
        elif "|" in part:
            raise _malformed(formula, f"'|' outside a random term '(terms | group)' in "
                                      f"'{part}'")
        elif sign == "-" and part == "1":
            fixed.insert(0, "0")  # R's "- 1": no intercept
        elif part.startswith("offset(") and _closes_at_end(part[6:]):
            if sign == "-":
                raise _malformed(formula, f"an offset cannot be subtracted: '- {part}'")
            offsets.append(part[7:-1].strip())
        else:
            fixed.append(f"{sign} {part}")
    fixed_text = " ".join(fixed).lstrip("+ ") if fixed else "1"
    return ParsedFormula(lhs, fixed_text, tuple(random), formula, tuple(offsets))


def cbind_parts(response: str) -> tuple[str, str] | None:
    """lme4's binomial response ``cbind(successes, failures)`` as its two expressions; None
    for any other response."""
    text = response.strip()
    if not (text.startswith("cbind(") and _closes_at_end(text[5:])):
        return None
    parts = [part for _, part in _split_top_level(text[6:-1], response, ",")]
    if len(parts) != 2:
        raise _malformed(response, f"cbind(successes, failures) takes two columns, got "
                                   f"{len(parts)}")
    return parts[0], parts[1]


def _closes_at_end(part: str) -> bool:
    """True when the '(' at the start of ``part`` is closed by its last character."""
    depth = 0
    for i, ch in enumerate(part):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(part) - 1
    return False


def _names_in(text: str) -> list[str]:
    """Names in a formula fragment that must be columns: every name not called as a
    function or used as a module (``np.log``)."""
    names = []
    for m in _NAME.finditer(text):
        after = text[m.end():].lstrip()
        if (after.startswith(("(", ".")) or keyword.iskeyword(m.group())
                or m.group() in _PATSY_NAMES or re.match(r"=(?!=)", after)):  # a keyword argument
            continue
        names.append(m.group())
    return names


def _used_columns(parsed: ParsedFormula, response: bool = True, random: bool = True
                  ) -> list[str]:
    """The data columns a formula uses, in order of first appearance."""
    names = _names_in(parsed.response) if response else []
    names += _names_in(parsed.fixed)
    for off in parsed.offsets:
        names += _names_in(off)
    if random:
        for term in parsed.random:
            names += _names_in(term.lhs) + list(term.factors)
    return list(dict.fromkeys(names))
