"""What the theory predicts and how the computed spectrum compares (theory §4–5, §7–8, §11–13).

Approximate eigenvectors and the checks of Theorems 2–3 and Lemma 2, the infinite-width
limit, the function space, the NTK, learning dynamics and risk.
"""

from .checks import TheoryCheck, check_theory, cluster_alignment, cluster_cosines, spectrum_summary
from .depth import (
    DepthDegree,
    DepthLimit,
    PredictedSubspaces,
    composed_kernel,
    depth_limit_spectrum,
    network_limit_spectrum,
    predicted_subspaces,
    subspace_alignment,
    top_fraction_by_depth,
)
from .dynamics import GradientDescentResult, default_target, gradient_descent
from .functions import (
    FunctionApproximation,
    FunctionForms,
    InnerProduct,
    approximate_function,
    fisher_inner_product,
    function_forms,
    network_function,
    predicted_eigenfunctions,
)
from .limit import LimitDegree, LimitSpectrum, limit_cluster_values, limit_spectrum, trace_share_curve
from .ntk import FisherNTKMap, NTKLimit, fisher_ntk_map, ntk_gram, ntk_limit
from .risk import EstimatorRisk, RiskResult, counting_function, estimator_risk, mixture_redundancy, risk, tail_sums
from .vectors import TRACE_SHARE_BOUND, TheoryVectors, theorem2_coefficients, theorem3_bounds, theory_vectors

__all__ = [
    "theory_vectors",
    "TheoryVectors",
    "theorem2_coefficients",
    "theorem3_bounds",
    "TRACE_SHARE_BOUND",
    "check_theory",
    "TheoryCheck",
    "cluster_alignment",
    "cluster_cosines",
    "spectrum_summary",
    "limit_spectrum",
    "LimitSpectrum",
    "LimitDegree",
    "limit_cluster_values",
    "trace_share_curve",
    "network_function",
    "function_forms",
    "FunctionForms",
    "fisher_inner_product",
    "InnerProduct",
    "approximate_function",
    "FunctionApproximation",
    "predicted_eigenfunctions",
    "ntk_gram",
    "ntk_limit",
    "NTKLimit",
    "fisher_ntk_map",
    "FisherNTKMap",
    "gradient_descent",
    "GradientDescentResult",
    "default_target",
    "risk",
    "RiskResult",
    "estimator_risk",
    "EstimatorRisk",
    "counting_function",
    "tail_sums",
    "mixture_redundancy",
    "depth_limit_spectrum",
    "network_limit_spectrum",
    "DepthLimit",
    "DepthDegree",
    "top_fraction_by_depth",
    "composed_kernel",
    "predicted_subspaces",
    "PredictedSubspaces",
    "subspace_alignment",
]
