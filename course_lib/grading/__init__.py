"""The grader moved out of ``course_lib``: it is the package ``course_grade`` (the command
``course-grade``, installed with the ``grade`` extra). This stub only tells old command
lines and imports where it went; it imports nothing of the grader."""

MOVED = ("course_lib.grading moved: the grader is now the package course_grade, run as "
         "`course-grade <command>` or `python -m course_grade <command>` (install it with "
         'pip install "course_lib[grade]"); `course-grade --help` lists the commands')


def __getattr__(name: str):
    if name.startswith("__"):  # tools probing a module (inspect, doctest) expect AttributeError
        raise AttributeError(name)
    raise ImportError(f"{MOVED}; import course_grade instead of course_lib.grading", name=name)
