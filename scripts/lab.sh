#!/usr/bin/env bash
# Open the exercises in JupyterLab on your own machine, in the environment Binder gives
# students (binder/requirements.txt: the course's package and runtime, JupyterLab, jupytext;
# no test or build tools). The first run creates .venv-lab/ (about a minute); later runs only
# start JupyterLab. Extra arguments go to `jupyter lab` (e.g. --no-browser, --port 8890).
COURSE_VENV=.venv-lab COURSE_REQUIREMENTS=binder/requirements.txt \
  source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# As on Binder, chapters (MyST .md) open as notebooks: binder/postBuild sets jupytext as their
# default viewer, here in a Jupyter configuration of this environment's own (your ~/.jupyter
# is left alone).
export JUPYTER_CONFIG_DIR="$PWD/.venv-lab/etc/jupyter"
[ -f "$JUPYTER_CONFIG_DIR/labconfig/default_setting_overrides.json" ] || bash binder/postBuild
exec jupyter lab --ServerApp.root_dir="$PWD" --LabApp.default_url=/lab/tree/exercises/student "$@"
