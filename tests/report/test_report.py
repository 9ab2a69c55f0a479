"""Reports: built from a fake reproduce run and from a sweep, checked as text and in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from click.testing import CliRunner  # noqa: E402

from relufim.cli import main  # noqa: E402
from relufim.report import build_report, render_markdown, report_kind, reproduce_report  # noqa: E402
from relufim.report.build import MARKDOWN_MARKER  # noqa: E402
from relufim.sweep.runner import parse_sweep_config, run_task  # noqa: E402
from relufim.sweep.store import ResultsStore, load_results  # noqa: E402
from relufim.theory import TRACE_SHARE_BOUND  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _png(color: str = "C0") -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1, 2], [0, 1, 4], color=color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    return buf.getvalue()


def _setting(name: str, d: int, p: int) -> dict:
    return {"name": name, "d": d, "p": p, "seed": 0, "method": name, "eigenvalues": [1.0, 0.5],
            "trace": 2.5, "top_fraction": 0.9886,
            "clusters": [{"size": 1, "predicted_size": 1, "mean": 0.875, "min": 0.875, "max": 0.875},
                         {"size": d, "predicted_size": d, "mean": 0.2475, "min": 0.22, "max": 0.27},
                         {"size": 14, "predicted_size": 14, "mean": 0.024, "min": 0.018, "max": 0.029}],
            "perron_frobenius": True, "alignment": {"cluster1": 0.999, "cluster2": 0.989},
            "theorem3": {"v0": {"min": 0.874, "bound": 0.875, "min_over_bound": 0.9986}},
            "lemma2": {"v_ab": {"count": 10, "mean_sq_norm": 0.72, "expected_sq_norm_finite_d": 0.714,
                                "max_dev_from_expected": 0.058}},
            "max_residual": 3e-16}


def fake_reproduce_dir(root: Path) -> Path:
    """A reproduce run directory with the schema of ``relufim reproduce`` (and one missing figure)."""
    run = root / "run"
    run.mkdir()
    (run / "spectrum.png").write_bytes(_png("C0"))
    (run / "clusters.png").write_bytes(_png("C3"))
    summary = {
        "config": {"d": 5, "p": 1000, "seed": 0, "quick": True, "monte_carlo": {"n": 20000}},
        "limit": {"cluster1": 0.879, "cluster2": 0.25, "cluster3": 0.0244, "top_fraction": 0.9883},
        "spectra": {"exact_all": list(np.linspace(1, 0, 1000))},
        "versions": {"relufim": "0.1.0", "numpy": "2.0", "scipy": "1.14", "python": "3.11"},
        "settings": [_setting("exact", 5, 1000), _setting("monte-carlo", 5, 1000)],
        "claims": [
            {"claim": "Three clusters of sizes 1, d, d(d+1)/2-1", "source": "Theorem 2", "predicted": "1, 5, 14",
             "measured": "1, 5, 14", "holds": True},
            {"claim": "At least 97.7 % of the trace <in> the clusters & more", "source": "Theorem 3",
             "predicted": ">= 0.9775", "measured": "0.9886", "holds": True},
            {"claim": "A claim that fails", "source": "test", "predicted": "x", "measured": "y", "holds": False},
            {"claim": "Informational", "source": "test", "predicted": "-", "measured": "3.2", "holds": None},
        ],
        "figures": [{"file": "spectrum.png", "caption": "Top eigenvalues"},
                    {"file": "clusters.png", "caption": "Clusters"},
                    {"file": "missing.png", "caption": "A figure that was not written"}],
        "sections": [{"name": "Lemma 2", "summary": {"v0": {"mean_sq_norm": 0.99}, "max_abs_inner_product": 0.1,
                                                     "long": list(range(50))}}],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "report.md").write_text("# written by reproduce\n")
    return run


def fake_sweep_dir(root: Path) -> Path:
    """A sweep directory filled through the store with real tasks (no cluster needed), one of them failed."""
    cfg = parse_sweep_config("[sweep]\nname = 'report test'\n[grid]\nd = [4, 5]\np = [80, 160]\nseed = [0, 1]\n")
    out = root / "sweep"
    with ResultsStore(out) as store:
        store.initialise(cfg.sweep_id, cfg.to_dict(), cfg.text)
        tasks = cfg.tasks()
        store.add_tasks(tasks)
        run = store.start_run({"scheduler": "local", "workers": 2})
        for i, (tid, params) in enumerate(tasks):
            res = run_task(params) if i != 3 else run_task({**params, "activation": "not-there"})
            store.record(tid, run, status=res["status"], result=res["result"], arrays=res["arrays"],
                         error=res["error"], traceback=res["traceback"], seconds=res["seconds"], worker=res["worker"])
        store.finish_run(run, {"seconds": 1.0})
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    rep, sw = fake_reproduce_dir(root), fake_sweep_dir(root)
    return {"reproduce": (rep, build_report(rep)), "sweep": (sw, build_report(sw))}


def _self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    srcs = re.findall(r'(?:src|href)="([^"]*)"', html)
    external = [s for s in srcs if not (s.startswith("data:") or s.startswith("#"))]
    assert not external, external


def test_reproduce_report_html_and_markdown(reports):
    run, files = reports["reproduce"]
    assert files.kind == "reproduce" and report_kind(run) == "reproduce"
    html = files.html.read_text()
    _self_contained(html)
    for table in ("claims", "settings", "theorem3", "lemma2", "limit", "alignment", "config", "versions",
                  "section-1-table"):
        assert f'id="{table}"' in html, table
    # the claims sit next to the measured values; text is escaped, never markup
    assert "At least 97.7 % of the trace &lt;in&gt; the clusters &amp; more" in html
    assert html.count('class="holds-yes"') == 2 and html.count('class="holds-no"') == 1
    # both figures embedded byte for byte; the missing one is reported, not broken
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert [base64.b64decode(b) for b in imgs] == [(run / "spectrum.png").read_bytes(),
                                                   (run / "clusters.png").read_bytes()]
    assert "missing.png is missing" in html
    # one writer: a report.md found in the directory is replaced by the renderer's, the same as the HTML's content
    assert files.markdown_written and files.markdown.read_text() != "# written by reproduce\n"
    md = files.markdown.read_text()
    assert md == render_markdown(reproduce_report(run)) + "\n" + MARKDOWN_MARKER + "\n"
    assert "| claim | source | predicted | measured | holds |" in md
    assert "![Top eigenvalues](spectrum.png)" in md
    assert "Claims: 2 hold, 1 fail, 1 for judgement (4 claims)." in md
    assert "| monte_carlo.n | 20000 |" in md and "(50 values)" in md  # long lists are cut in tables


def test_header_and_claims_section_count_hold_fail_and_judgement(reports):
    """Not "claims holding 2 / 4": how many hold, fail and are left to judgement, in both renderings."""
    run, files = reports["reproduce"]
    html, md = files.html.read_text(), files.markdown.read_text()
    for label, n in (("claims that hold", 2), ("claims that fail", 1), ("claims for judgement", 1)):
        assert f"<dt>{label}</dt><dd>{n}</dd>" in html
        assert f"- **{label}**: {n}\n" in md
    sentence = "Claims: 2 hold, 1 fail, 1 for judgement (4 claims)."
    assert sentence in md and f'<p class="warning">{sentence}</p>' in html  # a failing claim is a warning
    assert "claims holding" not in html
    # the sweep report counts its claims the same way
    sw_html = reports["sweep"][1].html.read_text()
    assert "<dt>claims that hold</dt>" in sw_html and "<dt>claims for judgement</dt>" in sw_html


def test_a_rate_recorded_without_its_error_bar_is_not_shown(tmp_path):
    """An older summary.json holds a rate fitted to three noisy points: the report decides again, by the rule."""
    stats = {name: {"name": name, "p": [250, 500, 1000], "limit": [1.0] * 3, "mean": mean, "std": std,
                    "rate": -3.02, "rate_stderr": None}
             for name, mean, std in [("cluster1", [1.01, 0.995, 1.0005], [0.02, 0.02, 0.002]),
                                     ("cluster3", [0.9, 0.95, 0.975], [1e-4, 1e-4, 1e-4])]}
    section = {"name": "limit", "summary": {
        "limit": {"d": 3, "top_fraction": 0.98, "degrees": [{"k": 0, "multiplicity": 1, "eigenvalue": 0.8,
                                                             "cumulative_fraction": 0.5}]},
        "convergence": {"d": 3, "seeds": [0, 1], "statistics": stats}}}
    claim = {"claim": "cluster1 mean converges", "source": "t", "predicted": "1", "holds": None,
             "measured": "1.0005 +- 0.002 at p = 1000; |mean - limit| ~ p^-3.02"}
    (tmp_path / "summary.json").write_text(json.dumps({"claims": [claim], "sections": [section]}))
    files = build_report(tmp_path)
    md, html = files.markdown.read_text(), files.html.read_text()
    assert "-3.02" not in md and "-3.02" not in html
    assert "| cluster1 | mean - limit within noise at every width (no rate) |" in md
    assert re.search(r"\| cluster3 \| \\\|mean - limit\\\| ~ p\^b, b = -1\.00 ± 0\.00 \(3 widths, 2 seeds\) \|", md), md
    assert 'id="convergence"' in html and 'id="convergence-rates"' in html
    assert "1.0005 +- 0.002 at p = 1000; rate not shown (fitted without a standard error)" in md


def test_reproduce_report_survives_missing_and_malformed_keys(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"settings": "oops", "figures": [{"caption": "no file"}],
                                                       "claims": [{"claim": "only a claim"}, 7]}))
    html = build_report(tmp_path).html.read_text()
    assert "&#x27;settings&#x27; should be a list" in html and "figure 1 has no &#x27;file&#x27;" in html
    assert 'id="claims"' in html and "only a claim" in html
    (tmp_path / "summary.json").write_text("{}")
    assert "no claims" in build_report(tmp_path).html.read_text()
    # a known section whose summary lacks what its tables need: said, and its values listed as recorded
    (tmp_path / "summary.json").write_text(json.dumps({"sections": [{"name": "function_space",
                                                                     "summary": {"seconds": 1.0}}]}))
    html = build_report(tmp_path).html.read_text()
    assert "section &#x27;function_space&#x27; lacks what its tables need" in html and 'id="section-1-table"' in html
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        build_report(tmp_path)
    with pytest.raises(ValueError, match="neither a sweep directory"):
        build_report(tmp_path / "..")


def test_sweep_report_tables_claims_and_figures(reports):
    import matplotlib.image as mpimg

    sw, files = reports["sweep"]
    assert files.kind == "sweep"
    html = files.html.read_text()
    _self_contained(html)
    for table in ("claims", "aggregate", "tasks", "failed", "runs", "config", "versions"):
        assert f'id="{table}"' in html, table
    df = load_results(sw)
    done = df[df["status"] == "done"]
    # the trace-share claim quotes the smallest measured share, against the bound
    assert f"min {done['top_fraction'].min():.4f}" in html and f"{TRACE_SHARE_BOUND:.4f}" in html
    assert "not-there" in html  # the failed task's error is shown
    if "limit" in html:  # relufim.theory.limit present: the limits sit next to the measured cluster means
        from relufim.theory.limit import limit_cluster_values
        assert "limit 2 (p → ∞)" in html and f"{limit_cluster_values(4)['cluster1']:.4g}" in html
    assert len(files.figures) == 2
    for f in files.figures:
        img = mpimg.imread(f)
        assert img.shape[0] > 100 and img.shape[1] > 100 and np.ptp(img) > 0
    md = files.markdown.read_text()
    assert "](figures/cluster_eigenvalues.png)" in md and "](figures/trace_share.png)" in md


def test_sweep_report_without_spectra_or_without_finished_tasks(tmp_path):
    cfg = parse_sweep_config("[grid]\nd = [3, 4]\np = [50]\n[compute]\nwhat = ['limit']\n")
    with ResultsStore(tmp_path / "limit") as store:
        store.initialise(cfg.sweep_id, cfg.to_dict(), cfg.text)
        store.add_tasks(cfg.tasks())
        run = store.start_run({})
        for tid, params in cfg.tasks():
            res = run_task(params, cfg.what)
            store.record(tid, run, status=res["status"], result=res["result"], arrays=res["arrays"])
    html = build_report(tmp_path / "limit").html.read_text()
    assert "computed no spectrum" in html and "<img" not in html and 'id="aggregate"' in html
    with ResultsStore(tmp_path / "pending") as store:  # a sweep killed before its first task finished
        store.initialise(cfg.sweep_id, cfg.to_dict(), cfg.text)
        store.add_tasks(cfg.tasks())
    html = build_report(tmp_path / "pending").html.read_text()
    assert "No finished task yet" in html and "2 task(s) have not finished" in html and 'id="tasks"' in html


def test_cli_report(reports, tmp_path):
    run, _ = reports["reproduce"]
    r = CliRunner().invoke(main, ["report", str(run), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kind"] == "reproduce"
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "neither a sweep directory" in r.stderr and "Traceback" not in r.output


# ----------------------------------------------------------------------------- in a real browser

def _browser_or_skip():
    """Playwright driving Debian's chromium; skipped locally when absent, a failure in CI."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install playwright; no browser download needed)"
    if missing is None and not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser check: {missing}")
        pytest.skip(missing)


@pytest.mark.parametrize("kind, tables", [
    ("reproduce", ["claims", "settings", "config", "versions"]),
    ("sweep", ["claims", "aggregate", "tasks", "runs", "config", "versions"]),
])
def test_report_in_headless_chromium(reports, kind, tables):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    directory, files = reports[kind]
    profile = tempfile.mkdtemp(prefix="relufim-chromium-")
    problems: list[str] = []
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=CHROMIUM_FLAGS, viewport={"width": 1200, "height": 900})
            try:
                page = ctx.new_page()
                page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                        if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:100]}"))
                page.goto(files.html.as_uri(), wait_until="load")
                images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
                found = page.evaluate("Array.from(document.querySelectorAll('table[id]')).map(t => t.id)")
                rows = page.evaluate("document.querySelectorAll('#claims tbody tr').length")
                title = page.title()
                page.screenshot(path=str(directory / "report.png"), full_page=True)
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert not problems, problems
    assert len(images) == 2  # reproduce: two figures present (the third is missing); sweep: two aggregates
    assert all(complete and width > 0 for complete, width in images), images
    for t in tables:
        assert t in found, (t, found)
    assert rows >= 3 and title.startswith("relufim")
    assert (directory / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
