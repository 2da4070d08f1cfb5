"""Regenerate the simulated recorded-format neuron in this folder.

    python course_lib/data/recorded_neuron/make_data.py

Writes stimulus.npy, trigger_times.txt and spike_times.txt with
``course_lib.lnp.write_recorded_neuron`` (seed ``course_lib.lnp.RECORDED_SEED``).
``tests/test_lnp.py`` checks that the shipped files equal a fresh regeneration.
"""

from pathlib import Path

from course_lib.lnp import RECORDED_SEED, write_recorded_neuron

if __name__ == "__main__":
    for path in write_recorded_neuron(Path(__file__).resolve().parent, seed=RECORDED_SEED):
        print(f"wrote {path}")
