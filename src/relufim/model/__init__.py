"""The model: hidden weights, activations and their dual kernels, harmonics on the sphere (theory §1–2, §6–8)."""

from .activations import Activation, get_activation, known_activations, register_activation, relu_family
from .data import InputData, known_datasets, load_inputs
from .harmonics import (
    degree_le2_fraction,
    funk_hecke_coefficients,
    harmonic_multiplicity,
    monomial_funk_hecke,
    relu_a0,
    relu_family_funk_hecke_coefficients,
    relu_funk_hecke_coefficients,
    zonal_polynomial,
)
from .kernels import arccos_kernel, arccos_kernel_series_coefficients, relu_family_kernel, step_kernel
from .network import Network, covariance_root, network, whitened_weights
from .weights import Scale, check_weight_sizes, column_norms, expected_squared_norm, sample_weights, unit_columns

__all__ = [
    "sample_weights",
    "check_weight_sizes",
    "expected_squared_norm",
    "column_norms",
    "unit_columns",
    "Scale",
    "Activation",
    "get_activation",
    "known_activations",
    "register_activation",
    "relu_family",
    "arccos_kernel",
    "arccos_kernel_series_coefficients",
    "relu_family_kernel",
    "step_kernel",
    "harmonic_multiplicity",
    "zonal_polynomial",
    "funk_hecke_coefficients",
    "monomial_funk_hecke",
    "relu_funk_hecke_coefficients",
    "relu_family_funk_hecke_coefficients",
    "degree_le2_fraction",
    "relu_a0",
    "Network",
    "network",
    "whitened_weights",
    "covariance_root",
    "load_inputs",
    "InputData",
    "known_datasets",
]
