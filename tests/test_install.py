"""course_lib as a student or an instructor installs it: the wheel that ``python -m build`` makes,
installed into a fresh virtual environment (not the repository's), imported from a folder
outside the repository. Every student-facing module imports, every data file loads, a check
judges an answer; the grader (the package ``course_grade``, in the same wheel), whose
dependencies are not installed by default, names the extra that installs them, and the
wheel's metadata requires none of them without that extra; ``pip install
"course_lib[grade]"`` gives a working ``course-grade`` with its six subcommands.

Needs PyPI (the build's setuptools and course_lib's dependencies); pip's cache makes a rerun
fast (about a minute and a half here with a warm cache).
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a student's notebook may import: every course_lib module but the instructors' grading
#: (the [grade] extra) and release (an author's tool); not the data folder's scripts.
STUDENT_MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "course_lib").rglob("*.py")
    if not {"grading", "release.py", "data", "__pycache__"} & set(path.relative_to(ROOT).parts))

STUDENT_SCRIPT = r'''
import importlib, json, sys
from pathlib import Path

import numpy as np

modules = [importlib.import_module(name) for name in sys.argv[1].split(",")]
import course_lib
from course_lib import checks, datasets, lnp
from course_lib.book import glue
from course_lib.plotting import set_style

shapes = {name: list(datasets.load_dataset(name).shape) for name in datasets.list_datasets().index}
neuron = lnp.load_recorded_neuron()
grasshopper = lnp.load_grasshopper(1)
set_style()
from course_lib.mixed import lmer  # the lme4-class engine, on NLopt's BOBYQA
fit = lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", datasets.load_sleepstudy())
glue("b1", np.float64(10.47))  # no myst-nb here: checked, glued nowhere
verdict = checks.run("ex1-fit-ols", lambda X, y: np.linalg.solve(X.T @ X, X.T @ y))
wrong = checks.run("ex1-fit-ols", lambda X, y: np.zeros(X.shape[1]))
try:
    import course_grade
    grading = "imported"
except ImportError as err:
    grading = str(err)
print(json.dumps({
    "version": course_lib.__version__,
    "files": sorted({str(Path(m.__file__).resolve()) for m in modules}),
    "shapes": shapes,
    "neuron_spikes": int(len(neuron.spike_times)),
    "grasshopper_spikes": int(np.size(grasshopper.spike_times)),
    "verdict": [verdict.status, verdict.points, str(verdict)],
    "wrong": [wrong.status, wrong.points],
    "grading": grading,
    "fixef": {k: float(v) for k, v in fit.fixef.items()},
    "fixef_se": {k: float(v) for k, v in fit.fixef_se.items()},
}))
'''


def run(*args, cwd, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel, work folder): the wheel built from a copy of the package's files and
    installed, without extras, into a fresh venv."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"  # a copy, so that the build leaves no build/ or egg-info in the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("course_lib", "course_grade"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    run(sys.executable, "-m", "build", "--outdir", tmp / "dist", src, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("course_lib-*.whl")
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    venv_python = tmp / "venv" / "bin" / "python"
    run(venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", wheel, cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return tmp / "venv", wheel, work


def test_student_modules_are_every_topic_module_and_the_checks():
    assert {"course_lib", "course_lib.mixed", "course_lib.mixed.fit", "course_lib.lnp", "course_lib.checks",
            "course_lib.checks.ex05", "course_lib.plotting"} <= set(STUDENT_MODULES)
    assert not [m for m in STUDENT_MODULES if m.startswith(("course_grade", "course_lib.release"))]


def test_wheel_is_named_by_the_version_in_course_lib_init(installed):
    _, wheel, _ = installed
    version = next(line.split('"')[1] for line in (ROOT / "course_lib" / "__init__.py").read_text().splitlines()
                   if line.startswith("__version__"))
    assert wheel.name == f"course_lib-{version}-py3-none-any.whl"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dynamic"] == ["version"]


def test_installed_wheel_imports_every_student_module_loads_its_data_and_judges_a_check(installed):
    import json

    venv, _, work = installed
    proc = run(venv / "bin" / "python", "-c", STUDENT_SCRIPT, ",".join(STUDENT_MODULES), cwd=work)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    site = str((venv / "lib").resolve())
    assert result["files"] and all(f.startswith(site) for f in result["files"]), result["files"]
    # the data files are in the wheel: the shapes of lme4's data sets (R: dim(sleepstudy) etc.)
    assert result["shapes"]["sleepstudy"] == [180, 3]
    assert result["shapes"]["machines"] == [54, 3] and result["shapes"]["pixel"][0] == 102
    assert result["neuron_spikes"] > 0 and result["grasshopper_spikes"] > 0
    assert result["verdict"][:2] == ["passed", 1], result["verdict"]
    assert result["wrong"] == ["failed", 0]
    # the mixed-model engine runs on the declared dependencies: lme4 1.1-31's sleepstudy fit
    lme4 = json.loads((ROOT / "tests" / "reference" / "lme4_reference.json").read_text())["fits"]
    want = lme4["sleep_correlated_reml"]
    for what in ("fixef", "fixef_se"):
        for name, value in want[what].items():
            assert result[what][name] == pytest.approx(value, rel=1e-4), (what, name)
    # the grader's dependencies are an extra, and the error says which
    assert 'pip install "course_lib[grade]"' in result["grading"], result["grading"]


def test_the_wheel_carries_the_grader_but_requires_its_dependencies_only_with_the_grade_extra(installed):
    import zipfile

    from course_grade import GRADE_EXTRA

    _, wheel, _ = installed
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "course_grade/cli.py" in names and "course_grade/runner.py" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    plain = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
             for r in requires if "extra ==" not in r}
    grader = {d for d in GRADE_EXTRA.values() if d != "tqdm"}  # tqdm: the notebooks' progress bars too
    assert plain and not plain & grader, f"a student's install would pull {plain & grader}"
    graded = [r for r in requires if "extra == \"grade\"" in r]
    assert {r.split("<")[0].split(">")[0].split("=")[0].strip().lower() for r in graded} >= grader


def test_grade_extra_gives_a_working_course_grade(installed):
    venv, wheel, work = installed
    run(venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
        f"{wheel}[grade]", cwd=work)
    proc = run(venv / "bin" / "course-grade", "--help", cwd=work)
    assert proc.stdout.startswith("usage: course-grade"), proc.stdout[:500]
    for command in ("release", "grade", "review", "report", "export", "status"):
        assert f"    {command} " in proc.stdout, (command, proc.stdout[:1500])
    assert "--scheduler" in run(venv / "bin" / "course-grade", "grade", "--help", cwd=work).stdout
    run(venv / "bin" / "python", "-c", "import course_grade.batch, course_grade.distributed", cwd=work)
