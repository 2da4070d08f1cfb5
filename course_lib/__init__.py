"""course_lib: the code behind *Mixed Models and Receptive Fields for Neuroscience*.

The chapters and exercises import from here, so that a page shows the idea and the
machinery lives in one tested place.

Modules
-------
datasets    the course's data sets (sleepstudy, Pixel, Machines), with R's names
regression  ordinary least squares by hand, as chapter 1 derives it
mixed       linear mixed models in lme4's formula syntax and vocabulary, fitted by statsmodels
lnp         linear-nonlinear-Poisson receptive fields: likelihood, fits, lags, SVD, regularisation
checks      the exercise checks: each runs a student's code on inputs it draws, then judges
release     makes the student copies of the exercise notebooks
"""

__version__ = "0.1.0"
