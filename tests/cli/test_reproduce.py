"""``relufim reproduce --quick`` as a user runs it (about 10 s): no claim fails, one writer of the reports.

``relufim reproduce`` computes (relufim.experiments.reproduce) and then hands the data to relufim.report,
which writes the figures, summary.json, report.md and report.html; ``relufim report DIR`` renders the two
reports again from summary.json, and must write exactly the same files.
"""

from __future__ import annotations

import inspect
import json
import re

import pytest
from click.testing import CliRunner

from relufim.cli import main
from relufim.report import build_report, count_claims, render_markdown, reproduce_report
from relufim.report.build import MARKDOWN_MARKER


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "run"
    r = CliRunner().invoke(main, ["reproduce", "--quick", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.stdout


def test_every_section_is_called_alike():
    # the run calls each section as reproduce_section(quick, progress=...): no section has its own arguments
    from relufim.experiments.reproduce import _SECTION_MODULES

    for module in _SECTION_MODULES:
        params = inspect.signature(module.reproduce_section).parameters
        assert list(params)[:2] == ["quick", "progress"], module.NAME
        assert all(p.default is not inspect.Parameter.empty for p in params.values()), module.NAME


def test_quick_run_has_no_failing_claim(quick_run):
    out, stdout = quick_run
    claims = json.loads((out / "summary.json").read_text())["claims"]
    failing = [c["claim"] for c in claims if c["holds"] is False]
    assert not failing, failing
    counts = count_claims(claims)
    assert counts.fail == 0 and counts.hold >= 20 and counts.total == len(claims)
    assert f"relufim reproduce: {counts.hold} hold, 0 fail, {counts.judgement} for judgement ({len(claims)} claims);" \
        in stdout


def test_one_writer_of_the_reports(quick_run, tmp_path):
    out, _ = quick_run
    md, html = (out / "report.md").read_bytes(), (out / "report.html").read_bytes()
    # report.md is the report/ renderer's output for this summary.json, nothing else
    assert md.decode() == render_markdown(reproduce_report(out)) + "\n" + MARKDOWN_MARKER + "\n"
    # `relufim report DIR` regenerates both files byte for byte
    r = CliRunner().invoke(main, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "report.md").read_bytes() == md and (out / "report.html").read_bytes() == html
    # and so does the library call, from any spelling of the path
    build_report(str(out) + "/")
    assert (out / "report.md").read_bytes() == md


def test_quick_report_shows_the_three_counts_and_honest_rates(quick_run):
    out, _ = quick_run
    claims = json.loads((out / "summary.json").read_text())["claims"]
    c = count_claims(claims)
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for label, n in (("claims that hold", c.hold), ("claims that fail", c.fail), ("claims for judgement", c.judgement)):
        assert f"- **{label}**: {n}\n" in md
        assert f"<dt>{label}</dt><dd>{n}</dd>" in html
    assert f"Claims: {c.hold} hold, {c.fail} fail, {c.judgement} for judgement ({c.total} claims)." in md
    # every rate shown carries its standard error and its number of widths
    rates = re.findall(r"p\^b, b = (\S+)( ± \S+ \(\d+ widths)?", md)
    assert all(se for _, se in rates), rates
    assert "p^-" not in md  # the old bare "|mean - limit| ~ p^-3.02"
    assert "||" not in md  # norms are written ‖x‖: no pipe breaks a Markdown table
    for section in ("## Infinite width and other activations", "## Function space, NTK and learning",
                    "## Depth and real inputs", "## The Fisher information of all parameters",
                    "## MDL: two-stage codes"):
        assert section in md
    # every figure written is shown once, and every section contributes its own
    # captions may hold brackets ("widths [1000]"), so match the link target alone
    shown = re.findall(r"\]\(([^()\s]+\.png)\)$", md, flags=re.MULTILINE)
    assert sorted(shown) == sorted(f.name for f in out.glob("*.png"))
    assert {"mdl_risk.png", "mdl_width.png", "depth_shares.png"} <= set(shown) and len(shown) >= 12
