"""The command line as a user runs it: JSON fields, tables, one-line errors with exit code 2, atomic output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import relufim as rf
from relufim._io import write_json_atomic, write_text_atomic
from relufim.cli import main


def run(*args):
    """Invoke the CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_spectrum_json_has_the_documented_fields():
    code, out, _ = run("spectrum", "--d", "4", "--p", "500", "--seed", "2", "--json", "--quiet")
    assert code == 0
    s = json.loads(out)
    for key in ("d", "p", "seed", "method", "eigenvalues", "trace", "top_fraction", "clusters", "perron_frobenius",
                "alignment", "theorem3", "max_residual"):
        assert key in s, key
    assert (s["d"], s["p"], s["seed"], s["method"]) == (4, 500, 2, "exact")
    assert len(s["eigenvalues"]) >= 4 * 7 // 2 + 10
    # the numbers are those of the library on the same W (dense oracle)
    J = rf.fisher_matrix(rf.sample_weights(4, 500, seed=2))
    w = np.linalg.eigvalsh(J)[::-1]
    np.testing.assert_allclose(s["eigenvalues"], w[: len(s["eigenvalues"])], rtol=0, atol=1e-9 * w[0])
    assert s["trace"] == pytest.approx(np.trace(J), rel=1e-12)
    assert [c["size"] for c in s["clusters"]] == [c["predicted_size"] for c in s["clusters"]] == [1, 4, 9]
    assert s["top_fraction"] == pytest.approx(w[:14].sum() / np.trace(J), rel=1e-10)
    assert set(s["theorem3"]) == {"v0", "rows", "v_ab", "v_gamma"}
    assert all(set(v) >= {"min", "bound"} for v in s["theorem3"].values())


def test_spectrum_monte_carlo_and_table():
    code, out, _ = run("spectrum", "--d", "3", "--p", "300", "--method", "monte-carlo", "--n", "2000", "--json",
                       "--quiet")
    assert code == 0 and json.loads(out)["method"] == "monte-carlo"
    code, out, err = run("spectrum", "--d", "3", "--p", "300")
    assert code == 0
    assert "cluster" in out and "Perron-Frobenius" in out and "top d(d+3)/2 share" in out
    assert "computing the spectrum" in err  # progress goes to stderr


@pytest.mark.parametrize("args, words", [
    (["spectrum", "--d", "0"], "d must be >= 1"),
    (["spectrum", "--p", "abc"], "'abc' is not a valid integer"),
    (["spectrum", "--method", "monte-carlo"], "needs --n"),
    (["spectrum", "--method", "monte-carlo", "--n", "0"], "n must be >= 1"),
    (["spectrum", "--activation", "nope"], "unknown activation"),
    (["spectrum", "--scale", "-1"], "scale"),
    (["spectrum", "--d", "1", "--p", "1000", "--method", "monte-carlo", "--n", "2000000000"], "need"),
    (["spectrum", "--method", "monte-carlo", "--n", "100", "--precision", "mixed"], "leave them out with --method"),
    (["spectrum", "--method", "monte-carlo", "--n", "100", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler"),
    (["nonsense"], "No such command"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    code, out, err = run(*args, "--quiet") if args[0] == "spectrum" else run(*args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("relufim: error:"), err
    assert words in lines[0]
    assert "Traceback" not in err + out


def test_entry_point_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "relufim", "spectrum", "--d", "-3", "--quiet"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_reproduce_writes_summary_figures_and_report(tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run("reproduce", "--out", str(out), "--d", "3", "--p", "300", "--no-sections")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert {s["name"] for s in summary["settings"]} == {"exact", "monte-carlo"}
    for s in summary["settings"]:
        assert [c["size"] for c in s["clusters"]] == [1, 3, 5]
    for fig in summary["figures"]:
        data = (out / fig["file"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert {f["file"] for f in summary["figures"]} == {p.name for p in out.glob("*.png")}
    report = (out / "report.md").read_text()
    assert "Claims and measurements" in report and "Perron-Frobenius" in report
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    # the final line says how many claims hold, fail and are left to judgement, as summary.json records them
    holds = [c["holds"] for c in summary["claims"]]
    n_hold, n_fail = holds.count(True), holds.count(False)
    assert (f"relufim reproduce: {n_hold} hold, {n_fail} fail, {len(holds) - n_hold - n_fail} for judgement "
            f"({len(holds)} claims);") in stdout


def test_reproduce_density_beyond_dense_sizes(tmp_path):
    """--density-p adds the SLQ distribution at a second width: figure, summary block, trace-share claim."""
    out = tmp_path / "run"
    code, stdout, err = run("reproduce", "--out", str(out), "--d", "3", "--p", "300", "--no-sections",
                            "--density-p", "900", "--density-steps", "10", "--density-vectors", "3")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    dens = summary["density"]
    assert dens["p"] == 900 and dens["k_exact"] == 9 and dens["n_vectors"] == 3 and dens["lanczos_steps"] == 10
    assert dens["top_max_residual_rel"] <= 1e-8
    # Hutchinson trace estimate against the exact trace ||W||_F^2 / 2: 3 vectors of Rademacher noise
    assert dens["trace_estimate"] == pytest.approx(dens["trace_exact"], rel=0.2)
    assert (out / "eigenvalue_distribution_p900.png").read_bytes()[:4] == b"\x89PNG"
    assert any("p = 900" in c["claim"] for c in summary["claims"])
    assert len(dens["smoothed_histogram"]["fraction"]) == len(dens["smoothed_histogram"]["edges"]) - 1
    report = (out / "report.md").read_text()
    assert "## The distribution at p = 900" in report and "](eigenvalue_distribution_p900.png)" in report
    code, _, err = run("reproduce", "--out", str(tmp_path / "bad"), "--d", "3", "--p", "300", "--density-p", "5")
    assert code == 2 and "density_p" in err and "Traceback" not in err


def test_reproduce_refuses_a_file_as_output(tmp_path):
    f = tmp_path / "x"
    f.write_text("keep me")
    code, _, err = run("reproduce", "--out", str(f), "--p", "200", "--d", "3")
    assert code == 2 and "not a folder" in err
    assert f.read_text() == "keep me"


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"a": 1})

    def boom(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "half")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_json_has_no_nan(tmp_path):
    path = write_json_atomic(tmp_path / "x.json", {"x": float("nan"), "y": np.float64(np.inf), "z": np.arange(2)})
    assert json.loads(Path(path).read_text()) == {"x": None, "y": None, "z": [0, 1]}
