"""The Fisher information as matrices and operators: exact, sampled, matrix-free, t-series (theory §2–3, §9, §14–15)."""

from .deep import FeatureMoments, deep_features, deep_fisher, feature_moments
from .exact import fisher_matrix
from .full import (
    NEAR_THRESHOLD,
    FullFisherOperator,
    full_empirical_fisher,
    full_fisher_matrix,
    full_fisher_operator,
    full_gradients,
    full_hermite_features,
    full_monte_carlo_fisher,
    full_parameter_count,
    full_series_preconditioner,
    rescaling_directions,
    step_kernel_matrix,
)
from .operator import FisherOperator, fisher_operator
from .sampled import empirical_fisher, gaussian_input_chunks, hidden_features, monte_carlo_fisher
from .series import SeriesFisher, series_features, series_fisher

__all__ = [
    "fisher_matrix",
    "monte_carlo_fisher",
    "empirical_fisher",
    "hidden_features",
    "gaussian_input_chunks",
    "fisher_operator",
    "FisherOperator",
    "series_fisher",
    "series_features",
    "SeriesFisher",
    "deep_fisher",
    "deep_features",
    "feature_moments",
    "FeatureMoments",
    "full_fisher_matrix",
    "full_fisher_operator",
    "FullFisherOperator",
    "full_gradients",
    "full_monte_carlo_fisher",
    "full_empirical_fisher",
    "rescaling_directions",
    "full_hermite_features",
    "full_series_preconditioner",
    "step_kernel_matrix",
    "full_parameter_count",
    "NEAR_THRESHOLD",
]
