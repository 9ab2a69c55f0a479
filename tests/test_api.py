"""The public API as a careless user meets it: every exported function refuses a wrong-kind argument.

Issue 10: no public function decides from an array's shape what the array is. Each function of
``relufim.__all__`` is called with the kinds of input people confuse (a FIM where hidden weights
are expected and the reverse, a 1-D array where a 2-D one is expected, a matrix where eigenvalues
are expected, an array where an integer is expected) and must raise a TypeError or ValueError
whose message names the argument or the fix. A function added to ``__all__`` without a case here
fails ``test_every_public_function_is_covered``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import relufim as rf

W = rf.sample_weights(3, 6, seed=0)  # hidden weights (d, p) = (3, 6)
J = rf.fisher_matrix(W)  # its 6 x 6 FIM: a square array, which is not hidden weights
X1 = np.ones(6)  # a 1-D array
EIG = np.linalg.eigvalsh(J)[::-1]
x = np.random.default_rng(0).standard_normal((5, 3))

FIM_FOR_W = (ValueError, r"square array is a matrix.*matrix_spectrum")
W_TRANSPOSED = (ValueError, r"transposed, pass W\.T")
ONE_D_FOR_W = (ValueError, r"2-D with shape \(d, p\).*reshape")
NOT_AN_INT = (TypeError, r"must be an integer")

#: function -> list of (args, kwargs, exception, regex the message must match)
CASES: dict[str, list[tuple[tuple, dict, type, str]]] = {}


def _weights_first(name: str, *rest, **kw) -> None:
    """Functions whose first argument is hidden weights W: a FIM, W.T and a 1-D array are refused."""
    CASES[name] = [((J, *rest), kw, *FIM_FOR_W), ((W.T, *rest), kw, *W_TRANSPOSED), ((X1, *rest), kw, *ONE_D_FOR_W)]


for _name in ("fisher_matrix", "fisher_operator", "spectrum", "spectral_density", "theory_vectors", "check_theory",
              "function_forms", "fisher_ntk_map", "gradient_descent", "column_norms"):
    _weights_first(_name)
_weights_first("monte_carlo_fisher", 100)
_weights_first("empirical_fisher", x)
_weights_first("hidden_features", x)
_weights_first("series_fisher", 3)
_weights_first("network_function", np.ones(6), x)
_weights_first("fisher_inner_product", np.ones(6), np.ones(6))
_weights_first("approximate_function", np.ones(6))
_weights_first("ntk_gram", x)
_weights_first("risk", np.ones(6), np.zeros(6))
_weights_first("estimator_risk", 50)
_weights_first("two_stage_code", 50, radius=1.0)
_weights_first("kl_divergence", np.ones(6), np.zeros(6))
_weights_first("renyi_divergence", np.ones(6), np.zeros(6))

# the second argument of the W functions: inputs x must be 2-D (n, d), vectors 1-D (p,)
CASES["empirical_fisher"].append(((W, np.ones(3)), {}, ValueError, r"x must be 2-D.*reshape\(1, -1\)"))
CASES["hidden_features"].append(((W, x.T), {}, ValueError, r"x must have shape \(n, d\)"))
CASES["network_function"].append(((W, np.ones((6, 2, 2)), x), {}, ValueError, r"v must have shape"))
CASES["approximate_function"].append(((W, J), {}, ValueError, r"v must have shape \(6,\).*one vector at a time"))
CASES["risk"].append(((W, np.ones(5), np.zeros(6)), {}, ValueError, r"v must have shape \(6,\)"))
CASES["fisher_inner_product"].append(((W, J, np.ones(6)), {}, ValueError, r"u must have shape \(6,\)"))

# matrices: hidden weights are refused, with the pointer to spectrum(W)
CASES["matrix_spectrum"] = [((W,), {}, ValueError, r"square matrix \(p, p\).*relufim\.spectrum\(W\)"),
                            ((X1,), {}, ValueError, r"square matrix"),
                            ((rf.fisher_operator(rf.sample_weights(3, 20, seed=0)).matmat,), {}, TypeError,
                             r"LinearOperator")]
CASES["matrix_spectral_density"] = [((W,), {}, ValueError, r"square matrix \(p, p\).*relufim\.spectrum\(W\)"),
                                    ((rf.fisher_operator(rf.sample_weights(3, 20, seed=0)).matmat,), {}, TypeError,
                                     r"square NumPy array or LinearOperator")]
CASES["feature_spectrum"] = [((X1,), {}, ValueError, r"features of shape \(n, p\).*reshape"),
                             (("X",), {}, ValueError, r"2-D features")]

# eigenvalues: a matrix (a FIM or W) is refused, with the pointer to matrix_spectrum / spectrum
NOT_EIGENVALUES = r"1-D array of eigenvalues.*matrix_spectrum"
CASES["counting_function"] = [((J, 1e-3), {}, TypeError, NOT_EIGENVALUES), ((W, 1e-3), {}, TypeError, NOT_EIGENVALUES)]
CASES["tail_sums"] = [((J,), {}, TypeError, NOT_EIGENVALUES), ((W,), {}, TypeError, NOT_EIGENVALUES)]
CASES["mixture_redundancy"] = [((J, 10), {}, TypeError, NOT_EIGENVALUES), ((W, 10), {}, TypeError, NOT_EIGENVALUES)]
CASES["detect_clusters"] = [((J,), {}, TypeError, NOT_EIGENVALUES)]

# inputs x for the limit kernel
CASES["ntk_limit"] = [((X1,), {}, ValueError, r"x must have shape \(n, d\)")]

# subspaces
CASES["principal_cosines"] = [((X1, J), {}, ValueError, r"A must be a 2-D array.*v\[:, None\]"),
                              ((J, W), {}, ValueError, r"same number of rows")]

# integers (dimensions, widths, degrees): an array is not one
CASES["sample_weights"] = [((W, 6), {}, *NOT_AN_INT), ((3, 2.5), {}, *NOT_AN_INT)]
CASES["expected_squared_norm"] = [((W, 6), {}, *NOT_AN_INT)]
CASES["harmonic_multiplicity"] = [((W, 2), {}, *NOT_AN_INT), ((3, -1), {}, ValueError, r"k must be >= 0")]
CASES["zonal_polynomial"] = [((EIG, 3, 0.5), {}, *NOT_AN_INT)]
CASES["funk_hecke_coefficients"] = [((rf.arccos_kernel, W, 3), {}, *NOT_AN_INT)]
CASES["degree_le2_fraction"] = [((W,), {}, *NOT_AN_INT)]
CASES["predicted_cluster_sizes"] = [((W,), {}, *NOT_AN_INT)]
CASES["arccos_kernel_series_coefficients"] = [((W,), {}, *NOT_AN_INT)]
CASES["limit_spectrum"] = [((W,), {}, *NOT_AN_INT), ((1,), {}, ValueError, r"d must be >= 2")]
CASES["limit_cluster_values"] = [((W,), {}, *NOT_AN_INT)]
CASES["trace_share_curve"] = [((J,), {}, ValueError, r"1-D sequence of input dimensions")]
CASES["spectrum_summary"] = [((3, 6), {"W": W.T}, *W_TRANSPOSED), ((3, 7), {"W": W}, ValueError, r"must agree")]

# activations: a wrong kind of activation
CASES["get_activation"] = [((W,), {}, TypeError, r"name such as 'relu'"), (("swish?",), {}, ValueError, r"known")]
CASES["register_activation"] = [(("relu",), {}, TypeError, r"expects an Activation")]
CASES["arccos_kernel"] = [(("t",), {}, ValueError, r"could not convert")]
CASES["known_activations"] = []  # takes no argument
# deep networks and real inputs (issue 11)
CASES["deep_fisher"] = [((W,), {"method": "monte-carlo", "n": 100}, TypeError, r"list of layer weights.*\[W\]")]
CASES["network"] = [(("10", [100]), {}, TypeError, r"d must be an integer"),
                    ((10, "100"), {}, TypeError, r"sequence of positive integers")]
CASES["depth_limit_spectrum"] = [((10, np.ones(3)), {}, TypeError, r"depth must be an integer")]
# the MDL estimator (issue 14): functions of a two-stage code refuse anything else
CODE = rf.two_stage_code(W, 50, radius=1.0)
NOT_A_CODE = (TypeError, r"code must be a TwoStageCode.*two_stage_code")
CASES["two_stage_code"].append(((W, np.ones(3)), {"radius": 1.0}, *NOT_AN_INT))
CASES["kl_divergence"].append(((W, np.ones(5), np.zeros(6)), {}, ValueError, r"v must have shape \(6,\)"))
CASES["mdl_estimate"] = [((W, x, np.ones(5)), {}, *NOT_A_CODE),
                         ((CODE, np.ones(5), np.ones(5)), {}, ValueError, r"x must be 2-D.*reshape\(1, -1\)")]
CASES["index_of_resolvability"] = [((W, np.ones(6)), {}, *NOT_A_CODE),
                                   ((CODE, np.ones(5)), {}, ValueError, r"v_star must have shape \(6,\)")]
CASES["simulate_mdl_risk"] = [((W, np.ones(6)), {}, *NOT_A_CODE),
                              ((CODE, np.ones(6)), {"reps": 2.5}, TypeError, r"reps must be an integer")]
# the FIM of all parameters (issue 12): W first, then v of shape (p,)
V_OUT = np.ones(6)
for _name in ("full_fisher_matrix", "full_fisher_operator", "full_spectrum", "kfac_fisher", "block_diagonal_fisher",
              "diagonal_fisher"):
    _weights_first(_name, V_OUT)
    CASES[_name] += [((W, np.ones(5)), {}, ValueError, r"v must have shape \(6,\)"),
                     ((W, "v"), {}, TypeError, r"v must be an array of shape \(6,\)"),
                     ((W, np.full(6, np.nan)), {}, ValueError, r"v contains non-finite")]
_weights_first("full_monte_carlo_fisher", V_OUT, 100)
CASES["full_monte_carlo_fisher"].append(((W, V_OUT, 2.5), {}, *NOT_AN_INT))
_weights_first("full_empirical_fisher", V_OUT, x)
CASES["full_empirical_fisher"].append(((W, V_OUT, np.ones(3)), {}, ValueError, r"x must be 2-D.*reshape\(1, -1\)"))
_weights_first("teacher_gradient", V_OUT, W, V_OUT)
CASES["teacher_gradient"].append(((W, V_OUT, W, np.ones(5)), {}, ValueError, r"v_teacher must have shape \(6,\)"))
F_ALL = rf.full_fisher_matrix(W, V_OUT)  # 24 x 24
CASES["natural_gradient"] = [((W, np.ones(3), 1e-3), {}, ValueError, r"A must be a square matrix"),
                             ((F_ALL, np.ones(5), 1e-3), {}, ValueError, r"g must have shape \(24,\)"),
                             ((F_ALL, np.ones(24), -1.0), {}, ValueError, r"damping must be finite and > 0")]
_weights_first("curvature_reference", V_OUT, np.ones(24))
CASES["curvature_reference"].append(((W, V_OUT, np.ones(5)), {}, ValueError, r"g must have shape \(24,\)"))
CASES["full_spectrum_route"] = [((W,), {}, *NOT_AN_INT), ((24,), {"distributed": "yes"}, TypeError, r"True or False"),
                                ((24, "all"), {"method": "matrix-free"}, ValueError, r"k='all' needs the dense route")]
CASES["spectrum_route"] = [((W, 5), {}, *NOT_AN_INT), ((24, W), {}, *NOT_AN_INT),
                           ((24, 5), {"distributed": "yes"}, TypeError, r"True or False"),
                           ((24,), {}, ValueError, r"k='clusters' needs the input dimension: pass d="),
                           ((24, "all"), {"method": "matrix-free"}, ValueError, r"k='all' needs the dense matrix"),
                           ((24, 5), {"method": "matrix-free", "activation": "tanh"}, ValueError,
                            r"leaky-ReLU family, not tanh"),
                           ((24, 5), {"precision": "half"}, ValueError, r"precision must be one of"),
                           ((24, "all"), {"method": "block"}, ValueError, r"k='all' needs the dense route"),
                           ((24, 5), {"precision": "mixed", "activation": "tanh"}, ValueError,
                            r"drop precision='mixed' for the dense route"),
                           ((24, 5), {"precision": "mixed", "method": "dense"}, ValueError,
                            r"options of the matrix-free operator")]
CASES["compare_curvature"] = [((F_ALL, F_ALL, "exact"), {}, TypeError, r"ref must be the CurvatureReference")]
CASES["load_inputs"] = [((3,), {}, TypeError, r"name"), (("cifar",), {}, ValueError, r"digits")]


def _public_functions() -> list[str]:
    return sorted(name for name in rf.__all__
                  if callable(getattr(rf, name)) and not inspect.isclass(getattr(rf, name)))


def test_every_public_function_is_covered():
    missing = set(_public_functions()) - set(CASES)
    assert not missing, f"public functions without a wrong-kind case in tests/test_api.py: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_wrong_kind_arguments_are_refused_with_the_fix(name):
    func = getattr(rf, name)
    for args, kwargs, exc, words in CASES[name]:
        with pytest.raises(exc, match=words):
            func(*args, **kwargs)


def test_moved_names_say_where_they_went():
    for name, where in (("convergence", "relufim.experiments.convergence"), ("run_sweep", "relufim.sweep"),
                        ("log_det_term", "mixture_redundancy")):
        with pytest.raises(AttributeError, match=where):
            getattr(rf, name)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        rf.nonsense  # noqa: B018


def test_the_root_is_a_facade_of_the_library_only():
    """Importing relufim loads no application layer (experiments, report, sweep, cli) and no matplotlib."""
    import subprocess
    import sys

    code = ("import sys, relufim; bad = [m for m in sys.modules if m.split('.')[:2] in "
            "(['relufim', 'experiments'], ['relufim', 'report'], ['relufim', 'sweep'], ['relufim', 'cli']) "
            "or m == 'matplotlib']; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
