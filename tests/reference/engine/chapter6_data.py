"""Write chapter 6's simulated data sets to CSV, for chapter6_reference.R to fit with lme4.

    .venv/bin/python tests/reference/engine/chapter6_data.py /tmp/chapter6-data
    Rscript tests/reference/engine/chapter6_reference.R /tmp/chapter6-data

The data come from course_lib.neurons with the chapter's seeds; the tests regenerate them
(``chapter6_datasets``), so the CSVs are not committed. MODELS is the single list of what is
fitted, read by the R script (through models.csv) and by tests/test_neurons.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from course_lib import neurons

FORMULA = "count ~ stim + (1 + stim | neuron) + offset(log(duration))"

#: name -> (data set, formula, family): the glmer fits of chapters/06-many-neurons.md
MODELS = {
    "population": ("population", FORMULA, "poisson"),
    "no_offset": ("population", "count ~ stim + (1 + stim | neuron)", "poisson"),
    "train": ("train", FORMULA, "poisson"),
    "noisy_poisson": ("noisy", FORMULA, "poisson"),
    "noisy_olre": ("noisy", FORMULA + " + (1 | trial)", "poisson"),
    "choices": ("choices", "correct ~ contrast + (1 | mouse) + (1 | session)", "binomial"),
}


def chapter6_datasets() -> dict[str, pd.DataFrame]:
    """The chapter's data sets, made exactly as the chapter makes them."""
    data, _ = neurons.simulate_population(seed=2)
    train, _ = neurons.split_trials(data, held_out=1, seed=3)
    noisy, _ = neurons.simulate_population(n_neurons=40, n_trials=20, n_sparse=8,
                                           overdispersion=0.5, seed=5)
    choices, _ = neurons.simulate_choices(seed=3)
    return {"population": data, "train": train, "noisy": noisy, "choices": choices}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in chapter6_datasets().items():
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.17g")
    pd.DataFrame([{"name": k, "data": d, "formula": f, "family": fam}
                  for k, (d, f, fam) in MODELS.items()]).to_csv(out / "models.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/chapter6-data"))
