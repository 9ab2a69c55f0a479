"""The analysis commands (limit, functions, ntk, dynamics) as a user runs them: JSON, figures, bad input.

Moved here from the library's test modules so that the tests mirror the tree.
"""

from __future__ import annotations

import json
import subprocess

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
    bad = subprocess.run(["relufim", "dynamics", "--d", "3", "--p", "200", "--lr", "100", "--quiet"], capture_output=True,
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
