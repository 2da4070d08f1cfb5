"""``course-grade``: the instructor's loop as one command with subcommands, in git's manner.

::

    course-grade release   [NOTEBOOK ...] [--check] [--student-tree DIR [--repository OWNER/NAME]]
    course-grade grade     ASSIGNMENT SUBMISSIONS... --out OUT [--jobs N] [--scheduler ADDR] ...
    course-grade review    OUT [--merge manual.csv] [--force]
    course-grade report    OUT
    course-grade export    OUT --format canvas|gradescope|csv --roster roster.csv [--force]
    course-grade status    OUT

Arguments are parsed by :mod:`argparse` subparsers (the standard library's; click or typer
would add a dependency for nothing argparse lacks here). Each subcommand's work lives in its
module (``release``: :mod:`course_lib.release`, unchanged; ``grade``:
:mod:`~course_grade.batch`; ``review``: :mod:`~course_grade.manual`; ``report``:
:mod:`~course_grade.classreport`; ``export``: :mod:`~course_grade.export`); this module only
parses, validates and prints. It is the only module that imports both the batch and the
Dask backend (:mod:`~course_grade.distributed`), so that the two never import each other.

The command lines of earlier versions (``course-grade ASSIGNMENT SUBMISSIONS --out DIR``,
``course-grade --manual FILE --out DIR``) are recognised and answered with the same command
in the new form (exit status 2); nothing runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

#: The subcommands, in the order of the loop, with the one line ``--help`` shows for each.
COMMANDS = {
    "release": "student copies of the exercises, or a student-only course",
    "grade": "grade a class's notebooks in sandboxes, resumably",
    "review": "written answers: what is left to score; merge manual.csv",
    "report": "how the class did per part: report.csv and report.html",
    "export": "the grades as a Canvas, Gradescope or CSV file, by roster",
    "status": "what is graded, pending or failed, and why",
}

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def parser() -> argparse.ArgumentParser:
    """The ``course-grade`` argument parser with its six subcommands."""
    top = argparse.ArgumentParser(
        prog="course-grade", formatter_class=_FORMATTER,
        description="The instructor's loop: release the exercises, grade a class, review the "
                    "written answers, report on the class, export the grades.",
        epilog=_examples(
            "course-grade release --student-tree ../rf-course-2026",
            "course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1",
            "course-grade status grades-ex1",
            "course-grade report grades-ex1",
            "course-grade <command> --help      # each command's options and examples"),
    )
    sub = top.add_subparsers(dest="command", metavar="<command>", title="commands")
    sub.required = True

    def add(name: str, description: str, examples: list[str]) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=COMMANDS[name], description=description,
                              epilog=_examples(*examples), formatter_class=_FORMATTER)

    p = add("release", "Generate the student copies of the exercise notebooks (exercises/student/) "
            "and the chapters' Colab notebooks, check that they are up to date, or write a "
            "student-only copy of the course to publish (course_lib.release).",
            ["course-grade release                      # every exercise and chapter",
             "course-grade release --check              # exit 1 if a committed copy is stale",
             "course-grade release --student-tree ../rf-course-2026 --repository my-uni/rf-course-2026"])
    p.add_argument("notebooks", nargs="*", type=Path, help="instructor notebooks (default: exercises/*.ipynb)")
    p.add_argument("--out", type=Path, default=None, help="folder of the student copies (default: exercises/student)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if a student copy is stale")
    p.add_argument("--student-tree", type=Path, metavar="DIR",
                   help="write a student-only copy of the course into DIR (a new folder)")
    p.add_argument("--repository", metavar="OWNER/NAME",
                   help="with --student-tree: the GitHub repository the tree is published as")

    p = add("grade", "Grade a batch of student notebooks of one exercise, each in a fresh sandboxed "
            "kernel, judging every check outside the sandbox. Resumable: run the same command "
            "again after an interruption. Exit status 0 means the batch completed, whatever each "
            "submission's outcome (see OUT/grades.csv or `course-grade status OUT`).",
            ["course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1",
             "course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1 --jobs 4 --memory 4096",
             "course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1 --scheduler local:4",
             "course-grade grade exercises/01-regression.ipynb submissions/ --out grades-ex1 --seed 1234 --force"])
    p.add_argument("assignment", type=Path, help="the instructor notebook, e.g. exercises/01-regression.ipynb")
    p.add_argument("submissions", type=Path, nargs="+", help="student notebooks, or folders of them")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                   help="submissions graded at once (default: the number of cores)")
    p.add_argument("--cell-timeout", type=int, default=120, metavar="S", help="seconds per cell (default 120)")
    p.add_argument("--timeout", type=float, default=600, metavar="S",
                   help="seconds per notebook, kernel start included (default 600)")
    p.add_argument("--memory", type=int, default=2048, metavar="MB",
                   help="memory per kernel process in MB (default 2048)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "weak"), default="auto",
                   help="auto: bubblewrap when root and installed, else weak (with a warning)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: on a terminal)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="secret seed of the hidden cases (default: a fresh one per output folder; "
                        "give the seed in results.json to reproduce a grade)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the notebooks on a Dask cluster: local:N starts N worker processes "
                        "here, tcp://host:8786 reaches a running scheduler (--jobs is then ignored)")
    p.add_argument("--force", action="store_true",
                   help="regrade into an OUT whose grades came from another assignment, seed or "
                        "grader version (without it, those grades are never overwritten)")

    p = add("review", "The written answers (parts graded by hand): without --merge, say where the "
            "review pages are and how many answers are scored; with --merge, validate the filled-in "
            "manual.csv and merge its scores into grades.csv, results.json and the feedback "
            "(Markdown and HTML). No notebook is run; nothing is written if any row is wrong.",
            ["course-grade review grades-ex5                              # what is left to score",
             "course-grade review grades-ex5 --merge grades-ex5/manual.csv",
             "course-grade review grades-ex5 --merge manual.csv --force   # change scores merged earlier"])
    p.add_argument("out", type=Path, metavar="OUT", help="the output folder of `course-grade grade`")
    p.add_argument("--merge", type=Path, metavar="FILE",
                   help="the filled-in manual.csv (submission_id, part, max_points, points, comment)")
    p.add_argument("--assignment", type=Path, metavar="NOTEBOOK",
                   help="the instructor notebook, checked against the one the results were graded with")
    p.add_argument("--force", action="store_true", help="let FILE change scores merged earlier")

    p = add("report", "Write OUT/report.csv (one row per part: part, max_points, mean, pass_rate = "
            "share of submissions with full points, n, most common failing hint) and "
            "OUT/report.html, a self-contained page (it loads nothing) with a histogram of totals, "
            "the pass rate per part and the hints students hit most. The batch must be finished; "
            "a missing or corrupted results.json is named and nothing is written.",
            ["course-grade report grades-ex1", "course-grade report grades-ex1 && xdg-open grades-ex1/report.html"])
    p.add_argument("out", type=Path, metavar="OUT", help="the output folder of `course-grade grade`")

    p = add("export", "Write the grades of a graded batch as a file a learning platform imports, "
            "matching each submission to a roster entry. Exit 0: everyone matched and graded; 1: "
            "the file was written but problems are listed (OUTPUT-problems.csv and stderr, roster "
            "line by line); 2: nothing written (usage error, unfinished or corrupted results, an "
            "existing grade file with other grades without --force).",
            ["course-grade export grades-ex1 --format canvas --roster roster.csv --column 'Exercise 1 (12345)'",
             "course-grade export grades-ex1 --format gradescope --roster roster.csv",
             "course-grade export grades-ex1 --format csv --roster roster.csv --output ex1-all.csv"])
    p.add_argument("dir", type=Path, metavar="OUT", help="the output folder of `course-grade grade`")
    p.add_argument("--format", required=True, choices=("canvas", "gradescope", "csv"), help="the platform's format")
    p.add_argument("--roster", type=Path, required=True,
                   help="CSV with 'submission' and 'student_id' columns (optional: name, email, login, "
                        "canvas_id, section)")
    p.add_argument("--output", type=Path, help="the grade file (default: OUT/export-FORMAT.csv)")
    p.add_argument("--column", help="the assignment's column name (default: the assignment notebook's "
                                    "name; for Canvas, e.g. 'Exercise 1 (12345)')")
    p.add_argument("--force", action="store_true", help="overwrite an existing grade file with other grades")

    p = add("status", "Say what an output folder holds: how many submissions are graded, pending "
            "(the batch did not finish), failed (timeout, crashed, invalid, error) and why, and the "
            "written answers still to score. Reads only; exit 0 when everything is graded and "
            "scored, 1 otherwise, 2 when the folder cannot be read.",
            ["course-grade status grades-ex1"])
    p.add_argument("out", type=Path, metavar="OUT", help="the output folder of `course-grade grade`")
    return top


# ----------------------------------------------------------------------------------------
# Old command lines


def legacy_command(argv: list[str]) -> list[str] | None:
    """The new form of an old ``course-grade`` command line, or None if ``argv`` is not one.

    ``ASSIGNMENT SUBMISSIONS... --out DIR [options]`` becomes ``grade ...`` (same arguments);
    ``--manual FILE --out DIR [ASSIGNMENT]`` becomes ``review DIR --merge FILE
    [--assignment ASSIGNMENT]``.
    """
    if not argv or argv[0] in COMMANDS or argv[0] in ("-h", "--help"):
        return None
    manual = _option(argv, "--manual")
    if manual is not None:
        out = _option(argv, "--out") or "OUT"
        rest = [a for a in _drop_options(argv, ("--manual", "--out")) if not a.startswith("-")]
        return ["review", out, "--merge", manual, *(["--assignment", rest[0]] if rest else [])]
    if not argv[0].startswith("-") or _option(argv, "--out") is not None:
        return ["grade", *argv]
    return None


def _option(argv: list[str], name: str) -> str | None:
    for k, a in enumerate(argv):
        if a == name and k + 1 < len(argv):
            return argv[k + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _drop_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not any(a.startswith(n + "=") for n in names):
            kept.append(a)
    return kept


# ----------------------------------------------------------------------------------------
# The commands


def _release(args, fail) -> int:
    from course_lib.release import main as release_main

    argv = [str(p) for p in args.notebooks]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.check:
        argv.append("--check")
    if args.student_tree is not None:
        argv += ["--student-tree", str(args.student_tree)]
    if args.repository is not None:
        argv += ["--repository", args.repository]
    return release_main(argv)


def _earlier_grades(out: Path, assignment, seed: int | None) -> list[str]:
    """What differs between this run and the grades already in ``out`` (empty: a resume)."""
    from course_grade.batch import code_fingerprint

    try:
        data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or not any(
            isinstance(r, dict) and r.get("status") != "pending" for r in data.get("submissions") or []):
        return []
    differs = []
    if data.get("assignment_sha256") != assignment.sha256:
        differs.append(f"they were graded against {data.get('assignment')} as it was then, not "
                       f"{assignment.path} as it is now")
    if seed is not None and data.get("seed") is not None and int(data["seed"]) != seed:
        differs.append(f"their hidden cases came from seed {data['seed']}, not --seed {seed}")
    elif data.get("grader") and data.get("grader") != code_fingerprint(assignment)[:16]:
        differs.append("the grader or this exercise's checks changed since")
    return differs


def _grade(args, fail) -> int:
    from course_grade.batch import Submission, find_submissions, grade_batch
    from course_grade.manual import write_review
    from course_grade.notebook import Assignment, AssignmentError
    from course_grade.report import integrity_parts
    from course_grade.sandbox import Limits, Sandbox, SandboxError, choose

    if args.scheduler is not None:
        from course_grade.distributed import parse_scheduler

        try:
            parse_scheduler(args.scheduler)
        except ValueError as err:
            fail(str(err))
    if args.jobs < 1 or args.jobs > 64:
        fail(f"--jobs must be between 1 and 64, got {args.jobs}")
    if args.cell_timeout <= 0 or args.timeout <= 0:
        fail("--cell-timeout and --timeout must be positive")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        fail(f"--seed must be an integer in [0, 2**63), got {args.seed}")
    if args.memory < 256:
        fail(f"--memory must be at least 256 MB, got {args.memory}")
    if args.out.exists() and not args.out.is_dir():
        fail(f"--out {args.out} exists and is not a folder")
    try:
        assignment = Assignment.load(args.assignment)
        submissions = find_submissions(args.submissions)
    except (AssignmentError, ValueError) as err:
        fail(str(err))
    out = args.out.resolve()
    subs_abs = [Submission(s.path.absolute(), s.name) for s in submissions]
    if any(not s.path.is_symlink() and s.path.resolve() == assignment.path.resolve() for s in subs_abs):
        fail(f"the assignment {assignment.path} is also listed as a submission")
    differs = _earlier_grades(out, assignment, args.seed)
    if differs and not args.force:
        fail(f"{out} already holds grades, and this run would overwrite them: "
             + "; ".join(differs) + ". Nothing was changed: choose another --out, or add --force "
             "to regrade into this one")
    cluster = None  # a Dask cluster (--scheduler), whose workers decide the sandbox kind
    try:
        assignment.check_registry()
        if args.scheduler is not None:
            from course_grade.distributed import connect

            cluster = connect(args.scheduler)
            kind, warning = cluster.choose_sandbox(args.sandbox)
        else:
            kind, warning = choose(args.sandbox)
        limits = Limits(cell_timeout=args.cell_timeout, timeout=args.timeout, memory_mb=args.memory)
        sandbox = Sandbox(kind, limits, protect=[assignment.path, out, *args.submissions])
    except (AssignmentError, SandboxError) as err:
        if cluster is not None:
            cluster.close()
        fail(str(err))

    from course_grade.batch import log

    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "grading.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    log.addHandler(handler)
    log.addHandler(console)
    log.setLevel(logging.INFO)
    try:
        log.info("course-grade grade: %s, %d submissions, %s; sandbox %s",
                 assignment.path, len(subs_abs),
                 f"{args.jobs} jobs" if cluster is None else cluster.describe(), sandbox.describe())
        if warning:
            log.warning(warning)
        start = time.monotonic()
        try:
            results = grade_batch(assignment, subs_abs, out, sandbox, args.jobs, args.progress,
                                  cluster=cluster, seed=args.seed)
        except KeyboardInterrupt:
            log.warning("interrupted: results graded so far are kept; run the same command to resume")
            return 130
        counts: dict[str, int] = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"graded {len(results)} submissions of {assignment.path.name} in "
              f"{time.monotonic() - start:.0f} s: {summary}")
        for r in results:
            if r["status"] != "graded":
                print(f"  {r['submission']}: {r['status']}: {r['reason']}")
        print(f"grades: {out / 'grades.csv'}; feedback: {out / 'feedback'} (.md and .html)")
        for r in results:
            flagged = integrity_parts(r)
            if flagged:
                print(f"  {r['submission']}: 0 for integrity on {', '.join(flagged)} (see its feedback)")
        if assignment.manual:
            write_review(out, results, assignment)
            print(f"written answers: review {out / 'manual'}/<part>.html, score them in "
                  f"{out / 'manual.csv'}, then: course-grade review {out} --merge {out / 'manual.csv'}")
        print(f"next: course-grade report {out}")
        log.info("done: %s", summary)
        return 0
    finally:
        if cluster is not None:
            cluster.close()
        log.removeHandler(handler)
        log.removeHandler(console)
        handler.close()


def _review(args, fail) -> int:
    from course_grade.manual import ManualError, merge
    from course_grade.report import OutputError, read_results

    assignment = None
    if args.assignment is not None:
        from course_grade.notebook import Assignment, AssignmentError

        try:
            assignment = Assignment.load(args.assignment)
        except AssignmentError as err:
            fail(str(err))
    if args.merge is not None:
        try:
            summary = merge(args.out, args.merge, assignment, force=args.force)
        except ManualError as err:
            print(f"course-grade review: error: {err}", file=sys.stderr)
            return 2
        print(f"merged {args.merge} into {args.out}: {summary['scored']} answers scored, "
              f"{summary['pending']} pending, {summary['submissions']} submissions; "
              f"grades: {args.out / 'grades.csv'}")
        return 0
    try:
        data = read_results(args.out, finished=False)
    except OutputError as err:
        print(f"course-grade review: error: {err}", file=sys.stderr)
        return 2
    if not data.get("manual"):
        print(f"{data.get('assignment')} has no parts graded by hand: nothing to review")
        return 0
    rows = data["submissions"]  # as merged (results.json is rewritten by each merge)
    for m in data["manual"]:
        entries = [e for r in rows for e in r.get("manual") or [] if e.get("part") == m["part"]]
        scored = sum(e.get("points") is not None for e in entries)
        print(f"{m['part']} ({float(m['points']):g} points): {scored} of {len(entries)} answers scored; "
              f"read {args.out / 'manual' / (m['part'] + '.html')}")
    print(f"score them in {args.out / 'manual.csv'}, then: course-grade review {args.out} "
          f"--merge {args.out / 'manual.csv'}")
    return 0


def _report(args, fail) -> int:
    from course_grade.classreport import write_report
    from course_grade.report import OutputError

    try:
        start = time.monotonic()
        written, summary = write_report(args.out)
    except OutputError as err:
        print(f"course-grade report: error: {err}", file=sys.stderr)
        return 2
    print(f"{summary} ({time.monotonic() - start:.1f} s)")
    for path in written:
        print(f"  {path}")
    return 0


def _export(args, fail) -> int:
    from course_grade.export import command

    return command(args)


def _status(args, fail) -> int:
    from course_grade.report import OutputError, read_results

    try:
        data = read_results(args.out, finished=False)
    except OutputError as err:
        print(f"course-grade status: error: {err}", file=sys.stderr)
        return 2
    rows = data["submissions"]  # as merged (results.json is rewritten by each merge)
    by_status: dict[str, list[dict]] = {}
    for r in rows:
        by_status.setdefault(r["status"], []).append(r)
    print(f"{args.out}: {len(rows)} submissions of {data.get('assignment')} (seed {data.get('seed')})")
    graded = sum(len(by_status.get(s, [])) for s in ("graded", "timeout", "crashed"))
    print(f"  graded: {len(by_status.get('graded', []))}"
          + (f" ({graded} with a score, counting timeouts and crashes)" if graded != len(by_status.get('graded', [])) else ""))
    pending = by_status.get("pending", [])
    print(f"  pending: {len(pending)}" + (" (the batch did not finish: run the same `course-grade grade` "
                                          "command again)" if pending else ""))
    for r in pending[:20]:
        print(f"    {r['submission']}")
    failed = [r for s in ("timeout", "crashed", "invalid", "error") for r in by_status.get(s, [])]
    print(f"  failed: {len(failed)}")
    for r in failed:
        print(f"    {r['submission']}: {r['status']}: {r.get('reason', '')}")
    to_score = [(r["submission"], e["part"]) for r in rows for e in r.get("manual") or []
                if r["status"] in ("graded", "timeout", "crashed") and e.get("points") is None]
    if data.get("manual"):
        print(f"  written answers to score: {len(to_score)}"
              + (f" (course-grade review {args.out})" if to_score else ""))
    return 0 if not pending and not failed and not to_score else 1


_RUN = {"release": _release, "grade": _grade, "review": _review, "report": _report,
        "export": _export, "status": _status}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``course-grade`` and ``python -m course_grade``; the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    new = legacy_command(argv)
    if new is not None:
        print("course-grade: the command line changed (course-grade now has subcommands; "
              "`course-grade --help` lists them). Nothing was run. Say:\n"
              f"  course-grade {shlex.join(new)}", file=sys.stderr)
        return 2
    top = parser()
    args = top.parse_args(argv)
    sub = top._subparsers._group_actions[0].choices[args.command]  # for its usage in errors
    return _RUN[args.command](args, sub.error)
