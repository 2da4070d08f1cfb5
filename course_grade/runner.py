"""Run one prepared notebook inside the sandbox and report, cell by cell, as JSON lines.

This is the only grading code that runs inside the sandbox, next to the student's kernel::

    python -m course_grade.runner --cell-timeout 120 --kernel-memory-mb 2048 < run.ipynb

It reads the run notebook (built by :mod:`course_grade.notebook`) from stdin,
starts a fresh IPython kernel, executes the cells in order and writes one JSON line to
stdout per event:

``{"event": "started", "seconds": s}``
    the kernel is up;
``{"event": "cell", "index": i, "error": "NameError: ..." | null, "records": [...]}``
    cell ``i`` finished; for a restored check cell (``metadata.course_grade``), ``records``
    holds the :data:`~course_grade.kernel.RECORD_MIME` output it published (a second
    one is reported as an empty string; only the first is kept);
``{"event": "end", "reason": "done" | "timeout" | "dead" | "error", "index": i, "seconds": s}``
    the run is over (a cell timed out, or the kernel died ``s`` seconds into cell ``i``;
    ``error`` comes with a ``message``).

Nothing else of the cells' output is kept, so a huge output costs time, not memory. The
runner makes itself non-dumpable, so the kernel (same uid) cannot open its stdout through
``/proc`` or trace it; the kernel's own stdout and stderr go to ``/dev/null``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import resource
import subprocess
import sys
import time

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
import nbformat

from course_grade.kernel import RECORD_MIME

#: Records larger than this (characters) are replaced by a note; a record is a few KB.
MAX_RECORD_CHARS = 8 * 2**20


def _emit(event: dict) -> None:
    line = (json.dumps(event) + "\n").encode()
    view = memoryview(line)
    while view:
        view = view[os.write(1, view):]


def _make_undumpable() -> None:
    """PR_SET_DUMPABLE 0: same-uid processes can no longer ptrace us or open /proc/<pid>/fd."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the sandbox is weaker anyway
        pass


class _ThisPython(KernelSpecManager):
    """Always this interpreter's ipykernel, whatever kernelspecs the machine has."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (grading)",
            language="python",
            resource_dir=os.getcwd(),
        )


class GradingClient(NotebookClient):
    """An nbclient that keeps only check records and error names, never outputs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records: dict[int, list[str]] = {}
        self.errors: dict[int, str] = {}
        self.on_cell_executed = self._note_error

    def create_kernel_manager(self):
        self.km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
        return self.km

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content") or {}
        data = content.get("data") if isinstance(content, dict) else None
        is_check = "course_grade" in self.nb.cells[cell_index].metadata
        if is_check and isinstance(data, dict) and RECORD_MIME in data:
            kept = self.records.setdefault(cell_index, [])
            record = data[RECORD_MIME]
            if kept:  # counted, not kept: more than one record fails the part anyway
                kept[1:] = [""]
            elif isinstance(record, str) and len(record) <= MAX_RECORD_CHARS:
                kept.append(record)
            else:
                kept.append(json.dumps({"problem": "the check's record of your results was too large"}))
        return None  # outputs are not stored: stored or printed output counts for nothing

    def handle_comm_msg(self, outs, msg, cell_index):
        return None  # widgets are not rendered while grading

    def _note_error(self, cell, cell_index, execute_reply):
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            self.errors[cell_index] = f"{content.get('ename', '?')}: {content.get('evalue', '')}"[:500]


async def run(nb, cell_timeout: int, kernel_memory: int | None) -> None:
    client = GradingClient(
        nb,
        timeout=cell_timeout,
        startup_timeout=120,
        allow_errors=True,
        record_timing=False,
        iopub_timeout=4,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": os.getcwd()}},
        extra_arguments=["--HistoryManager.enabled=False"],
    )

    def limit_kernel():  # runs in the kernel's process before exec: a hard memory cap
        if kernel_memory:
            resource.setrlimit(resource.RLIMIT_AS, (kernel_memory, kernel_memory))

    start = time.monotonic()
    index = -1
    try:
        async with client.async_setup_kernel(
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=limit_kernel,
        ):
            _emit({"event": "started", "seconds": round(time.monotonic() - start, 3)})
            for index, cell in enumerate(nb.cells):
                began = time.monotonic()
                try:
                    await client.async_execute_cell(cell, index)
                except (CellTimeoutError, DeadKernelError) as stop:
                    reason = "timeout" if isinstance(stop, CellTimeoutError) else "dead"
                    _emit({"event": "end", "reason": reason, "index": index,
                           "seconds": round(time.monotonic() - began, 3)})
                    return
                _emit({
                    "event": "cell",
                    "index": index,
                    "error": client.errors.get(index),
                    "records": client.records.pop(index, []),
                })
            _emit({"event": "end", "reason": "done", "index": index})
    except Exception as err:  # kernel failed to start, or the connection broke
        _emit({"event": "end", "reason": "error", "index": index,
               "message": f"{type(err).__name__}: {err}"[:500]})


def main(argv: list[str] | None = None) -> int:
    _make_undumpable()
    parser = argparse.ArgumentParser(prog="python -m course_grade.runner")
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--kernel-memory-mb", type=int, default=0)
    args = parser.parse_args(argv)
    nb = nbformat.reads(sys.stdin.read(), as_version=4)
    memory = args.kernel_memory_mb * 2**20 if args.kernel_memory_mb else None
    asyncio.run(run(nb, args.cell_timeout, memory))
    sys.stdout.flush()
    os._exit(0)  # do not wait on a kernel that ignores shutdown; the sandbox reaps it


if __name__ == "__main__":
    sys.exit(main())
