"""Real inputs shipped inside a package (relufim.model.data): the digits, their preprocessing, clear errors.

Oracle: the principal-component variances of the raw digits computed here independently (numpy.cov of the
raw pixels), rescaled to trace d, against the covariance the loader returns.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from relufim.model.data import DATA_EXTRA, known_datasets, load_inputs

sklearn = pytest.importorskip("sklearn")


def _raw():
    from sklearn.datasets import load_digits

    return load_digits().data.astype(float)


def test_digits_default_keeps_every_axis_of_nonzero_variance():
    data = load_inputs("digits")
    raw = _raw()
    assert data.n == 1797 and data.raw_dim == 64
    assert data.d == 64 - int(np.sum(raw.var(axis=0) == 0)) == 61  # three corner pixels are always 0
    assert data.explained_variance == pytest.approx(1.0, abs=1e-12)
    assert np.abs(data.x.mean(axis=0)).max() < 1e-12 * np.abs(data.x).max()  # centred
    assert np.mean(np.sum(data.x**2, axis=1)) == pytest.approx(61, rel=1e-12)  # mean squared norm = d


@pytest.mark.parametrize("dim", [1, 10, 20])
def test_digits_covariance_is_the_scaled_principal_variances(dim):
    data = load_inputs("digits", dim=dim)
    raw = _raw()
    all_ev = np.sort(np.linalg.eigvalsh(np.cov(raw, rowvar=False, bias=True)))[::-1]  # independent PCA
    ev = all_ev[:dim]
    expected = ev * dim / ev.sum()
    cov = data.covariance
    assert cov.shape == (dim, dim) and np.array_equal(cov, cov.T)
    assert np.allclose(np.diag(cov), expected, rtol=1e-10, atol=0)
    off = cov - np.diag(np.diag(cov))
    assert np.abs(off).max() < 1e-12 * cov.max()  # the principal axes decorrelate
    assert np.trace(cov) == pytest.approx(dim, rel=1e-12)
    assert data.explained_variance == pytest.approx(ev.sum() / all_ev.sum(), rel=1e-10)
    d = data.to_dict()
    assert d["d"] == dim and d["n"] == 1797 and len(d["covariance_eigenvalues"]) == dim


def test_errors():
    assert known_datasets() == ["digits"]
    with pytest.raises(ValueError, match="unknown data set 'mnist'; known data sets: digits"):
        load_inputs("mnist")
    with pytest.raises(ValueError, match="at most 61"):
        load_inputs("digits", dim=62)
    with pytest.raises(ValueError, match=">= 1"):
        load_inputs("digits", dim=0)
    with pytest.raises(TypeError, match="data set name"):
        load_inputs(3)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn then raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'relufim\[data\]'"):
        load_inputs("digits")
    assert DATA_EXTRA == "relufim[data]"
