"""relufim: spectral theory of two-layer ReLU networks with random hidden weights.

The Fisher information matrix (FIM) of the output weights, its clustered spectrum, the
approximate eigenvectors of the theory, the infinite-width limit, the function space, the
NTK and the learning dynamics; every formula is in ``docs/theory.md``.

This module is a façade over the library's layers, in the order data flows through them:
``relufim.model`` (weights, activations, harmonic analysis) -> ``relufim.fim`` (matrices and
the one product engine) -> ``relufim.spectrum`` (eigenpairs with certificates) ->
``relufim.theory`` (what the papers predict). The application layer (``relufim.experiments``,
``relufim.report``, ``relufim.sweep``, ``relufim.cli``) sits above and is imported on its own.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .fim import (
    FisherOperator,
    FullFisherOperator,
    SeriesFisher,
    deep_fisher,
    empirical_fisher,
    fisher_matrix,
    fisher_operator,
    full_empirical_fisher,
    full_fisher_matrix,
    full_fisher_operator,
    full_monte_carlo_fisher,
    hidden_features,
    monte_carlo_fisher,
    series_fisher,
)
from .model import (
    Activation,
    arccos_kernel,
    arccos_kernel_series_coefficients,
    column_norms,
    degree_le2_fraction,
    expected_squared_norm,
    funk_hecke_coefficients,
    get_activation,
    harmonic_multiplicity,
    known_activations,
    load_inputs,
    network,
    register_activation,
    sample_weights,
    zonal_polynomial,
)
from .spectrum import (
    Cluster,
    SpectralDensity,
    SpectrumResult,
    detect_clusters,
    feature_spectrum,
    matrix_spectral_density,
    matrix_spectrum,
    predicted_cluster_sizes,
    principal_cosines,
    spectral_density,
    spectrum,
    spectrum_route,
)
from .theory import (
    EstimatorRisk,
    FisherNTKMap,
    FullSpectrum,
    FunctionApproximation,
    FunctionForms,
    GradientDescentResult,
    InnerProduct,
    LimitSpectrum,
    NTKLimit,
    RiskResult,
    TheoryCheck,
    TheoryVectors,
    approximate_function,
    block_diagonal_fisher,
    check_theory,
    compare_curvature,
    counting_function,
    curvature_reference,
    depth_limit_spectrum,
    diagonal_fisher,
    estimator_risk,
    fisher_inner_product,
    fisher_ntk_map,
    full_spectrum,
    full_spectrum_route,
    function_forms,
    gradient_descent,
    index_of_resolvability,
    kfac_fisher,
    kl_divergence,
    limit_cluster_values,
    limit_spectrum,
    mdl_estimate,
    mixture_redundancy,
    natural_gradient,
    network_function,
    ntk_gram,
    ntk_limit,
    renyi_divergence,
    risk,
    simulate_mdl_risk,
    spectrum_summary,
    tail_sums,
    teacher_gradient,
    theory_vectors,
    trace_share_curve,
    two_stage_code,
)

__all__ = [
    "__version__",
    # model: weights, activations, harmonic analysis
    "sample_weights",
    "expected_squared_norm",
    "column_norms",
    "Activation",
    "get_activation",
    "known_activations",
    "register_activation",
    "arccos_kernel",
    "arccos_kernel_series_coefficients",
    "harmonic_multiplicity",
    "zonal_polynomial",
    "funk_hecke_coefficients",
    "degree_le2_fraction",
    # the Fisher information: matrices and operators
    "network",
    "load_inputs",
    "fisher_matrix",
    "deep_fisher",
    "monte_carlo_fisher",
    "empirical_fisher",
    "hidden_features",
    "fisher_operator",
    "FisherOperator",
    "series_fisher",
    "SeriesFisher",
    # spectra
    "spectrum",
    "matrix_spectrum",
    "feature_spectrum",
    "spectrum_route",
    "SpectrumResult",
    "Cluster",
    "detect_clusters",
    "principal_cosines",
    "predicted_cluster_sizes",
    "spectral_density",
    "matrix_spectral_density",
    "SpectralDensity",
    # theory: approximate eigenvectors and checks
    "theory_vectors",
    "TheoryVectors",
    "check_theory",
    "TheoryCheck",
    "spectrum_summary",
    # theory: infinite width
    "limit_spectrum",
    "LimitSpectrum",
    "limit_cluster_values",
    "trace_share_curve",
    "depth_limit_spectrum",
    # theory: function space and NTK
    "network_function",
    "function_forms",
    "FunctionForms",
    "fisher_inner_product",
    "InnerProduct",
    "approximate_function",
    "FunctionApproximation",
    "ntk_gram",
    "ntk_limit",
    "NTKLimit",
    "fisher_ntk_map",
    "FisherNTKMap",
    # theory: learning and risk
    "gradient_descent",
    "GradientDescentResult",
    "risk",
    "RiskResult",
    "estimator_risk",
    "EstimatorRisk",
    "counting_function",
    "tail_sums",
    "mixture_redundancy",
    # the FIM of all parameters and the curvature approximations
    "full_fisher_matrix",
    "full_fisher_operator",
    "FullFisherOperator",
    "full_monte_carlo_fisher",
    "full_empirical_fisher",
    "full_spectrum",
    "full_spectrum_route",
    "FullSpectrum",
    "kfac_fisher",
    "block_diagonal_fisher",
    "diagonal_fisher",
    "teacher_gradient",
    "natural_gradient",
    "curvature_reference",
    "compare_curvature",
    # theory: minimum description length
    "two_stage_code",
    "mdl_estimate",
    "index_of_resolvability",
    "kl_divergence",
    "renyi_divergence",
    "simulate_mdl_risk",
]

#: Names that left the package root in 0.2 (CHANGELOG.md), with where they live now.
_MOVED = {
    "convergence": "relufim.experiments.convergence.convergence",
    "ConvergenceResult": "relufim.experiments.convergence.ConvergenceResult",
    "softplus_vs_relu_summary": "relufim.experiments.activations.softplus_vs_relu_summary",
    "run_sweep": "relufim.sweep.run_sweep",
    "load_sweep_config": "relufim.sweep.load_sweep_config",
    "SweepConfig": "relufim.sweep.SweepConfig",
    "load_results": "relufim.sweep.load_results",
    "log_det_term": "relufim.mixture_redundancy (the same value, named for what it is)",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        raise AttributeError(f"relufim.{name} moved in relufim 0.2: use {_MOVED[name]} (see CHANGELOG.md).")
    raise AttributeError(f"module 'relufim' has no attribute {name!r}")
