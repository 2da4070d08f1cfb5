#!/usr/bin/env bash
# Run the whole test suite: course_lib's unit tests, the exercise notebooks under nbval, the
# student copies, a full book build with warnings as errors, and the website in a headless
# browser with the network off (Debian's chromium, installed here when missing).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# System packages: Debian's chromium (the browser test) and bubblewrap (the grader's sandbox).
missing=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]} (apt-get; about a minute)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    echo "error: could not install ${missing[*]}; install them with apt-get (or set CHROMIUM=/path/to/chromium)" >&2
    exit 1
  fi
fi
python -m pytest "$@"
