#!/usr/bin/env bash
# Check the external links of the book (needs the internet; not part of the test suite, whose
# tests/test_links.py checks every internal link and anchor offline). Report: _build/linkcheck/output.txt
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
jupyter-book build . --builder linkcheck "$@"
