"""Experiments (application layer): one module per reproduced result; each computes and returns data."""

from .activations import softplus_vs_relu_summary
from .convergence import ConvergenceResult, convergence
from .reproduce import reproduce

__all__ = ["reproduce", "convergence", "ConvergenceResult", "softplus_vs_relu_summary"]
