"""course_grade (``course-grade``): every submission gets the right status and points,
check cells cannot be tampered with, the sandbox holds, and a killed batch resumes.

The unit tests of each step run anywhere. The corpus tests run the real command line on
the corpus of ``tests/grading_corpus/corpus.py`` (right answers, the chapter's mistakes,
broken files and hostile notebooks), killing the first run half-way; they need root and
bubblewrap, as CI has (``scripts/test.sh`` installs it), because that is the sandbox they
test. Expected points come from the exercise's own point values (``metadata.course``).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_lib import checks
from course_grade import integrity, manual
from course_grade.batch import judge_part
from course_grade.notebook import Assignment, AssignmentError, InvalidSubmission, read_submission
from course_grade.report import feedback_names, grades_csv
from course_grade.sandbox import processes_of, uid_range

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "exercises" / "01-regression.ipynb"
STUDENT = ROOT / "exercises" / "student" / "01-regression.ipynb"

_spec = importlib.util.spec_from_file_location("grading_corpus", ROOT / "tests" / "grading_corpus" / "corpus.py")
corpus = sys.modules["grading_corpus"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

SANDBOXED = os.geteuid() == 0 and shutil.which("bwrap") is not None
needs_sandbox = pytest.mark.skipif(
    not SANDBOXED, reason="needs root and bubblewrap (apt-get install bubblewrap), as in CI"
)
CELL_TIMEOUT, TIMEOUT = 20, 45


def load(path: Path = ASSIGNMENT) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def plan_of(nb: dict) -> list[tuple[str | None, str | None]]:
    plan = Assignment.load(ASSIGNMENT).plan(nb)
    return [(c.cell_id, c.part) for c in plan.cells]


def cell(nb: dict, cid: str) -> dict:
    return next(c for c in nb["cells"] if c.get("id") == cid)


# ----------------------------------------------------------------------------------------
# The assignment


def test_assignment_gives_parts_points_and_answer_names_from_its_check_cells():
    a = Assignment.load(ASSIGNMENT)
    assert [p.part for p in a.parts] == corpus.PARTS
    assert {p.part: p.points for p in a.parts} == corpus.FULL
    assert a.parts[0].names == ("fit_ols",) and a.parts[0].check_id == "ex1-fit-ols-check"
    assert a.max_total == 5  # 4 autograded points and the written part ex1-judgement (1)
    a.check_registry()  # the metadata's points agree with the registry


@pytest.mark.parametrize(
    "change,message",
    [
        ("student", "not an instructor notebook: its solution cells have no '### BEGIN SOLUTION'"),
        ("missing", "assignment notebook not found"),
        ("bad-check", "must be exactly checks.check"),
        ("no-points", "has no numeric metadata.course.points"),
    ],
)
def test_unusable_assignment_is_refused_with_the_reason(tmp_path, change, message):
    path = tmp_path / "a.ipynb"
    nb = load(STUDENT if change == "student" else ASSIGNMENT)
    if change == "bad-check":
        cell(nb, "ex1-predict-check")["source"] = "print(checks)"
    if change == "no-points":
        del cell(nb, "ex1-predict-check")["metadata"]["course"]["points"]
    if change != "missing":
        path.write_text(json.dumps(nb))
    with pytest.raises(AssignmentError, match=message.replace("(", r"\(")):
        Assignment.load(path)


def test_points_that_disagree_with_the_check_registry_are_refused(tmp_path):
    nb = load()
    cell(nb, "ex1-predict-check")["metadata"]["course"]["points"] = 2
    (tmp_path / "a.ipynb").write_text(json.dumps(nb))
    with pytest.raises(AssignmentError, match="'ex1-predict' is worth 2 points in the notebook's metadata but 0.5"):
        Assignment.load(tmp_path / "a.ipynb").check_registry()


# ----------------------------------------------------------------------------------------
# Planning the run: check cells restored, matched by id


def _deleted(nb):
    nb["cells"] = [c for c in nb["cells"] if not c["id"].endswith("-check")]


def _edited(nb):
    for c in nb["cells"]:
        if c["id"].endswith("-check"):
            c["source"] = "print('✔ 1/1')"


def _duplicated(nb):
    for c in list(nb["cells"]):
        if c["id"].endswith("-check"):
            k = nb["cells"].index(c)
            nb["cells"][k:k] = [copy.deepcopy(c), dict(copy.deepcopy(c), id=c["id"] + "-2")]
    nb["cells"].insert(0, dict(copy.deepcopy(cell(nb, "ex1-predict-check")), id="copied"))


def _moved(nb):
    checks_ = [c for c in nb["cells"] if c["id"].endswith("-check")]
    nb["cells"] = checks_[::-1] + [c for c in nb["cells"] if c not in checks_]


def _emptied(nb):
    for c in nb["cells"]:
        if c["id"].endswith("-check"):
            c["source"] = ""


@pytest.mark.parametrize("tamper", [_deleted, _edited, _duplicated, _moved, _emptied],
                         ids=lambda f: f.__name__.strip("_"))
def test_check_cells_are_restored_after_their_solutions_whatever_was_done_to_them(tamper):
    nb = load()
    want = plan_of(nb)
    tamper(nb)
    assert plan_of(nb) == want
    plan = Assignment.load(ASSIGNMENT).plan(nb)
    restored = [c.source for c in plan.cells if c.part]
    assert restored[0] == (
        '__import__("course_grade.kernel", fromlist=["emit"])'
        ".emit('ex1-fit-ols', globals(), 'fit_ols')"
    )
    assert not any("✔" in c.source for c in plan.cells)


def test_cells_a_student_added_before_a_check_still_run_before_it():
    nb = load()
    k = nb["cells"].index(cell(nb, "ex1-fit-ols"))
    nb["cells"].insert(k + 1, {"cell_type": "code", "id": "helper", "metadata": {},
                               "source": "def helper(): pass", "outputs": [], "execution_count": 1})
    nb["cells"].insert(k + 3, {"cell_type": "code", "id": "after", "metadata": {},
                               "source": "x = 1", "outputs": [], "execution_count": 2})
    order = [cid for cid, _ in plan_of(nb)]
    assert order[order.index("ex1-fit-ols"):][:4] == ["ex1-fit-ols", "helper", "ex1-fit-ols-check", "after"]
    _deleted(nb)  # without its check cell, the check goes after the student's added cells
    order = [cid for cid, _ in plan_of(nb)]
    assert order[order.index("ex1-fit-ols"):][:4] == ["ex1-fit-ols", "helper", "after", "ex1-fit-ols-check"]


def test_the_run_notebook_has_no_markdown_and_no_stored_outputs():
    plan = Assignment.load(ASSIGNMENT).plan(load())
    run = json.loads(plan.notebook_json())
    assert all(c["cell_type"] == "code" and c["outputs"] == [] and c["execution_count"] is None
               for c in run["cells"])
    assert len(run["cells"]) == len(plan.cells) == 14
    assert plan.check_index()["ex1-fit-ols"] == 2


def test_a_notebook_of_another_exercise_is_invalid():
    nb = load()
    for k, c in enumerate(nb["cells"]):
        c["id"] = f"other-{k}"
        c["metadata"] = {}
    with pytest.raises(InvalidSubmission, match="none of the assignment's cells"):
        Assignment.load(ASSIGNMENT).plan(nb)


# ----------------------------------------------------------------------------------------
# Validating a submission


def _nb_bytes(**changes) -> bytes:
    nb = load(STUDENT)
    nb.update(changes)
    return json.dumps(nb).encode()


@pytest.mark.parametrize(
    "data,words",
    [
        (b"", "the file is empty"),
        (b'{"cells": [', "not valid JSON"),
        (b'{"name": "x"}', "not a Jupyter notebook"),
        (b'{"nbformat": 3, "worksheets": []}', "nbformat 3"),
        (_nb_bytes(metadata={}), "no kernelspec"),
        (_nb_bytes(metadata={"kernelspec": {"name": "ir", "language": "R"}}), "not a Python kernel"),
        ('{"nbformat": 4, "cells": [], "metadata": {"x": "é"}}'.encode("latin-1"), "not UTF-8"),
        (_nb_bytes(cells={"a": 1}), "'cells' is not a list"),
        (_nb_bytes(cells=[{"cell_type": "code", "source": 5}]), "cell 1 of the notebook is malformed"),
    ],
    ids=["empty", "truncated", "not-notebook", "nbformat3", "no-kernelspec", "r-kernel",
         "latin-1", "cells-not-list", "bad-cell"],
)
def test_broken_files_are_invalid_with_a_reason(data, words):
    with pytest.raises(InvalidSubmission, match=words):
        read_submission(data)


def test_a_duplicated_cell_id_does_not_make_a_notebook_invalid():
    nb = load()
    nb["cells"].insert(3, copy.deepcopy(cell(nb, "ex1-fit-ols")))
    assert read_submission(json.dumps(nb).encode())["cells"][3]["id"] == "ex1-fit-ols"


# ----------------------------------------------------------------------------------------
# Judging, outside the kernel, from untrusted records


PART = Assignment.load(ASSIGNMENT).parts[0]  # ex1-fit-ols, 1 point


def _record(envelope) -> dict:
    return {"event": "cell", "index": 2, "error": None, "records": [json.dumps(envelope)]}


def test_a_genuine_record_of_a_right_answer_passes():
    collected = checks.get_check("ex1-fit-ols").collect(lambda X, y: __import__("numpy").linalg.lstsq(X, y, rcond=None)[0])
    result = judge_part(PART, _record({"collected": collected}))
    assert result["status"] == "passed" and result["points"] == 1.0


def test_the_kernel_collects_and_the_judge_judges_the_hidden_cases_of_the_runs_seed():
    plan = Assignment.load(ASSIGNMENT).plan(load(), seed=4242)
    assert [c.source for c in plan.cells if c.part][0].endswith(
        ".emit('ex1-fit-ols', globals(), 'fit_ols', seed=4242)")
    honest = lambda X, y: __import__("numpy").linalg.lstsq(X, y, rcond=None)[0]  # noqa: E731
    hidden = _record({"collected": checks.get_check("ex1-fit-ols").for_seed(4242).collect(honest)})
    assert judge_part(PART, hidden, seed=4242)["points"] == 1.0
    # judged on another run's cases (or the public ones), the same record is wrong
    assert judge_part(PART, hidden, seed=4243)["points"] == 0.0
    assert judge_part(PART, hidden)["points"] == 0.0


def test_the_run_seed_is_fresh_per_output_folder_kept_for_a_resume_and_given_for_a_regrade(tmp_path):
    from course_grade.batch import run_seed

    first = run_seed(tmp_path / "a")
    assert run_seed(tmp_path / "a") == first  # an interrupted run resumes on the same cases
    assert run_seed(tmp_path / "b") != first  # another run: other hidden cases
    assert run_seed(tmp_path / "b", seed=first) == first == run_seed(tmp_path / "b")
    with pytest.raises(ValueError, match="grading seed"):
        run_seed(tmp_path / "c", seed=-1)


@pytest.mark.parametrize(
    "event,status,words",
    [
        (None, "not-run", "not run"),
        ({"records": []}, "error", "no record"),
        ({"records": [], "error": "KeyboardInterrupt: "}, "error", "raised KeyboardInterrupt"),
        ({"records": ['{"collected": {}}', '{"collected": {}}']}, "error", "more than one record"),
        ({"records": ["not json"]}, "error", "unreadable"),
        ({"records": ["[" * 100_000]}, "error", "unreadable"),
        ({"records": [5]}, "error", "unreadable"),
        ({"records": ['{"verdict": "passed"}']}, "error", "unreadable"),
        ({"records": ['{"problem": "fit_ols is not defined when the check runs"}']}, "error", "not defined"),
        (_record({"collected": "passed"}), "error", "could not read your results"),
        (_record({"collected": {"passed": True, "outputs": "all good"}}), "error", "could not read"),
        (_record({"collected": {"outputs": [{"kind": "array", "shape": [10**30], "values": [1.0]}] * 4}}),
         "failed", "malformed"),
    ],
)
def test_forged_or_broken_records_never_pass_and_never_crash_the_grader(event, status, words):
    result = judge_part(PART, event)
    assert result["points"] == 0 and result["status"] == status, result
    assert words in result["message"], result["message"]


def test_a_judge_that_raises_gives_an_error_for_that_part_only(monkeypatch):
    def broken(collected):
        raise RuntimeError("boom")

    monkeypatch.setattr(checks.get_check("ex1-fit-ols"), "judge", broken)
    result = judge_part(PART, _record({"collected": {"outputs": []}}))
    assert result["status"] == "error" and result["points"] == 0
    assert result["message"] == "the grader could not judge the results of this part"


# ----------------------------------------------------------------------------------------
# Output files


@pytest.mark.parametrize(
    "names,files",
    [
        (["../../x.ipynb"], ["x.ipynb.md"]),
        (["a/b.ipynb", "a_b.ipynb"], ["a_b.ipynb.md", "a_b.ipynb-2.md"]),
        (['=HYPERLINK("x") ..y.ipynb'], ["HYPERLINK_x_..y.ipynb.md"]),
        (["...", ".hidden.ipynb"], ["submission.md", "hidden.ipynb.md"]),
    ],
)
def test_feedback_file_names_are_safe_and_unique(names, files):
    assert list(feedback_names(names).values()) == files


def test_grades_csv_defuses_formulas_and_leaves_ungraded_rows_blank():
    rows = [
        {"submission": "=cmd|'/c calc'!A1.ipynb", "status": "invalid", "total": 0, "max_total": 4, "parts": []},
        {"submission": "b.ipynb", "status": "crashed", "total": 1, "max_total": 4,
         "parts": [{"part": "p", "points": 1.0}]},
    ]
    lines = grades_csv(rows, ["p", "q"]).splitlines()
    assert lines == ["submission,status,total,max_total,p,q,integrity,submission_id",
                     "'=cmd|'/c calc'!A1.ipynb,invalid,,4,,,,", "b.ipynb,crashed,1,4,1,0,,"]


# ----------------------------------------------------------------------------------------
# The command line


def course_grade(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_grade", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def grade(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``course-grade grade ARGS``."""
    return course_grade("grade", *args, timeout=timeout)


