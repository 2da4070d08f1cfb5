#!/usr/bin/env bash
# Run the whole test suite: course_lib's unit tests, the exercise notebooks under nbval, the
# student copies, and a full book build with warnings as errors.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m pytest "$@"
