"""The sandbox one submission runs in, and the watch that stops process and memory bombs.

Two kinds, chosen once per batch (:func:`choose`):

``bwrap`` (root with bubblewrap installed: CI and the instructor's grading machine)
    A bubblewrap container with its own mount, PID, network, IPC and UTS namespaces. Its
    file system holds only the system directories (read-only), a few files of ``/etc``, the
    Python environment and the ``course_lib`` package (read-only), a scratch home
    directory, and small private ``/tmp`` and ``/dev/shm``. The repository, the
    assignment, the other submissions and the output folder are not in it. Inside,
    ``setpriv`` drops to an unprivileged uid of its own (one per concurrent job, so that
    ``RLIMIT_NPROC`` contains a fork bomb), clears capabilities and sets no-new-privs;
    ``prlimit`` caps address space, tasks, file size and CPU time. The network namespace
    has only a loopback interface. Killing ``bwrap`` kills everything inside (PID
    namespace, ``--die-with-parent``), so does killing the grader.
``weak`` (no bubblewrap, or not root)
    The same limits where the OS allows (``prlimit``; ``setpriv`` when root) and a scratch
    working directory, but no namespaces: student code can read world-readable files and
    reach the network. The grader logs a warning for every batch graded this way.

:class:`ProcessWatch` polls ``/proc`` and kills a job whose processes together exceed a
process count or a resident memory (a fork or memory bomb spread over many processes
would otherwise starve the other jobs before any rlimit stops it).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: The scratch directory's path inside the bwrap sandbox.
SANDBOX_HOME = "/home/student"
#: First uid used for sandboxed jobs: far from real users and from container id ranges.
UID_BASE = 2_100_000_000

_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "passwd", "group",
        "nsswitch.conf", "hosts", "mime.types", "ssl", "ca-certificates", "alternatives",
        "os-release")


class SandboxError(RuntimeError):
    """The sandbox cannot be set up as asked (raised before grading starts)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's run.

    Attributes
    ----------
    cell_timeout : int
        Seconds one cell may run.
    timeout : float
        Seconds the whole run may take, kernel start included.
    memory_mb : int
        Address-space cap of the kernel (MB): allocations beyond it raise ``MemoryError``.
    max_processes : int
        Processes the job may have at once before it is killed (a fork bomb).
    max_tasks : int
        ``RLIMIT_NPROC`` of the job's uid: processes plus threads, a hard cap.
    file_mb, tmp_mb : int
        Largest file the job may write, and the size of its home, ``/tmp`` and ``/dev/shm``
        (each a tmpfs of its own under bubblewrap: the job's disk quota).
    """

    cell_timeout: int = 120
    timeout: float = 600.0
    memory_mb: int = 2048
    max_processes: int = 32
    max_tasks: int = 512
    file_mb: int = 256
    tmp_mb: int = 256

    @property
    def runner_memory_mb(self) -> int:
        """The runner's own cap: room to receive a huge output message from the kernel."""
        return self.memory_mb + 1024

    @property
    def job_rss_mb(self) -> int:
        """Resident memory of all the job's processes together before the watch kills it."""
        return 2 * self.memory_mb + 1024


def choose(mode: str = "auto") -> tuple[str, str | None]:
    """Pick the sandbox kind.

    Parameters
    ----------
    mode : {"auto", "bwrap", "weak"}

    Returns
    -------
    kind : str
        ``"bwrap"`` or ``"weak"``.
    warning : str or None
        What is missing, when the sandbox is weak.

    Raises
    ------
    SandboxError
        If ``bwrap`` is asked for but cannot be used.
    """
    root = os.geteuid() == 0
    have = shutil.which("bwrap") is not None
    if mode == "bwrap" and not (root and have):
        raise SandboxError(
            "--sandbox bwrap needs root and bubblewrap (apt-get install bubblewrap); "
            f"here root={root}, bwrap={'found' if have else 'not found'}"
        )
    if mode in ("auto", "bwrap") and root and have:
        return "bwrap", None
    missing = [] if have else ["bubblewrap (bwrap) is not installed"]
    if not root:
        missing.append("the grader is not running as root")
    return "weak", (
        "WEAK SANDBOX: " + (" and ".join(missing) or "--sandbox weak was asked for") + ". "
        "Student code can read every world-readable file (including the instructor's "
        "notebook and other submissions) and reach the network. Grade as root with "
        "bubblewrap installed for a real sandbox."
    )


class Sandbox:
    """Builds the command that runs the grading runner for one submission.

    Parameters
    ----------
    kind : {"bwrap", "weak"}
    limits : Limits
    protect : iterable of Path
        Files and folders that must not be visible inside (assignment, submissions, output
        folder); a :class:`SandboxError` is raised if a read-only bind would expose one.
    """

    def __init__(self, kind: str, limits: Limits, protect: Iterable[Path] = ()):
        self.kind = kind
        self.limits = limits
        self.root = os.geteuid() == 0
        self._python_binds = _python_dirs()
        if kind == "weak" and self.root:
            blocked = _not_world_accessible([sys.executable, *self._python_binds])
            if blocked:
                raise SandboxError(
                    f"the weak sandbox runs student code as an unprivileged user, who cannot "
                    f"reach {blocked}; install bubblewrap (apt-get install bubblewrap) for the "
                    "real sandbox, or put the Python environment where every user can read it"
                )
        if kind == "bwrap":
            sources = [*self._python_binds, "/usr", *(f"/etc/{e}" for e in _ETC)]
            for path in protect:
                real = os.path.realpath(path)
                for src in sources:
                    if _within(real, os.path.realpath(src)):
                        raise SandboxError(
                            f"the sandbox would expose {path}: it is inside {src}, which the "
                            "sandbox binds read-only; move it elsewhere"
                        )

    def uses_uids(self) -> bool:
        """Whether each job runs under a uid of its own (root only)."""
        return self.root

    def prepare_scratch(self, scratch: Path, uid: int | None, fontlist: Path | None) -> None:
        """Create a job's empty scratch home (owned by the job's uid) and its caches."""
        mpl = scratch / ".config" / "matplotlib"
        mpl.mkdir(parents=True)
        (scratch / "tmp").mkdir()
        if fontlist is not None:  # saves matplotlib a font scan of a second or more per run
            shutil.copyfile(fontlist, mpl / fontlist.name)
        if uid is not None:
            for path in [scratch, *scratch.rglob("*")]:
                os.lchown(path, uid, uid)
        os.chmod(scratch, 0o700)

    def command(self, scratch: Path, uid: int | None) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run the runner for one job.

        Parameters
        ----------
        scratch : Path
            The job's scratch home (see :meth:`prepare_scratch`).
        uid : int or None
            The job's unprivileged uid (root only).
        """
        lim = self.limits
        home = SANDBOX_HOME if self.kind == "bwrap" else str(scratch)
        tmp = "/tmp" if self.kind == "bwrap" else str(scratch / "tmp")
        env = _environment(home, tmp)
        runner = [sys.executable, "-m", "course_grade.runner",
                  "--cell-timeout", str(lim.cell_timeout), "--kernel-memory-mb", str(lim.memory_mb)]
        prlimit = ["prlimit", f"--as={lim.runner_memory_mb * 2**20}", f"--fsize={lim.file_mb * 2**20}",
                   "--core=0", "--nofile=1024", f"--cpu={int(lim.timeout) * 2 + 60}"]
        drop: list[str] = []
        if uid is not None:
            prlimit.append(f"--nproc={lim.max_tasks}")
            drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        inner = [*drop, *prlimit, "--", *runner]
        if self.kind == "weak":
            return ["nice", "-n", "10", *inner], env
        argv = ["nice", "-n", "10", "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--hostname", "grading", "--ro-bind", "/usr", "/usr"]
        for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(link):
                argv += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                argv += ["--ro-bind", link, link]
        for entry in _ETC:
            if os.path.exists(f"/etc/{entry}"):
                argv += ["--ro-bind", f"/etc/{entry}", f"/etc/{entry}"]
        # The private /tmp, /dev/shm and /home come first: bwrap applies its options in order,
        # so a later --tmpfs /tmp would hide a Python environment that lives under /tmp.
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(lim.tmp_mb * 2**20), "--tmpfs", "/tmp",
                 "--perms", "1777", "--size", str(lim.tmp_mb * 2**20), "--tmpfs", "/dev/shm",
                 "--perms", "0755", "--dir", "/home"]
        made = {"/", "/usr", "/etc", "/home", "/tmp", "/proc", "/dev"}
        for path in self._python_binds:
            for parent in reversed(Path(path).parents):
                p = str(parent)
                if p not in made and not _within(p, "/usr"):
                    argv += ["--perms", "0755", "--dir", p]
                    made.add(p)
            if not _within(path, "/usr"):
                argv += ["--ro-bind", path, path]
        # The home is a tmpfs of its own, not the host's scratch folder: its size is the
        # job's disk quota, so no number of files can fill the grader's disk. The prepared
        # caches are bound into it read-only, file by file.
        argv += ["--perms", "1777", "--size", str(lim.tmp_mb * 2**20), "--tmpfs", SANDBOX_HOME]
        for path in sorted(scratch.rglob("*")):
            inside = f"{SANDBOX_HOME}/{path.relative_to(scratch).as_posix()}"
            if path.is_dir():
                argv += ["--perms", "1777", "--dir", inside]
            elif path.is_file():
                argv += ["--ro-bind", str(path), inside]
        argv += ["--chdir", SANDBOX_HOME, "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [*argv, "--", *inner], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def describe(self) -> str:
        lim = self.limits
        what = ("bubblewrap: own mount, PID, network and IPC namespaces; unprivileged uid per job"
                if self.kind == "bwrap" else "weak: limits and a scratch directory only")
        return (f"{what}; cell timeout {lim.cell_timeout} s, notebook timeout {lim.timeout:g} s, "
                f"memory {lim.memory_mb} MB per process, at most {lim.max_processes} processes")


def _within(path: str, folder: str) -> bool:
    path, folder = os.path.normpath(path), os.path.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _not_world_accessible(paths: Iterable[str]) -> str | None:
    """The first folder on the way to one of ``paths`` that other users cannot enter."""
    for path in paths:
        for folder in [*reversed(Path(os.path.realpath(path)).parents), Path(os.path.realpath(path))]:
            if folder.is_dir() and not folder.stat().st_mode & 0o001:
                return str(folder)
    return None


def _python_dirs() -> list[str]:
    """The Python environment and the package folders of ``course_lib`` (the checks'
    ``collect``) and ``course_grade`` (the runner and ``emit``), not the repository."""
    import course_lib

    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            str(Path(course_lib.__file__).resolve().parent), str(Path(__file__).resolve().parent)}
    dirs = {os.path.normpath(d) for d in dirs}
    # a folder inside another bound folder needs no bind of its own
    return sorted(d for d in dirs if not any(d != o and _within(d, o) for o in dirs))


def _environment(home: str, tmp: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "USER": "student", "LOGNAME": "student",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": tmp,
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
        "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }


def uid_range(grader_pid: int) -> range:
    """The sandbox uids a grader process hands out to its jobs (one per job slot)."""
    base = UID_BASE + (grader_pid % 20_000) * 64
    return range(base, base + 64)


def processes_of(uid: int) -> list[int]:
    """Pids of the processes whose real uid is ``uid``."""
    return [pid for pid, (real, _) in _scan().items() if real == uid]


def kill_uid(uid: int) -> None:
    """SIGKILL every process of a sandbox uid (never a real user's)."""
    if uid < UID_BASE:
        raise ValueError(f"refusing to kill the processes of uid {uid}: not a sandbox uid")
    for pid in processes_of(uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _scan() -> dict[int, tuple[int, int]]:
    """{pid: (real uid, resident kB)} for every process, read from /proc/<pid>/status."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb", buffering=0) as fh:
                text = fh.read(4096)
        except OSError:
            continue
        # Two fields of about fifty: find them rather than split every line (the watch
        # scans every 0.3 s, and one scan per grading process).
        at = text.find(b"\nUid:")
        if at < 0:
            continue
        uid = int(text[at + 5:at + 48].split()[0])
        at = text.find(b"\nVmRSS:")
        rss = int(text[at + 7:at + 48].split()[0]) if at >= 0 else 0  # kernel threads: none
        table[int(entry.name)] = (uid, rss)
    return table


class ProcessWatch(threading.Thread):
    """Polls ``/proc`` and reports jobs (by uid) that exceed their process or memory budget.

    Parameters
    ----------
    interval : float
        Seconds between scans.
    """

    def __init__(self, interval: float = 0.3):
        super().__init__(name="course-grade-watch", daemon=True)
        self.interval = interval
        self._jobs: dict[int, tuple[int, int, Callable[[str], None]]] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def watch(self, uid: int, limits: Limits, on_breach: Callable[[str], None]) -> None:
        """Start watching ``uid``; ``on_breach(reason)`` is called once, from this thread."""
        with self._lock:
            self._jobs[uid] = (limits.max_processes, limits.job_rss_mb * 1024, on_breach)

    def unwatch(self, uid: int) -> None:
        with self._lock:
            self._jobs.pop(uid, None)

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            with self._lock:
                jobs = dict(self._jobs)
            if not jobs:
                continue
            count: dict[int, int] = {}
            rss: dict[int, int] = {}
            for uid, kb in _scan().values():
                if uid in jobs:
                    count[uid] = count.get(uid, 0) + 1
                    rss[uid] = rss.get(uid, 0) + kb
            for uid, (max_procs, max_kb, on_breach) in jobs.items():
                n, kb = count.get(uid, 0), rss.get(uid, 0)
                reason = None
                if n > max_procs or kb > max_kb:
                    reason = (f"it ran {n} processes holding {kb // 1024} MB at once, beyond the "
                              f"limit of {max_procs} processes or {max_kb // 1024} MB "
                              "(a fork or memory bomb?), and was stopped")
                if reason:
                    self.unwatch(uid)
                    on_breach(reason)


def fontlist_cache() -> Path | None:
    """matplotlib's font cache of this environment, to seed each sandbox (None if absent)."""
    try:
        import matplotlib
        from matplotlib import font_manager  # noqa: F401  (builds the cache if missing)

        found = sorted(Path(matplotlib.get_cachedir()).glob("fontlist-v*.json"))
    except Exception:  # matplotlib is optional for grading
        return None
    return found[-1] if found else None


def wait_gone(uid: int, seconds: float = 5.0) -> bool:
    """Wait until no process of ``uid`` is left; True if none is."""
    deadline = time.monotonic() + seconds
    while processes_of(uid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
