# Sourced by build.sh and test.sh: make .venv (Python 3.11) and install requirements.txt into it
# whenever requirements.txt or pyproject.toml changed since the last install. A second run
# with nothing changed costs a hash and a stat. lab.sh sets COURSE_VENV and COURSE_REQUIREMENTS
# to make the students' environment (.venv-lab from binder/requirements.txt) the same way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${COURSE_VENV:-.venv}
REQUIREMENTS=${COURSE_REQUIREMENTS:-requirements.txt}

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "error: this course needs Python 3.11; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
if [ ! -x "$VENV"/bin/python ]; then
  echo "Creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
want=$(cat "$REQUIREMENTS" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV"/.installed 2>/dev/null)" != "$want" ]; then
  echo "Installing $REQUIREMENTS into $VENV (about a minute the first time; log in $VENV/pip.log)"
  if ! "$VENV"/bin/python -m pip install -r "$REQUIREMENTS" > "$VENV"/pip.log 2>&1; then
    grep -v '^WARNING: Location' "$VENV"/pip.log | tail -40 >&2
    echo "error: pip install failed; the full log is $VENV/pip.log" >&2
    exit 1
  fi
  echo "$want" > "$VENV"/.installed
fi
export PATH="$PWD/$VENV/bin:$PATH"
