"""Assertions shared by the check tests (``test_checks*.py``): what a passing verdict and a
recognised mistake must look like to a student."""

from __future__ import annotations

from course_lib import checks


def assert_full_points(part: str, answer) -> None:
    """``answer`` passes ``part`` with all its points, and the printed verdict says so."""
    verdict = checks.run(part, answer)
    assert verdict.status == "passed", verdict
    assert verdict.points == verdict.max_points > 0
    assert str(verdict).startswith(f"✔ {part}")


def assert_fails_with_hint(part: str, wrong, hint_words: str) -> None:
    """``wrong`` fails ``part`` with no points, says what it should have got, and prints the
    hint for this mistake, which contains ``hint_words`` (empty: a mistake the check does
    not know, which must get no hint rather than a misleading one)."""
    verdict = checks.run(part, wrong)
    assert verdict.status == "failed" and verdict.points == 0, verdict
    assert "should" in verdict.message, verdict.message
    if not hint_words:
        assert verdict.hint == "", verdict.hint
        return
    assert hint_words in verdict.hint, verdict.hint
    assert f"Hint: {verdict.hint}" in str(verdict)
