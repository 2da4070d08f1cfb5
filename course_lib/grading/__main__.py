"""``python -m course_lib.grading``: the old way to run the grader; says the new one."""

import shlex
import sys

from course_lib.grading import MOVED

args = sys.argv[1:]
print(f"{MOVED}. Nothing was run. Say:\n  python -m course_grade {shlex.join(args) or '--help'}"
      + ("\n(an old command line there prints its new form)" if args else ""), file=sys.stderr)
sys.exit(2)
