"""The analysis commands (limit, convergence, functions, ntk, dynamics) as a user runs them: JSON, tables,
figures, bad input.

Moved here from the library's and the experiments' test modules so that the tests mirror the tree.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

import relufim as rf
from relufim.cli import main


def test_cli_dynamics(tmp_path):
    import json

    r = subprocess.run(["relufim", "dynamics", "--d", "3", "--p", "200", "--steps", "300", "--json", "--quiet",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["learning_order"] == [1, 2, 3] and (tmp_path / "dynamics.png").stat().st_size > 0
    bad = subprocess.run(["relufim", "dynamics", "--d", "3", "--p", "200", "--lr", "100", "--quiet"],
                         capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "stability limit 2/lambda_max" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cli_functions_json_and_figures(tmp_path):
    import json

    from click.testing import CliRunner

    from relufim.cli import main

    r = CliRunner().invoke(main, ["functions", "--d", "3", "--p", "800", "--n", "300", "--json", "--quiet",
                                  "--out", str(tmp_path)], standalone_mode=False, catch_exceptions=False)
    s = json.loads(r.output)
    assert [g["name"] for g in s["groups"]][:3] == ["v0", "ones", "rows"]
    assert [c["size"] for c in s["clusters"]] == [1, 3, 5]
    assert len(s["figures"]) == 7 and all((tmp_path / f"functions_{g['name']}.png").stat().st_size > 0
                                          for g in s["groups"])


def test_cli_functions_bad_input_is_one_line():
    import sys

    r = subprocess.run([sys.executable, "-m", "relufim.cli", "functions", "--d", "0"], capture_output=True, text=True)
    if "No module named relufim.cli.__main__" in r.stderr:
        r = subprocess.run(["relufim", "functions", "--d", "0"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("relufim: error:") and len(r.stderr.strip().splitlines()) == 1


def test_cli_limit_json_and_errors():
    runner = CliRunner()
    r = runner.invoke(main, ["limit", "--d", "10", "--kmax", "12", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["d"] == 10 and out["activation"] == "relu" and len(out["degrees"]) == 13
    assert abs(out["top_fraction"] - rf.trace_share_curve([10])[0]) < 1e-15
    r = runner.invoke(main, ["limit", "--d", "10", "--kmax", "4"])
    assert r.exit_code == 0 and "multiplicity" in r.stdout
    for args in (["limit", "--d", "1"], ["limit", "--kmax", "-2"], ["limit", "--activation", "nope"],
                 ["limit", "--activation", "tanh"]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and "relufim: error:" in r.stderr and "Traceback" not in r.output


def test_cli_ntk():
    import json

    r = subprocess.run(["relufim", "ntk", "--d", "3", "--p", "300", "--n", "400", "--json", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["max_discrepancy"] < 1e-9
    cap = s["captured_fractions"]
    assert cap["||x||"][0] > 0.9 and cap["x_1"][1] > 0.9 and cap["x_1 x_2 / ||x||"][2] > 0.9
    bad = subprocess.run(["relufim", "ntk", "--d", "10", "--p", "30"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("relufim: error:")


def test_cli_convergence_writes_figures_and_json(tmp_path):
    runner = CliRunner()
    out = tmp_path / "conv"
    r = runner.invoke(main, ["convergence", "--d", "2", "--p", "40,80", "--seeds", "2", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["d"] == 2 and set(data["statistics"]) >= {"cluster1", "top_fraction"}
    for name in ("convergence.png", "trace_share.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "convergence.json").read_text())["p"] == [40, 80]
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporaries
    # two widths: no rate is claimed, in the JSON and in the table
    assert all(st["rate"] is None and st["rate_stderr"] is None for st in data["statistics"].values())
    r = runner.invoke(main, ["convergence", "--d", "2", "--p", "40,80", "--seeds", "2", "--quiet"])
    assert r.exit_code == 0 and "cluster1" in r.stdout and "beyond noise" in r.stdout
    assert "p^b, b =" not in r.stdout
    r = runner.invoke(main, ["convergence", "--d", "2", "--p", "40", "--seeds", "1", "--quiet"])
    assert r.exit_code == 0 and "cluster1" in r.stdout and "no rate: one seed" in r.stdout
    for args in (["convergence", "--d", "3", "--p", "5"], ["convergence", "--p", "x,y"],
                 ["convergence", "--d", "2", "--p", "40", "--activation", "nope"]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and "relufim: error:" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize("command, message", [
    (["spectrum"], "d must be smaller than p"), (["spectrum", "--params", "all"], "d must be smaller than p"),
    (["dynamics"], "d must be smaller than p"), (["functions"], "d must be smaller than p"),
    (["mdl"], "d must be smaller than p"), (["approximations"], "d must be smaller than p"),
    (["convergence"], "every width p must be at least")])
def test_d_not_below_p_is_one_line_before_any_progress(command, message):
    r = CliRunner().invoke(main, [*command, "--d", "10", "--p", "5"])  # not --quiet: nothing printed before it
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and message in lines[0], r.stderr
