"""Experiments (application layer): one module per reproduced result; each computes and returns data.

Nothing here draws a figure or writes a file: :mod:`relufim.report` renders what these
functions return (tables, figures, ``report.md`` and ``report.html``).
"""

from .activations import softplus_vs_relu_summary
from .convergence import ClusterConvergence, ConvergenceResult, convergence, fit_rate, rate_verdict
from .depth import deep_spectrum_summary, depth_shares, digits_comparison, limit_by_depth
from .mdl import mdl_risk_curve, mdl_risk_grid, resolvability_vs_width
from .reproduce import reproduce

__all__ = ["reproduce", "convergence", "ConvergenceResult", "ClusterConvergence", "fit_rate", "rate_verdict",
           "softplus_vs_relu_summary", "deep_spectrum_summary", "digits_comparison", "depth_shares", "limit_by_depth",
           "mdl_risk_curve", "mdl_risk_grid", "resolvability_vs_width"]
