"""course_lib: the code behind *Mixed Models and Receptive Fields for Neuroscience*.

The chapters and exercises import from here, so that a page shows the idea and the
machinery lives in one tested place.

Modules
-------
datasets    the course's data sets (sleepstudy, Pixel, Machines), with R's names
regression  ordinary least squares by hand, as chapter 1 derives it
mixed       linear mixed models in lme4's formula syntax and vocabulary, fitted by statsmodels
pet         a simulated multi-site PET study (binding potential by age, region and site)
pooling     complete, no and partial pooling; shrinkage; a NumPyro random-slope model
lfp         simulated LFP theta power: mice, stimulation, trials and samples
bayes       Bayesian hierarchical models of a treatment effect, fitted with NumPyro
lnp         linear-nonlinear-Poisson receptive fields: likelihood, fits, lags, SVD, regularisation
checks      the exercise checks: each runs a student's code on inputs it draws, then judges
release     makes the student copies of the exercise notebooks
book        helpers for the book's pages (glue computed numbers into the prose)
plotting    one style for every figure, and offline Altair charts

The grader (``course-grade``) is the separate package ``course_grade``, installed with the
``grade`` extra; it imports ``course_lib.checks``, and nothing here imports it.
"""

__version__ = "0.1.0"
