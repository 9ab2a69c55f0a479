"""Eigenpairs with certificates, their clusters, and the spectral density (theory §10)."""

from .density import SpectralDensity, matrix_spectral_density, spectral_density
from .eigensolver import BlockEigResult, block_eigsh, orthonormalize, residual_norms
from .result import Cluster, SpectrumResult, detect_clusters, n_top, predicted_cluster_sizes, principal_cosines
from .solve import feature_spectrum, matrix_spectrum, spectrum, spectrum_route

__all__ = [
    "spectrum",
    "matrix_spectrum",
    "feature_spectrum",
    "spectrum_route",
    "SpectrumResult",
    "Cluster",
    "detect_clusters",
    "principal_cosines",
    "predicted_cluster_sizes",
    "n_top",
    "block_eigsh",
    "BlockEigResult",
    "orthonormalize",
    "residual_norms",
    "spectral_density",
    "matrix_spectral_density",
    "SpectralDensity",
]
