"""relufim: spectral theory of two-layer ReLU networks with random hidden weights.

The Fisher information matrix (FIM) of the output weights, its clustered spectrum,
the approximate eigenvectors of the theory, the infinite-width limit, the function
space, the NTK and the learning dynamics. See ``DESIGN.md`` for the formulas.
"""

from __future__ import annotations

from .activations import Activation, get_activation, known_activations, register_activation
from .dynamics import (
    EstimatorRisk,
    GradientDescentResult,
    RiskResult,
    counting_function,
    estimator_risk,
    gradient_descent,
    log_det_term,
    risk,
    tail_sums,
)
from .fisher import column_norms, empirical_fisher, fisher_matrix, hidden_features, monte_carlo_fisher
from .density import SpectralDensity, spectral_density
from .operator import FisherOperator, SeriesFisher, fisher_operator, series_fisher
from .checks import TheoryCheck, check_theory, spectrum_summary
from .functions import (
    FunctionApproximation,
    FunctionForms,
    InnerProduct,
    approximate_function,
    fisher_inner_product,
    function_forms,
    network_function,
)
from .kernels import arccos_kernel, arccos_kernel_series_coefficients
from .experiments.activations import softplus_vs_relu_summary
from .experiments.convergence import ConvergenceResult, convergence
from .limit import LimitSpectrum, limit_cluster_values, limit_spectrum, trace_share_curve
from .ntk import FisherNTKMap, NTKLimit, fisher_ntk_map, ntk_gram, ntk_limit
from .spectrum import Cluster, SpectrumResult, detect_clusters, principal_cosines, spectrum
from .store import load_results
from .sweep import SweepConfig, load_sweep_config, run_sweep
from .theory import TheoryVectors, predicted_cluster_sizes, theory_vectors
from .weights import expected_squared_norm, sample_weights

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # weights
    "sample_weights",
    "expected_squared_norm",
    # kernels and activations
    "arccos_kernel",
    "arccos_kernel_series_coefficients",
    "Activation",
    "get_activation",
    "known_activations",
    "register_activation",
    # infinite-width limit
    "LimitSpectrum",
    "limit_spectrum",
    "limit_cluster_values",
    "trace_share_curve",
    "convergence",
    "ConvergenceResult",
    "softplus_vs_relu_summary",
    # fisher
    "fisher_matrix",
    "monte_carlo_fisher",
    "empirical_fisher",
    "hidden_features",
    "column_norms",
    # matrix-free operator, t-series route and spectral density (issue 5)
    "fisher_operator",
    "FisherOperator",
    "series_fisher",
    "SeriesFisher",
    "spectral_density",
    "SpectralDensity",
    # spectrum and theory (issue 2)
    "spectrum",
    "SpectrumResult",
    "Cluster",
    "detect_clusters",
    "principal_cosines",
    "theory_vectors",
    "TheoryVectors",
    "predicted_cluster_sizes",
    "check_theory",
    "TheoryCheck",
    "spectrum_summary",
    # sweeps and results (issue 6)
    "run_sweep",
    "load_sweep_config",
    "SweepConfig",
    "load_results",
    # function space (issue 4)
    "network_function",
    "function_forms",
    "FunctionForms",
    "fisher_inner_product",
    "InnerProduct",
    "approximate_function",
    "FunctionApproximation",
    # learning and risk (issue 4)
    "gradient_descent",
    "GradientDescentResult",
    "risk",
    "RiskResult",
    "counting_function",
    "tail_sums",
    "log_det_term",
    "estimator_risk",
    "EstimatorRisk",
    # NTK (issue 4)
    "ntk_gram",
    "ntk_limit",
    "NTKLimit",
    "fisher_ntk_map",
    "FisherNTKMap",
]