@pytest.mark.parametrize(
    "args,message",
    [
        (["exercises/99-missing.ipynb", "x.ipynb"], "assignment notebook not found"),
        (["exercises/student/01-regression.ipynb", "exercises/student"], "not an instructor notebook"),
        (["exercises/01-regression.ipynb", "{empty}"], "no submissions (*.ipynb) in folder"),
        (["exercises/01-regression.ipynb", "nobody.ipynb"], "submission not found: nobody.ipynb"),
        (["exercises/01-regression.ipynb", "exercises/01-regression.ipynb"], "also listed as a submission"),
        (["exercises/01-regression.ipynb", "x.ipynb", "--seed", "-1"], "--seed must be an integer"),
    ],
)
def test_bad_command_lines_fail_with_a_clear_message(tmp_path, args, message):
    args = [a.replace("{empty}", str(tmp_path)) for a in args]
    proc = grade(*args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_course_grade_is_a_console_script():
    assert 'course-grade = "course_grade:main"' in (ROOT / "pyproject.toml").read_text()


# ----------------------------------------------------------------------------------------
# The corpus, through the real command line: killed once, rerun, rerun again


class Canary(threading.Thread):
    """A TCP server on the host's loopback that counts who reached it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.iterdir() if p.is_file() and not p.is_symlink()}


def _rows(out: Path) -> dict[str, dict]:
    return {r["submission"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def _sandboxed_base(tmp_path_factory, name: str) -> Path:
    """A fresh folder for a module's batch; the test is skipped without the sandbox."""
    if not SANDBOXED:
        pytest.skip("needs root and bubblewrap (apt-get install bubblewrap), as in CI")
    return tmp_path_factory.mktemp(name)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = _sandboxed_base(tmp_path_factory, "grading")
    folder, out = base / "corpus", base / "out"
    canary = Canary()
    canary.start()
    expect = corpus.build(folder, out, canary.port, CELL_TIMEOUT, TIMEOUT)
    before = _hashes(folder)
    args = [str(ASSIGNMENT), str(folder), "--out", str(out), "--jobs", "2",
            "--cell-timeout", str(CELL_TIMEOUT), "--timeout", str(TIMEOUT)]
    cmd = [sys.executable, "-m", "course_grade", "grade", *args]

    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = out / ".cache"
    while first.poll() is None and len(list(cache.glob("*.json"))) < 10:
        time.sleep(0.2)
    first.kill()  # mid-batch, as a power cut would
    first.wait()
    at_kill = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    deadline = time.monotonic() + 10
    survivors = [pid for uid in uid_range(first.pid) for pid in processes_of(uid)]
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = [pid for uid in uid_range(first.pid) for pid in processes_of(uid)]

    second = grade(*args)
    csv_after_second = (out / "grades.csv").read_bytes()
    third = grade(*args)
    canary.sock.close()
    return SimpleNamespace(
        expect=expect, folder=folder, out=out, before=before, canary=canary, first=first,
        at_kill=at_kill, survivors=survivors, second=second, third=third,
        csv_after_second=csv_after_second,
        results={r["submission"]: r for r in json.loads((out / "results.json").read_text())["submissions"]},
    )


@needs_sandbox
def test_the_batch_completes_with_exit_status_0(batch):
    assert batch.second.returncode == 0, batch.second.stderr[-3000:]
    assert batch.third.returncode == 0, batch.third.stderr[-3000:]
    assert f"graded {len(batch.expect)} submissions" in batch.second.stdout


@needs_sandbox
def test_every_submission_gets_the_right_status_and_points(batch):
    rows = _rows(batch.out)
    assert set(rows) == {("'" + n if n.startswith("=") else n) for n in batch.expect}
    wrong = []
    for name, want in batch.expect.items():
        row = rows["'" + name if name.startswith("=") else name]
        reason = batch.results[name]["reason"]
        got = {p: row[p] for p in corpus.PARTS}
        if want.points is None:
            expected = {p: "" for p in corpus.PARTS}
            total = ""
        else:
            expected = {p: f"{v:g}" for p, v in want.points.items()}
            total = f"{want.total:g}"
        if (row["status"], row["total"], got) != (want.status, total, expected) or want.words not in reason:
            wrong.append(f"{name}: got {row['status']} {row['total']} {got} ({reason!r}); "
                         f"want {want.status} {total} {expected} ({want.words!r})")
        if want.judged is not None:  # 0 for integrity; the judge's own verdicts before that
            judged = {p["part"]: p.get("judged", p["status"]) == "passed" for p in batch.results[name]["parts"]}
            if judged != {p: v > 0 for p, v in want.judged.items()}:
                wrong.append(f"{name}: the judge passed {judged}, want {want.judged}")
            if row["integrity"] != " ".join(corpus.PARTS):
                wrong.append(f"{name}: integrity column {row['integrity']!r}, want every part")
        assert row["max_total"] == "5"
    assert not wrong, "\n".join(wrong)


@needs_sandbox
def test_results_record_the_runs_secret_seed_for_a_regrade(batch):
    results = json.loads((batch.out / "results.json").read_text())
    seed = int((batch.out / ".cache" / "seed").read_text())
    assert results["seed"] == seed
    assert {r.get("seed") for r in results["submissions"]} == {seed}


@needs_sandbox
def test_a_killed_batch_resumes_without_regrading_what_was_done(batch):
    assert batch.first.returncode == -9
    assert 10 <= len(batch.at_kill) < len(batch.expect)
    for name, mtime in batch.at_kill.items():
        assert (batch.out / ".cache" / name).stat().st_mtime_ns == mtime, f"{name} was graded again"
    log = (batch.out / "grading.log").read_text()
    assert f"{len(batch.expect)} submissions: {len(batch.at_kill)} from the cache of an earlier run" in log


@needs_sandbox
def test_a_rerun_grades_nothing_and_writes_the_same_grades_csv(batch):
    assert f"{len(batch.expect)} submissions: {len(batch.expect)} from the cache" in (batch.out / "grading.log").read_text()
    assert (batch.out / "grades.csv").read_bytes() == batch.csv_after_second


@needs_sandbox
def test_killing_the_grader_leaves_no_student_process_behind(batch):
    assert batch.survivors == []


@needs_sandbox
def test_the_sandbox_keeps_other_files_the_grades_and_the_network_out_of_reach(batch):
    assert batch.canary.connections == 0, "a sandboxed notebook reached the host's loopback"
    assert _hashes(batch.folder) == batch.before, "a submission was modified"
    assert not (batch.out / "forged.txt").exists()
    for name in ("grades.csv", "results.json"):
        assert "forged.ipynb" not in (batch.out / name).read_text()
    snoop = batch.results["snoop.ipynb"]
    leaked = [p["part"] for p in snoop["parts"] if p["points"] and p["part"] != "ex1-residuals-by-subject"]
    assert leaked == [], f"leaks turned these parts right: {leaked}"


@needs_sandbox
def test_kernel_death_is_reported_at_once_not_at_the_timeout(batch):
    for name in ("os-exit.ipynb", "segfault.ipynb"):
        result = batch.results[name]
        assert result["status"] == "crashed" and "kernel died" in result["reason"]
        assert result["stopped_after"] < 5, result


@needs_sandbox
def test_each_student_gets_feedback_with_verdicts_and_hints_but_no_check_code(batch):
    files = sorted(p.name for p in (batch.out / "feedback").iterdir())
    pages = feedback_names(list(batch.expect)).values()
    assert files == sorted([*pages, *(p.removesuffix(".md") + ".html" for p in pages)])  # Markdown and HTML
    assert all("/" not in f and not f.startswith(".") for f in files)
    mistake = (batch.out / "feedback" / "mistake-se-divide-by-n.ipynb.md").read_text()
    assert "Status: graded" in mistake and "**3 / 5**" in mistake
    assert "**Hint:** you divided the residual sum of squares by n; divide by n − p" in mistake
    page = (batch.out / "feedback" / "mistake-se-divide-by-n.ipynb.html").read_text()
    assert "Score: 3 / 5" in page and "you divided the residual sum of squares by n; divide by n − p" in page
    crashed = (batch.out / "feedback" / "os-exit.ipynb.md").read_text()
    assert "The notebook did not finish" in crashed and "not run: the notebook crashed" in crashed
    invalid = (batch.out / "feedback" / "nbformat3.ipynb.md").read_text()
    assert "could not be graded" in invalid and "nbformat 3" in invalid
    for path in (batch.out / "feedback").iterdir():
        text = path.read_text()
        for secret in ("sm.OLS", "def _", "course_grade.kernel", "collect(", "Traceback"):
            assert secret not in text, f"{path.name} shows {secret!r}"


# ----------------------------------------------------------------------------------------
# Integrity: the library's implementation of what a part asks for gives 0 for that part


TARGETS = ["course_lib.lnp.negloglik", "course_lib.lnp.fit_rf", "course_lib.regression.ols"]


@pytest.mark.parametrize(
    "code,target",
    [
        ("from course_lib.lnp import negloglik", "negloglik"),
        ("from course_lib.lnp import negloglik as nll\ndef mine(w):\n    return nll(w)", "negloglik"),
        ("from course_lib.lnp import *", "fit_rf negloglik"),
        ("import course_lib.lnp as L\ndef negloglik(w, c, s, dt, R):\n    return L.negloglik(w, c, s, dt, R)", "negloglik"),
        ("from course_lib import lnp\nf = lnp.fit_rf", "fit_rf"),
        ("import course_lib.lnp\ncourse_lib.lnp.fit_rf(1)", "fit_rf"),
        ("from course_lib import lnp as x\ny = x\ny.fit_rf(1)", "fit_rf"),
        ("from course_lib import lnp\ngetattr(lnp, 'fit_rf')(1)", "fit_rf"),
        ("from course_lib import lnp\ngetattr(lnp, 'fit_' + 'rf')(1)", "fit_rf"),
        ("from course_lib import lnp\ngetattr(lnp, f'{\"fit\"}_rf')(1)", "fit_rf"),
        ("from course_lib import lnp\nvars(lnp)['fit_rf']", "fit_rf"),
        ("import importlib\nm = importlib.import_module('course_lib.lnp')\nm.negloglik(1)", "negloglik"),
        ("from importlib import import_module\nimport_module('course_lib.regression').ols(1, 2)", "ols"),
        ("m = __import__('course_lib.lnp', fromlist=['x'])\nm.fit_rf", "fit_rf"),
        ("__import__('course_lib').lnp.fit_rf", "fit_rf"),
        ("import sys, course_lib.lnp\nsys.modules['course_lib.lnp'].negloglik", "negloglik"),
        ("exec('from course_lib.regression import ols')", "ols"),
        ("%matplotlib inline\n!ls\nfrom course_lib import regression\nregression.ols(1, 2)", "ols"),
    ],
    ids=["import", "import-as", "star", "module-alias", "from-package", "dotted", "reassigned",
         "getattr", "getattr-concat", "getattr-fstring", "vars", "importlib", "import-module",
         "dunder-import", "dunder-import-package", "sys-modules", "exec", "magics"],
)
def test_every_way_of_reaching_a_forbidden_function_is_found(code, target):
    found = integrity.analyse([("cell-a", code)], TARGETS)
    assert sorted(f.target.rpartition(".")[2] for f in found) == target.split(), found
    assert found[0].cell == "cell-a" and found[0].line >= 1 and not found[0].obfuscated


def test_a_computed_name_on_a_course_lib_module_is_flagged_as_obfuscated():
    found = integrity.analyse([("c", "from course_lib import lnp\nname = input()\ngetattr(lnp, name)(1)")], TARGETS)
    assert {f.target for f in found} == {"course_lib.lnp.negloglik", "course_lib.lnp.fit_rf"}
    assert all(f.obfuscated and f.line == 3 for f in found)


def test_a_module_bound_in_a_later_cell_is_still_followed():
    cells = [("a", "def f(c, s):\n    return M.fit_rf(c, s, 0.1, 50)"), ("b", "import course_lib.lnp as M")]
    assert [(f.cell, f.line) for f in integrity.analyse(cells, TARGETS)] == [("a", 2)]


@pytest.mark.parametrize(
    "code",
    [
        # the student's own function, with the library's name, defined and called
        "from course_lib import checks, lnp\n\ndef negloglik(w, c, s, dt, R):\n    return 0.0, w\n\n"
        "negloglik(1, 2, 3, 4, 5)\nf = negloglik",
        # what the exercise gives them: other course_lib helpers
        "from course_lib import lnp\nw_true = lnp.gaussian_rf(15, width=2.0)\nrec = lnp.load_recorded_neuron()",
        "from course_lib.mixed import lmer\nfit = lmer('y ~ x + (1 | g)', data)",
        "import numpy as np\nfrom scipy import optimize\nres = optimize.minimize(negloglik, np.zeros(3), jac=True)",
        "x = {'fit_rf': 1}\ngetattr(np, 'fit_rf')\nlnp = 3\nlnp.fit_rf",  # not course_lib objects
        "this is not python (",
    ],
    ids=["own-function", "given-helpers", "lmer", "scipy", "other-objects", "syntax-error"],
)
def test_own_code_and_the_helpers_an_exercise_gives_are_not_flagged(code):
    assert integrity.analyse([("c", code)], TARGETS) == []


@pytest.mark.parametrize(
    "code,target,obfuscated",
    [
        ("from course_lib.checks.ex01 import _ols_params\n_ols_params(X, y)",
         "course_lib.checks.ex01._ols_params", False),
        ("from course_lib import checks\nbeta = checks.ex01._ols_params(X, y)",
         "course_lib.checks.ex01._ols_params", False),
        ("import course_lib.checks.ex01 as e\ne._ols_params(X, y)", "course_lib.checks.ex01._ols_params", False),
        ("from course_lib.checks import get_check\nget_check('ex1-fit-ols')", "course_lib.checks.get_check", False),
        ("from course_lib.checks.ex01 import *", "course_lib.checks.ex01.*", False),
        ("from course_lib import checks\nname = input()\ngetattr(checks, name)", "course_lib.checks", True),
    ],
    ids=["private-reference", "through-the-package", "module-alias", "get-check", "star", "computed"],
)
def test_any_use_of_the_checks_own_code_is_found_whatever_the_targets(code, target, obfuscated):
    found = integrity.analyse([("c", code)], [])
    assert target in {f.target for f in found}, found
    assert all(f.obfuscated == obfuscated for f in found if f.target == target)


def test_the_checks_public_api_in_a_students_cell_is_not_flagged():
    code = ("from course_lib import checks\nfrom course_lib.checks import check\n"
            "checks.check('ex1-fit-ols', fit_ols)\nv = checks.run('ex1-fit-ols', fit_ols)\n"
            "checks.list_checks()\ncheck('ex1-predict', predict)")
    assert integrity.analyse([("c", code)], TARGETS) == []


def test_using_the_checks_own_code_gives_0_on_every_part_with_the_reason():
    result = {"status": "graded", "total": 1.5, "parts": [
        {"part": "a", "status": "passed", "points": 1.0, "max_points": 1.0, "message": "ok", "hint": ""},
        {"part": "b", "status": "passed", "points": 0.5, "max_points": 0.5, "message": "ok", "hint": ""}]}
    found = integrity.analyse([("c7", "from course_lib.checks.ex01 import _ols_se as se")], [])
    out = integrity.apply_findings(result, found, {})
    assert [(p["status"], p["points"]) for p in out["parts"]] == [("integrity", 0.0), ("integrity", 0.0)]
    assert out["total"] == 0
    assert "the checks' own code (course_lib.checks.ex01._ols_se)" in out["parts"][1]["message"]
    assert "cell c7, line 1: imports course_lib.checks.ex01._ols_se as se" in out["parts"][1]["message"]


def test_the_instructor_notebooks_declare_their_targets_and_are_not_flagged():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        a = Assignment.load(path)
        plan = a.plan(load(path))
        targets = [t for names in a.writes.values() for t in names]
        assert integrity.analyse([(c.cell_id, c.source) for c in plan.cells if c.part is None], targets) == []
    assert Assignment.load(ROOT / "exercises" / "05-lnp-receptive-fields.ipynb").writes["ex5-negloglik"] == (
        "course_lib.lnp.negloglik",)


def test_only_the_part_that_declares_the_target_gets_0_and_keeps_the_judges_verdict():
    result = {"status": "graded", "total": 1.5, "parts": [
        {"part": "a", "status": "passed", "points": 1.0, "max_points": 1.0, "message": "ok", "hint": ""},
        {"part": "b", "status": "passed", "points": 0.5, "max_points": 0.5, "message": "ok", "hint": ""}]}
    found = integrity.analyse([("sol-a", "from course_lib.lnp import fit_rf")], TARGETS)
    out = integrity.apply_findings(result, found, {"a": ("course_lib.lnp.fit_rf",)})
    assert [(p["status"], p["points"]) for p in out["parts"]] == [("integrity", 0.0), ("passed", 0.5)]
    assert out["total"] == 0.5 and out["parts"][0]["judged"] == "passed"
    assert "cell sol-a, line 1: imports course_lib.lnp.fit_rf" in out["parts"][0]["message"]
    assert result["parts"][0]["points"] == 1.0  # not modified in place


# ----------------------------------------------------------------------------------------
# Written answers: the scores file is validated as a whole before anything is written


def _manual_rows() -> list[dict]:
    def entry(part, maximum, answer):
        return {"part": part, "max_points": maximum, "points": None, "status": "pending", "answer": answer,
                "answer_sha256": hashlib.sha256(answer.encode()).hexdigest(), "flag": "", "comment": ""}
    rows = [{"submission": name, "status": status, "total": 3.0, "max_total": 5.5,
             "parts": [{"part": "auto", "points": 3.0, "max_points": 3.0, "status": "passed"}],
             "manual": [entry("deriv", 2.0, f"answer of {name}"), entry("essay", 0.5, "words")]
             if status == "graded" else []}
            for name, status in (("alice.ipynb", "graded"), ("bob.ipynb", "graded"), ("eve.ipynb", "invalid"))]
    return manual.apply_scores(rows, {})


def _scores_csv(*lines: str) -> str:
    return "submission_id,part,max_points,points,comment\n" + "".join(line + "\n" for line in lines)


def test_the_template_has_a_row_per_graded_submission_and_question_and_merged_scores_count():
    rows = _manual_rows()
    alice, bob = (r["submission_id"] for r in rows[:2])
    assert alice == manual.submission_id("alice.ipynb") and alice != bob and len(alice) == 11
    template = list(csv.DictReader(io.StringIO(manual.template_csv(rows))))
    assert [(t["submission_id"], t["part"], t["points"]) for t in template] == [
        (alice, "deriv", ""), (alice, "essay", ""), (bob, "deriv", ""), (bob, "essay", "")]
    scores = manual.read_scores(_scores_csv(f"{alice},deriv,2,1.5,\"good, but the sign\"", f"{bob},essay,0.5,,"),
                                rows, {"deriv": 2.0, "essay": 0.5}, ["auto"])
    merged = manual.apply_scores(rows, scores)
    assert merged[0]["total"] == 4.5 and merged[1]["total"] == 3.0
    assert merged[0]["manual"][0]["status"] == "graded" and merged[0]["manual"][0]["comment"] == "good, but the sign"
    assert [m["status"] for m in merged[1]["manual"]] == ["pending", "pending"]
    lines = grades_csv(merged, ["auto"], ["deriv", "essay"]).splitlines()
    assert lines[1] == f"alice.ipynb,graded,4.5,5.5,3,1.5,pending,,{alice}"
    assert lines[3] == f"eve.ipynb,invalid,,5.5,,,,,{manual.submission_id('eve.ipynb')}"
    # a resubmission that changes the answer drops the score: pending again, with a note
    changed = [dict(merged[0], manual=[dict(merged[0]["manual"][0], answer_sha256="0" * 64)])]
    again = manual.apply_scores(changed, scores)[0]["manual"][0]
    assert again["status"] == "pending" and "changed after it was scored" in again["flag"]


@pytest.mark.parametrize(
    "line,words",
    [
        ("{alice},deriv,2,2.5,", "points 2.5 is more than part deriv is worth (2)"),
        ("{alice},deriv,2,-1,", "must be between 0 and 2"),
        ("{alice},deriv,2,lots,", "points 'lots' is not a number"),
        ("{alice},deriv,2,nan,", "must be between 0 and 2"),
        ("s0000000000,deriv,2,1,", "unknown submission id 's0000000000'"),
        ("{alice},essay-2,1,1,", "unknown part 'essay-2'"),
        ("{alice},auto,3,3,", "part 'auto' is autograded; its points cannot be changed"),
        ("{eve},deriv,2,1,", "(invalid) was not graded"),
        ("{alice},deriv,5,1,", "max_points is '5' but part deriv is worth 2 points"),
        ("{alice},deriv,2,1,ok,extra", "more fields than columns"),
        ("{alice},deriv,2,1,\n{alice},deriv,2,2,", "line 3: duplicate row for submission {alice} and part deriv (first on line 2)"),
    ],
    ids=["above-points", "negative", "not-a-number", "nan", "unknown-id", "unknown-part", "autograded",
         "not-graded", "max-points-changed", "extra-field", "duplicate"],
)
def test_a_bad_scores_file_is_rejected_with_the_line_and_the_reason(line, words):
    rows = _manual_rows()
    ids = {"alice": rows[0]["submission_id"], "eve": rows[2]["submission_id"]}
    with pytest.raises(manual.ManualError, match="nothing was changed") as err:
        manual.read_scores(_scores_csv(*line.format(**ids).split("\n"), f"{ids['alice']},essay,0.5,0.5,"),
                           rows, {"deriv": 2.0, "essay": 0.5}, ["auto"])
    assert words.format(**ids) in str(err.value), str(err.value)
    assert "manual.csv, line " in str(err.value)


def test_a_scores_file_with_a_missing_column_is_rejected():
    with pytest.raises(manual.ManualError, match="missing column"):
        manual.read_scores("submission_id,part,score\nx,deriv,1\n", _manual_rows(), {"deriv": 2.0}, [])


# ----------------------------------------------------------------------------------------
# Exercise 5 through the command line: integrity cases, written answers, the merge


@pytest.fixture(scope="module")
def ex5(tmp_path_factory):
    base = _sandboxed_base(tmp_path_factory, "ex5")
    folder, out = base / "submissions", base / "out"
    expect = corpus.build_ex5(folder)
    graded = grade(str(corpus.EX5), str(folder), "--out", str(out), "--jobs", "2",
                   "--cell-timeout", "60", "--timeout", "240")
    return SimpleNamespace(expect=expect, folder=folder, out=out, graded=graded, base=base,
                           results={r["submission"]: r for r in json.loads((out / "results.json").read_text())["submissions"]})


@needs_sandbox
def test_a_part_that_uses_the_library_function_it_asks_for_gets_0_and_the_rest_is_graded(ex5):
    assert ex5.graded.returncode == 0, ex5.graded.stderr[-3000:]
    rows = _rows(ex5.out)
    for name, want in ex5.expect.items():
        row, result = rows[name], ex5.results[name]
        assert row["status"] == "graded" and row["max_total"] == "11.5", row
        assert {p: float(row[p]) for p in corpus.EX5_FULL} == want["points"], (name, row)
        assert float(row["total"]) == sum(want["points"].values())  # written answers pending
        assert all(row[p] == "pending" for p in corpus.EX5_MANUAL)
        flagged = [p for p in result["parts"] if p["status"] == "integrity"]
        if want["integrity"] is None:
            assert flagged == [] and row["integrity"] == "" and result["integrity"] == []
            continue
        part, target = want["integrity"]
        assert row["integrity"] == part and [p["part"] for p in flagged] == [part]
        assert flagged[0]["judged"] == "passed", "the cheat must work, or the test proves nothing"
        assert f"uses {target} from the course's library" in flagged[0]["message"]
        feedback = (ex5.out / "feedback" / f"{name}.md").read_text()
        assert f"| {part} | 0 / " in feedback and "0 points for integrity" in feedback
        assert f"0 for integrity on {part}" in ex5.graded.stdout


@needs_sandbox
def test_written_answers_are_collected_per_question_anonymously_with_a_template(ex5):
    rows = _rows(ex5.out)
    ids = {name: rows[name]["submission_id"] for name in ex5.expect}
    template = list(csv.DictReader(io.StringIO((ex5.out / "manual.csv").read_text())))
    assert sorted((t["submission_id"], t["part"]) for t in template) == sorted(
        (sid, part) for sid in ids.values() for part in corpus.EX5_MANUAL)
    assert all(t["points"] == "" for t in template)
    flags = {(t["submission_id"], t["part"]): t["flag"] for t in template}
    assert flags[(ids["integrity-alias.ipynb"], "ex5-alpha-answer")].startswith("missing")
    assert flags[(ids["integrity-getattr.ipynb"], "ex5-alpha-answer")].startswith("unchanged")
    for part in corpus.EX5_MANUAL:
        page = (ex5.out / "manual" / f"{part}.html").read_text()
        assert all(f'<section id="{sid}">' in page for sid in ids.values())
        assert not any(name.removesuffix(".ipynb") in page for name in ex5.expect), "a name in the review"
        assert "<script>alert" not in page and "<img src=x" not in page
    derivation = (ex5.out / "manual" / "ex5-derivation.html").read_text()
    assert "&lt;script&gt;alert(&#x27;grade me 100&#x27;)&lt;/script&gt;" in derivation
    assert "Model answer" in derivation and "The bins are independent given the stimulus" in derivation


@needs_sandbox
def test_merging_scores_adds_them_to_the_grades_and_a_bad_file_changes_nothing(ex5):
    out = ex5.out
    rows = _rows(out)
    sid = {name: rows[name]["submission_id"] for name in ex5.expect}
    ok = ex5.base / "scores.csv"
    lines = [f"{s},ex5-derivation,2,1.5,\"sign of the gradient, see the model answer\"" for s in sid.values()]
    lines += [f"{sid['ex5-correct.ipynb']},ex5-alpha-answer,0.5,0.5,"]
    ok.write_text("submission_id,part,max_points,points,comment\n" + "\n".join(lines) + "\n")
    bad_lines = {
        "above": f"{sid['ex5-correct.ipynb']},ex5-derivation,2,2.5,",
        "unknown-id": "s0123456789,ex5-derivation,2,1,",
        "duplicate": lines[0] + "\n" + lines[0],
        "autograded": f"{sid['ex5-correct.ipynb']},ex5-fit,1,1,",
    }
    before = {p: p.read_bytes() for p in [out / "grades.csv", out / "results.json", *(out / "feedback").iterdir()]}
    for case, line in bad_lines.items():
        bad = ex5.base / f"{case}.csv"
        bad.write_text("submission_id,part,max_points,points,comment\n" + line + "\n")
        proc = course_grade("review", str(out), "--merge", str(bad))
        assert proc.returncode == 2 and "nothing was changed" in proc.stderr, (case, proc.stderr)
        assert f"{case}.csv, line " in proc.stderr
        assert {p: p.read_bytes() for p in before} == before, f"{case}: a bad file changed the grades"
        assert not (out / "manual.json").exists()
    merged = course_grade("review", str(out), "--merge", str(ok), "--assignment", str(corpus.EX5))
    assert merged.returncode == 0 and "6 answers scored, 14 pending" in merged.stdout, merged.stderr
    after = _rows(out)
    for name, want in ex5.expect.items():
        extra = 2.0 if name == "ex5-correct.ipynb" else 1.5
        assert float(after[name]["total"]) == sum(want["points"].values()) + extra
        assert {p: after[name][p] for p in corpus.EX5_FULL} == {p: rows[name][p] for p in corpus.EX5_FULL}
    assert after["ex5-correct.ipynb"]["ex5-derivation"] == "1.5" and after["ex5-correct.ipynb"]["total"] == "9.5"
    assert after["integrity-alias.ipynb"]["ex5-alpha-answer"] == "pending"
    feedback = (out / "feedback" / "ex5-correct.ipynb.md").read_text()
    assert "**9.5 / 11.5**" in feedback and "sign of the gradient, see the model answer" in feedback
    assert "| ex5-derivation | 1.5 / 2 | ✎ graded by hand |" in feedback
    page = (out / "feedback" / "ex5-correct.ipynb.html").read_text()  # the HTML page, rewritten too
    assert "Score: 9.5 / 11.5" in page and "sign of the gradient, see the model answer" in page
    assert "ex5-derivation (graded by hand): 1.5 / 2" in page
    # changing a merged score needs --force, and says which
    changed = ex5.base / "changed.csv"
    changed.write_text("submission_id,part,max_points,points,comment\n"
                       f"{sid['ex5-correct.ipynb']},ex5-derivation,2,2,\n")
    refused = course_grade("review", str(out), "--merge", str(changed))
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
    assert f"submission {sid['ex5-correct.ipynb']}, part ex5-derivation: 1.5 points merged earlier" in refused.stderr
    assert _rows(out)["ex5-correct.ipynb"]["ex5-derivation"] == "1.5"
    # grading again (all from the cache) keeps the merged scores
    merged_csv = (out / "grades.csv").read_bytes()
    again = grade(str(corpus.EX5), str(ex5.folder), "--out", str(out), "--jobs", "2",
                  "--cell-timeout", "60", "--timeout", "240")
    assert again.returncode == 0 and (out / "grades.csv").read_bytes() == merged_csv
