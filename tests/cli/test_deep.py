"""``relufim limit --depth`` and ``relufim spectrum --widths / --input-cov / --data`` as a user runs them.

Oracles: the
library's own results for the same arguments (the CLI must print what the library computes), the exact
identity of today's model, and one-line errors with exit code 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import relufim as rf
from relufim.cli import main
from relufim.theory.depth import depth_limit_spectrum


def _runs():
    """``relufim spectrum`` as the user calls it (a list, so that a second entry point could be added)."""
    return [("relufim spectrum", main, ["spectrum"])]


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relufim: error: "), result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# ----------------------------------------------------------------------------- relufim limit --depth


def test_limit_depth_json_per_degree():
    r = CliRunner().invoke(main, ["limit", "--d", "10", "--depth", "3", "--kmax", "12", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    lim = depth_limit_spectrum(10, 3, 12)
    assert s["depth"] == 3 and len(s["degrees"]) == 13
    for row, ref in zip(s["degrees"], lim.degrees):
        assert {"k", "multiplicity", "eigenvalue", "share", "cumulative_share"} <= set(row)
        assert row["eigenvalue"] == ref.eigenvalue and row["multiplicity"] == ref.multiplicity
        assert row["cumulative_share"] == ref.cumulative_share
    table = CliRunner().invoke(main, ["limit", "--d", "10", "--depth", "3", "--kmax", "4"])
    assert table.exit_code == 0 and "depth-3 network" in table.stdout and "F_L(d)" in table.stdout


def test_limit_depth_one_keeps_every_existing_key_and_adds_the_shares():
    r = CliRunner().invoke(main, ["limit", "--d", "10", "--kmax", "4", "--json"])
    s = json.loads(r.stdout)
    ref = rf.limit_spectrum(d=10, kmax=4).to_dict()
    for key in ref:
        assert key in s
    assert s["top_fraction"] == ref["top_fraction"] and s["depth"] == 1
    for row, rref in zip(s["degrees"], ref["degrees"]):
        for key in rref:
            assert row[key] == rref[key]
        assert row["cumulative_share"] == rref["cumulative_fraction"]
    assert sum(row["share"] for row in s["degrees"]) == pytest.approx(s["degrees"][-1]["cumulative_share"])


def test_limit_depth_other_activations_and_errors():
    r = CliRunner().invoke(main, ["limit", "--d", "5", "--depth", "2", "--kmax", "3", "--activation", "erf", "--p",
                                  "500", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["widths"] == [500, 500]
    _one_line_error(CliRunner().invoke(main, ["limit", "--depth", "0"]), "--depth must be >= 1")
    _one_line_error(CliRunner().invoke(main, ["limit", "--depth", "2", "--activation", "tanh"]), "pass widths", "--p")
    _one_line_error(CliRunner().invoke(main, ["limit", "--depth", "2", "--scale", "he"]), "grow with the last width")


# ----------------------------------------------------------------------------- relufim spectrum --widths ...


@pytest.mark.parametrize("label,cmd,prefix", _runs())
def test_widths_one_layer_is_todays_model(label, cmd, prefix):
    r = CliRunner().invoke(cmd, prefix + ["--d", "4", "--widths", "300", "--json", "--quiet", "--extra", "2"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["depth"] == 1 and s["widths"] == [300]
    ref = rf.matrix_spectrum(rf.fisher_matrix(rf.sample_weights(4, 300, seed=0)), 16, d=4)
    assert np.allclose(s["eigenvalues"], ref.eigenvalues, rtol=1e-12, atol=0)
    assert s["limit"] == pytest.approx(rf.limit_cluster_values(4), rel=1e-14)


@pytest.mark.parametrize("label,cmd,prefix", _runs())
def test_widths_monte_carlo_json(label, cmd, prefix):
    r = CliRunner().invoke(cmd, prefix + ["--d", "3", "--widths", "300,300,150", "--method", "monte-carlo", "--n",
                                          "6000", "--json", "--quiet", "--extra", "2"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["depth"] == 3 and s["widths"] == [300, 300, 150] and s["n"] == 6000
    lim = depth_limit_spectrum(3, 3, 2)
    assert s["limit"]["cluster1"] == pytest.approx(lim.degrees[0].eigenvalue, rel=1e-12)
    assert s["limit"]["top_fraction"] == pytest.approx(lim.top_fraction, rel=1e-12)
    assert {"eigenvalues", "clusters", "max_residual", "alignment", "seconds", "memory_peak_bytes"} <= set(s)
    table = CliRunner().invoke(cmd, prefix + ["--d", "3", "--widths", "300,300,150", "--method", "monte-carlo",
                                              "--n", "6000", "--quiet", "--extra", "2"])
    assert table.exit_code == 0 and "Deep network FIM" in table.stdout and "captured" in table.stdout


@pytest.mark.parametrize("label,cmd,prefix", _runs())
def test_input_cov_file(label, cmd, prefix, tmp_path):
    S = np.diag([2.0, 1.0, 0.5])
    path = tmp_path / "cov.npy"
    np.save(path, S)
    r = CliRunner().invoke(cmd, prefix + ["--d", "3", "--p", "200", "--input-cov", str(path), "--json", "--quiet",
                                          "--extra", "2"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    ref = rf.matrix_spectrum(rf.fisher_matrix(np.sqrt(S) @ rf.sample_weights(3, 200, seed=0)), 11, d=3)
    assert np.allclose(s["eigenvalues"], ref.eigenvalues, rtol=1e-12) and s["limit"] is None
    assert s["input_cov"] == [2.0, 1.0, 0.5]


@pytest.mark.parametrize("label,cmd,prefix", _runs())
def test_data_digits(label, cmd, prefix):
    pytest.importorskip("sklearn")
    r = CliRunner().invoke(cmd, prefix + ["--data", "digits", "--d", "5", "--p", "300", "--n", "5000", "--json",
                                          "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["d"] == 5 and s["n"] == 1797 and s["widths"] == [300] and s["limit"] is None
    assert s["empirical"]["cluster_sizes"] and len(s["captured_gaussian_clusters"]) == 3
    table = CliRunner().invoke(cmd, prefix + ["--data", "digits", "--d", "5", "--p", "300", "--n", "5000",
                                              "--quiet"])
    assert table.exit_code == 0 and "Gaussian prediction" in table.stdout


@pytest.mark.parametrize("label,cmd,prefix", _runs())
def test_bad_input_one_line_exit_2(label, cmd, prefix, tmp_path):
    run = lambda *a: CliRunner().invoke(cmd, prefix + list(a) + ["--quiet"])  # noqa: E731
    _one_line_error(run("--widths", ""), "--widths is empty")
    _one_line_error(run("--widths", ","), "--widths is empty")
    _one_line_error(run("--widths", "100,0"), "--widths must be positive")
    _one_line_error(run("--widths", "100,-3"), "--widths must be positive")
    _one_line_error(run("--widths", "100,abc"), "comma-separated positive integers")
    _one_line_error(run("--widths", "100,100"), "--method exact exists only for one hidden layer")
    _one_line_error(run("--widths", "100,100", "--method", "monte-carlo"), "needs --n")
    np.save(tmp_path / "wrong.npy", np.eye(3))
    _one_line_error(run("--d", "4", "--input-cov", str(tmp_path / "wrong.npy")), "shape (d, d) = (4, 4)")
    np.save(tmp_path / "notpd.npy", np.diag([1.0, -1.0, 1.0]))
    _one_line_error(run("--d", "3", "--input-cov", str(tmp_path / "notpd.npy")), "positive definite")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    _one_line_error(run("--d", "3", "--input-cov", str(tmp_path / "junk.npy")), "cannot read")
    _one_line_error(run("--d", "3", "--input-cov", str(tmp_path / "missing.npy")), "no such file")
    _one_line_error(run("--data", "mnist"), "unknown data set 'mnist'")
    _one_line_error(run("--d", "3", "--widths", "10,2000000", "--method", "monte-carlo", "--n", "100"),
                    "needs", "is available")  # a 2e6 x 2e6 accumulator cannot fit: refused up front


def test_missing_scikit_learn_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    r = CliRunner().invoke(main, ["spectrum", "--data", "digits", "--d", "5", "--p", "100", "--quiet"])
    _one_line_error(r, "relufim[data]")
