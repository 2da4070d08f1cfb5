"""One look for every figure of the course, set once instead of in every notebook.

``set_style()`` applies a seaborn theme with readable font sizes and the colour-blind-safe
palette; chapters call it in their first cell.
"""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

__all__ = ["set_style"]


def set_style() -> None:
    """Apply the course's matplotlib/seaborn style (white grid, colour-blind palette)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
