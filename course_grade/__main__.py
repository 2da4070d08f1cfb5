"""``python -m course_grade``: the same as the ``course-grade`` command."""

import sys

from course_grade import main

sys.exit(main())
