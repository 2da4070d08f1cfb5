"""Write the simulated designs of lme4_engine_reference.R to CSV (for R to fit).

    python tests/reference/engine/make_data.py /tmp/engine-data
    Rscript tests/reference/engine/lme4_engine_reference.R /tmp/engine-data

The tests regenerate the same data from the same seeds with course_lib.designs, so the
CSVs are not committed. SIMULATED is the single list of what is simulated, read by both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course_lib.designs import simulate_crossed

#: name -> keyword arguments of simulate_crossed
SIMULATED = {
    "crossed2k": dict(n_subjects=40, n_items=50, seed=2026),
    "crossed100k": dict(n_subjects=2000, n_items=1500, items_per_subject=50,
                        subject_sd=(50.0, 25.0), subject_corr=0.3, item_sd=(40.0, 0.0),
                        item_corr=0.0, seed=100),
}


def simulated(name: str):
    return simulate_crossed(**SIMULATED[name])[0]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/engine-data")
    out.mkdir(parents=True, exist_ok=True)
    for name in SIMULATED:
        simulated(name).to_csv(out / f"{name}.csv", index=False)
        print("wrote", out / f"{name}.csv")
