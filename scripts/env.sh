# Sourced by build.sh and test.sh: make .venv (Python 3.11) and install requirements.txt into it
# whenever requirements.txt or pyproject.toml changed since the last install. A second run
# with nothing changed costs a hash and a stat.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "error: this course needs Python 3.11; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$want" ]; then
  echo "Installing requirements.txt into .venv (about a minute the first time; log in .venv/pip.log)"
  if ! .venv/bin/python -m pip install -r requirements.txt > .venv/pip.log 2>&1; then
    grep -v '^WARNING: Location' .venv/pip.log | tail -40 >&2
    echo "error: pip install failed; the full log is .venv/pip.log" >&2
    exit 1
  fi
  echo "$want" > .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
