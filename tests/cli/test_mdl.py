"""``relufim mdl`` as a user runs it: JSON per n, the table, the figure written atomically, bad input, warnings."""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

from relufim.cli import main
from relufim.experiments.mdl import mdl_risk_curve

SMALL = ["mdl", "--d", "2", "--p", "30", "--n", "10,100", "--reps", "6", "--compare-reps", "2",
         "--mc-samples", "500", "--quiet"]


def test_mdl_json_per_n_and_the_figure(tmp_path):
    r = CliRunner().invoke(main, [*SMALL, "--json", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert [row["n"] for row in s["rows"]] == [10, 100]
    for row in s["rows"]:
        assert {"n", "bound", "risk_mean", "risk_se", "kl_mean", "coded_directions", "code_length_nats",
                "kraft_sum"} <= set(row)
        assert row["kraft_sum"] == 1.0 and row["risk_mean"] <= row["bound"] + 3 * row["risk_se"]
    # the same numbers as the experiment called directly with the same arguments
    ref = mdl_risk_curve(2, 30, (10, 100), reps=6, compare_reps=2, mc_samples=500)
    assert [row["bound"] for row in s["rows"]] == pytest.approx([row["bound"] for row in ref["rows"]], rel=1e-12)
    assert [row["risk_mean"] for row in s["rows"]] == pytest.approx([row["risk_mean"] for row in ref["rows"]],
                                                                    rel=1e-12)
    png = tmp_path / "mdl_risk.png"
    assert s["figure"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mdl_risk.png"]  # atomic write leaves no temporary file


def test_mdl_table_and_default_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, SMALL)
    assert r.exit_code == 0, r.output
    assert "R_n" in r.stdout and "risk (Renyi)" in r.stdout and "figure: relufim-mdl/mdl_risk.png" in r.stdout
    assert (tmp_path / "relufim-mdl" / "mdl_risk.png").stat().st_size > 0


def test_mdl_target_outside_the_radius_warns_in_one_line(tmp_path):
    r = CliRunner().invoke(main, [*SMALL, "--radius", "0.5", "--json", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    warns = [li for li in r.stderr.splitlines() if li.startswith("relufim: warning:")]
    assert warns and all("box term" in w and "uncoded term" in w for w in warns)
    assert "Traceback" not in r.stderr
    assert json.loads(r.stdout)["rows"][0]["within_radius"] is False


@pytest.mark.parametrize("args,message", [
    (["--beta", "1"], "beta must be finite and > 1"),
    (["--beta", "0.5"], "beta"),
    (["--radius", "0"], "radius"),
    (["--radius", "-2"], "radius"),
    (["--sigma", "0"], "sigma"),
    (["--n", "0,10"], "--n"),
    (["--n", "ten"], "comma-separated integers"),
    (["--reps", "1"], "--reps must be >= 2"),
    (["--d", "0"], "--d must be >= 1"),
    (["--d", "40"], "d < p"),
    (["--coding", "all"], "coding"),
])
def test_mdl_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    r = CliRunner().invoke(main, [*SMALL, "--out", str(tmp_path), *args])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("relufim: error:") and len(err.splitlines()) == 1 and message in err, err


def test_mdl_from_the_shell(tmp_path):
    r = subprocess.run(["relufim", *SMALL, "--n", "20", "--json", "--out", str(tmp_path)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"][0]["n"] == 20
    bad = subprocess.run(["relufim", "mdl", "--beta", "1", "--quiet"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("relufim: error:") and len(bad.stderr.splitlines()) == 1
