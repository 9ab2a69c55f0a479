"""``relufim approximations`` and the body of ``relufim spectrum --params all``, as a user runs them."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from relufim.cli import main
from relufim.cli._common import handle_errors
from relufim.cli._full import check_full_options, run_full_spectrum


def invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_approximations_json_and_table():
    r = invoke(["approximations", "--d", "3", "--p", "24", "--n", "60,240", "--seeds", "2", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert [a["name"] for a in s["approximations"]] == ["block-diagonal", "k-fac", "diagonal", "monte-carlo",
                                                         "empirical"]
    assert s["sampled"]["n"] == [60, 240] and s["P"] == 96 and s["memory_peak_bytes"] > 0
    r = invoke(["approximations", "--d", "3", "--p", "24", "--n", "60", "--quiet"])
    assert r.exit_code == 0 and "k-fac" in r.stdout and "predicted sqrt(c/n)" in r.stdout


def test_approximations_out_writes_json_and_figures(tmp_path):
    out = tmp_path / "apx"
    r = invoke(["approximations", "--d", "2", "--p", "12", "--n", "50", "--damping", "1e-3,1e-1", "--out", str(out),
                "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "approximations.json").read_text())
    assert s["dampings"] == [1e-3, 1e-1]
    for name in ("approximations_error_vs_n.png", "approximations_spectra.png", "approximations_natural_gradient.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary file


@pytest.mark.parametrize("args, message", [
    (["--d", "3", "--p", "3"], "d < p"),
    (["--damping", "0"], "expected positive numbers"),
    (["--n", "a,b"], "comma-separated integers"),
    (["--noise", "-1", "--d", "2", "--p", "5"], "noise"),
    (["--d", "0", "--p", "100"], "d must be >= 1"),
    (["--d", "3", "--p", "50", "--n", "0"], "n must be >= 1"),
    (["--d", "3", "--p", "50", "--seeds", "0"], "seeds"),
    (["--d", "3", "--p", "50", "--teacher-width", "2"], "teacher_width"),
])
@pytest.mark.parametrize("quiet", [["--quiet"], []])  # refused before any progress output
def test_approximations_bad_input_is_one_line_exit_2(args, message, quiet):
    r = CliRunner().invoke(main, ["approximations", *args, *quiet])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relufim: error:") and message in lines[0]
    assert "Traceback" not in r.output


@click.command()
@click.option("--p", type=int, default=40)
@click.option("--all-eigenvalues", is_flag=True)
@click.option("--activation", default="relu")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def spectrum_params_all(p, all_eigenvalues, activation, as_json):
    """How ``relufim spectrum`` calls the body with ``--params all`` (the lead wires the real options)."""
    run_full_spectrum(d=4, p=p, seed=0, scale="1/p", extra=6, as_json=as_json, quiet=True,
                      all_eigenvalues=all_eigenvalues, activation=activation)


def test_spectrum_params_all_json_keys():
    r = CliRunner().invoke(spectrum_params_all, ["--json", "--all-eigenvalues"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["params"] == "all" and s["P"] == 200 and s["null_space_dimension"] == 40
    for key in ("eigenvalues", "mean_eigenvalue", "second_moment", "lambda_max_share", "seconds",
                "memory_peak_bytes"):
        assert key in s
    assert s["mean_eigenvalue"] == pytest.approx(s["trace"] / 200, rel=1e-14)
    assert s["lambda_max_share"] == pytest.approx(s["eigenvalues"][0] / s["trace"], rel=1e-12)
    assert np.all(np.diff(s["eigenvalues"]) <= 0)
    r = CliRunner().invoke(spectrum_params_all, [])
    assert r.exit_code == 0 and "FIM of all parameters" in r.stdout


def test_spectrum_params_all_names_the_library_route(capsys):
    # the stage line and the progress label follow relufim.theory.curvature.full_spectrum_route
    for all_eigenvalues, route in ((True, "every eigenvalue, dense"), (False, "dense")):
        run_full_spectrum(d=3, p=30, seed=0, scale="1/p", extra=2, as_json=True, quiet=False,
                          all_eigenvalues=all_eigenvalues)
        err = capsys.readouterr().err
        assert f"P = 120 ({route}) ..." in err and "eigenpairs converged" in err


def test_spectrum_params_all_refuses_readout_only_options():
    r = CliRunner().invoke(spectrum_params_all, ["--activation", "tanh"])
    assert r.exit_code == 2 and r.stderr.startswith("relufim: error: --params all") and "--activation" in r.stderr
    with pytest.raises(ValueError, match="--method monte-carlo.*--backend torch"):
        check_full_options(method="monte-carlo", backend="torch")
    check_full_options()  # the defaults pass


def test_spectrum_params_all_takes_the_hermite_seed_degree():
    args = ["spectrum", "--params", "all", "--d", "3", "--p", "40", "--extra", "2", "--quiet", "--json"]
    r = CliRunner().invoke(main, [*args, "--seed-degree", "4"])
    assert r.exit_code == 0, r.output
    four = json.loads(r.stdout)
    assert four["start"] == "Hermite features degree 4, preconditioned"
    two = json.loads(CliRunner().invoke(main, [*args, "--seed-degree", "2"]).stdout)
    assert two["start"] == "Hermite features degree 2"
    assert np.allclose(four["eigenvalues"], two["eigenvalues"], rtol=1e-8)  # the same pairs, either start
    for bad in (["--seed-degree", "6"], ["--seed-degree", "4", "--all-eigenvalues"]):
        r = CliRunner().invoke(main, [*args, *bad])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "--seed-degree" in r.stderr
    check_full_options(seed_degree=4)
    check_full_options(seed_degree=2)


@pytest.mark.parametrize("args, message", [
    (["--d", "10", "--p", "5"], "d must be smaller than p"),
    (["--d", "3", "--p", "50", "--extra", "-1"], "extra must be >= 0"),
    (["--d", "3", "--p", "50", "--scale", "foo"], "scale must be"),
])
def test_spectrum_params_all_refuses_bad_sizes_before_any_progress(args, message):
    r = CliRunner().invoke(main, ["spectrum", "--params", "all", *args])  # not --quiet: no progress line first
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("relufim: error:") and message in lines[0]
