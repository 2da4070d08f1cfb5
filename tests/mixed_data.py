"""The data sets of the mixed-model tests, one loader for all of them.

lme4's data sets come from tests/reference/engine/data/ (written by the R scripts there), the
simulated designs are regenerated from their seeds (tests/reference/engine/make_data.py),
sleepstudy and Machines come from course_lib.datasets, with the columns the R scripts add.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from course_lib.datasets import load_machines, load_sleepstudy

HERE = Path(__file__).parent / "reference" / "engine"

_spec = importlib.util.spec_from_file_location("engine_make_data", HERE / "make_data.py")
make_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_data)

#: columns of the lme4 data sets that are numbers, not factors
_NUMERIC = {"InstEval": ["y"], "Penicillin": ["diameter"], "Pastes": ["strength"],
            "Dyestuff2": ["Yield"]}


@cache
def dataset(name: str) -> pd.DataFrame:
    if name in make_data.SIMULATED or name in make_data.GLMM_DATA:
        return make_data.simulated(name)
    if name in _NUMERIC:
        frame = pd.read_csv(HERE / "data" / f"{name}.csv.gz")
        for col in frame.columns:
            if col not in _NUMERIC[name]:
                frame[col] = pd.Categorical(frame[col], categories=sorted(frame[col].unique()))
        return frame
    if name == "Machines":
        return load_machines()
    sleep = load_sleepstudy()
    if name == "sleepstudy":
        return sleep
    if name == "sleep_na":  # R: Reaction[seq(5, 180, by = 17)], Days[seq(11, 180, by = 23)]
        sleep = sleep.astype({"Days": "float64"})
        sleep.loc[np.arange(4, 180, 17), "Reaction"] = np.nan
        sleep.loc[np.arange(10, 180, 23), "Days"] = np.nan
        return sleep
    sleep["w"] = 1 + sleep["Days"] % 3
    sleep["Days2"] = 2 * sleep["Days"]
    return sleep
