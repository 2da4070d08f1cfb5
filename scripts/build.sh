#!/usr/bin/env bash
# Build the website into _build/html, executing every chapter (cached: unchanged chapters are
# not re-run). Warnings fail the build, so a broken chapter cannot go unnoticed.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
jupyter-book build . -n -W --keep-going "$@"
echo "The site is in _build/html/index.html"
