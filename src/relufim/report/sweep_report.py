"""The report of a sweep directory: claims against the measured values, aggregates, figures, provenance."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from ..sweep.store import ResultsStore, load_results
from ..theory import TRACE_SHARE_BOUND
from ..theory.limit import limit_cluster_values, trace_share_curve
from .claims import JUDGEMENT_NOTE, claims_table, count_claims
from .document import Figure, Paragraph, Preformatted, Report, Section, Table
from .figures import figure_png, sweep_cluster_eigenvalues_figure, sweep_trace_share_figure
from .reproduce import flatten

__all__ = ["sweep_report", "sweep_claims", "limit_values", "FIGURES_DIR"]

FIGURES_DIR = "figures"
_MAX_TASK_ROWS = 500


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def limit_values(d: int, activation: str = "relu", scale: Any = "1/p", p: int | None = None) -> list[float | None]:
    """``[λ_1, λ_2, λ_3]``: the infinite-width cluster values, ``None`` where the limit is not defined.

    Theory §7: the FIM eigenvalue of degree ``k`` is ``p·E‖w‖²·μ_k``, ``= d·μ_k`` for the default draw.
    """
    try:
        raw = limit_cluster_values(int(d), activation=activation, scale=scale, p=p)
    except (ValueError, TypeError, NotImplementedError):
        return [None, None, None]
    out: list[float | None] = []
    for key in ("cluster1", "cluster2", "cluster3"):
        x = _num(raw.get(key))
        out.append(x)
    return out


def sweep_claims(df: Any, limit_values: Any = None) -> list[dict[str, Any]]:
    """The papers' claims checked on every finished task of a sweep.

    Claims: three clusters of sizes 1, d, d(d+1)/2 − 1 (Theorem 2); at least 97.7 % of
    the trace in them (Theorem 3, ReLU only); a Perron–Frobenius top eigenvector (Lemma 1);
    and, given ``limit_values`` (e.g. :func:`limit_values`), the distance of the cluster means
    at the largest ``p`` from the infinite-width values (for judgement: ``holds`` is ``None``).
    """
    done = df[df["status"] == "done"] if len(df) else df
    claims: list[dict[str, Any]] = []
    if not len(done):
        return claims
    if "clusters_match" in done.columns:
        ok = done["clusters_match"].fillna(False).astype(bool)
        bad = done[~ok]
        measured = f"{int(ok.sum())} of {len(done)} tasks"
        if len(bad):
            ex = bad.iloc[0]
            sizes = "/".join(str(ex.get(f"cluster{i}_size")) for i in (1, 2, 3))
            measured += f" (e.g. d={ex['d']}, p={ex['p']}, seed={ex['seed']}: {sizes})"
        claims.append({"claim": "The top of the spectrum forms three clusters of sizes 1, d, d(d+1)/2 − 1",
                       "source": "2023 paper, Theorem 2 (theory §4)", "predicted": "every task",
                       "measured": measured, "holds": bool(ok.all())})
    relu = done[done["activation"] == "relu"] if "activation" in done.columns else done
    if "top_fraction" in relu.columns and len(relu):
        tf = relu["top_fraction"].astype(float)
        worst = relu.loc[tf.idxmin()]
        claims.append({"claim": "The three clusters carry at least 97.7 % of the trace",
                       "source": "2023 paper, Theorem 3 (theory §5)",
                       "predicted": f"top_fraction ≥ {TRACE_SHARE_BOUND:.4f} (1/2 + 3/(2π))",
                       "measured": f"min {tf.min():.4f} (d={worst['d']}, p={worst['p']}, seed={worst['seed']}), "
                                   f"mean {tf.mean():.4f}",
                       "holds": bool(tf.min() >= TRACE_SHARE_BOUND)})
    if "perron_frobenius" in done.columns:
        pf = done["perron_frobenius"].dropna().astype(bool)
        if len(pf):
            claims.append({"claim": "The top eigenvector has entries of one sign (Perron–Frobenius)",
                           "source": "J has nonnegative entries (Lemma 1, theory §2)", "predicted": "every task",
                           "measured": f"{int(pf.sum())} of {len(pf)} tasks", "holds": bool(pf.all())})
    if limit_values is not None and len(relu) and "cluster1_mean" in relu.columns:
        scale_ok = relu[relu["scale"].astype(str) == "1/p"] if "scale" in relu.columns else relu
        parts = []
        for d, g in scale_ok.groupby("d"):
            pmax = g["p"].max()
            gm = g[g["p"] == pmax]
            lim = limit_values(int(d), activation="relu", scale="1/p")
            devs = []
            for i in range(3):
                lv = lim[i] if i < len(lim) else None
                mv = _num(gm[f"cluster{i + 1}_mean"].astype(float).mean())
                if lv and mv is not None:
                    devs.append(f"{100 * (mv - lv) / lv:+.1f} %")
            if devs:
                parts.append(f"d={d}, p={pmax}: " + ", ".join(devs))
        if parts:
            claims.append({"claim": "As p grows, the cluster eigenvalues approach d·μ_0, d·μ_1, d·μ_2",
                           "source": "infinite-width limit (theory §7)", "predicted": "deviation → 0 as p → ∞",
                           "measured": "; ".join(parts) + " (mean of each cluster vs its limit)", "holds": None})
    return claims


def _aggregate_table(df: Any, limit_values: Any) -> Table:
    done = df[df["status"] == "done"]
    keys = [c for c in ("activation", "scale", "fisher", "n", "d", "p") if c in done.columns]
    cols = keys + ["tasks", "top_fraction (mean)", "top_fraction (min)", "clusters as predicted",
                   "cluster 1 mean", "cluster 2 mean", "cluster 3 mean"]
    with_limits = limit_values is not None
    if with_limits:
        cols += ["limit 1 (p → ∞)", "limit 2 (p → ∞)", "limit 3 (p → ∞)"]
    rows = []
    if len(done):
        for key, g in done.groupby(keys, dropna=False, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            row: list[Any] = [None if (isinstance(k, float) and math.isnan(k)) else k for k in key]
            tf = g["top_fraction"].astype(float) if "top_fraction" in g.columns else None
            row += [len(g), _num(tf.mean()) if tf is not None else None, _num(tf.min()) if tf is not None else None,
                    f"{int(g['clusters_match'].fillna(False).astype(bool).sum())}/{len(g)}"
                    if "clusters_match" in g.columns else None]
            for i in (1, 2, 3):
                col = f"cluster{i}_mean"
                if col in g.columns:
                    m, s = _num(g[col].astype(float).mean()), _num(g[col].astype(float).std())
                    row.append(None if m is None else (f"{m:.4g} ± {s:.2g}" if s is not None else f"{m:.4g}"))
                else:
                    row.append(None)
            if with_limits:
                info = dict(zip(keys, key))
                lim = limit_values(int(info["d"]), activation=info.get("activation", "relu"),
                                   scale=info.get("scale", "1/p"), p=int(info["p"]))
                row += [lim[i] if i < len(lim) else None for i in range(3)]
            rows.append(row)
    return Table(cols, rows, id="aggregate",
                 caption="Per grid cell (over seeds): the trace share and the cluster means (mean ± sd).")


def _tasks_table(df: Any) -> Table:
    cols = [c for c in ("task_id", "d", "p", "seed", "activation", "scale", "fisher", "n", "status", "top_fraction",
                        "cluster1_mean", "cluster2_mean", "cluster3_mean", "max_residual", "seconds", "worker")
            if c in df.columns]
    rows = [[(None if isinstance(v, float) and math.isnan(v) else v) for v in r]
            for r in df[cols].head(_MAX_TASK_ROWS).itertuples(index=False, name=None)]
    caption = "Every task" + (f" (first {_MAX_TASK_ROWS} of {len(df)})" if len(df) > _MAX_TASK_ROWS else "") + "."
    return Table(cols, rows, id="tasks", caption=caption)


def sweep_report(directory: str | Path, *, figures_dir: str | Path | None = None) -> tuple[Report, dict[str, bytes]]:
    """Build the report of a sweep directory.

    Returns
    -------
    report : Report
    figures : dict
        ``{relative file name: PNG bytes}`` for the caller to save next to the report.
    """
    directory = Path(directory)
    df = load_results(directory)
    with ResultsStore(directory, readonly=True) as store:
        meta = store.meta()
        runs = store.runs()
        counts = store.counts()
    config = meta.get("config") or {}
    versions = meta.get("last_versions") or (runs[-1].get("versions") if runs else {}) or {}
    git = meta.get("last_git_revision")
    name = (config.get("sweep") or {}).get("name") or directory.name

    sections: list[Section] = []
    claims = sweep_claims(df, limit_values)
    claim_counts = count_claims(claims)
    blocks: list[Any] = []
    if counts["pending"]:
        blocks.append(Paragraph(f"{counts['pending']} task(s) have not finished; re-run the sweep to complete it.",
                                kind="warning"))
    if claims:
        blocks += [claim_counts.paragraph(), claims_table(claims), Paragraph(JUDGEMENT_NOTE)]
    elif counts["done"]:
        blocks.append(Paragraph("The sweep computed no spectrum (add \"spectrum\" to [compute] what): "
                                "no claim to check.", kind="warning"))
    else:
        blocks.append(Paragraph("No finished task yet: nothing to compare with the theory.", kind="warning"))
    sections.append(Section("Claims and measurements", blocks, id="claims-section"))

    figs: dict[str, bytes] = {}
    fig_blocks: list[Any] = []
    if len(df) and (df["status"] == "done").any() and "cluster1_mean" in df.columns:
        made = [("cluster_eigenvalues.png", sweep_cluster_eigenvalues_figure(df, limit_values),
                 "Mean eigenvalue of each cluster against p (error bars: sd over seeds); dashed: the infinite-width "
                 "values d·μ_k."),
                ("trace_share.png", sweep_trace_share_figure(df, TRACE_SHARE_BOUND, trace_share_curve),
                 "Share of the trace in the three clusters against d; dashed: Theorem 3's bound 1/2 + 3/(2π) ≈ 0.977.")]
        for fname, fig, caption in made:
            rel = f"{FIGURES_DIR}/{fname}"
            figs[rel] = figure_png(fig, dpi=110)
            fig_blocks.append(Figure(figs[rel], caption, file=rel, id=fname.removesuffix(".png").replace("_", "-")))
        sections.append(Section("Figures", fig_blocks, id="figures"))
    if len(df) and (df["status"] == "done").any():
        sections.append(Section("Aggregates", [_aggregate_table(df, limit_values)], id="aggregate-section"))
    sections.append(Section("Tasks", [_tasks_table(df)] if len(df) else [Paragraph("No tasks.")], id="tasks-section"))

    failed = df[df["status"] == "failed"] if len(df) else df
    if len(failed):
        cols = [c for c in ("task_id", "d", "p", "seed", "activation", "error") if c in failed.columns]
        sections.append(Section("Failed tasks", [
            Paragraph("These tasks raised an error; the rest of the sweep ran on. Re-run them with --retry-failed."),
            Table(cols, [list(r) for r in failed[cols].itertuples(index=False, name=None)], id="failed")],
            id="failed-section"))

    run_rows = [[r["run_id"], _utc(r.get("started")), _utc(r.get("finished")) or "interrupted",
                 r.get("scheduler"), r.get("workers"), r.get("submitted"), r.get("ran"), _num(r.get("seconds")),
                 r.get("git_revision")] for r in runs]
    sections.append(Section("Runs", [Table(["run", "started", "finished", "scheduler", "workers", "submitted",
                                            "ran", "seconds", "git revision"], run_rows, id="runs",
                                           caption="Every invocation of the sweep; 'interrupted' runs were killed "
                                                   "and resumed by a later one.")], id="runs-section"))
    toml_path = directory / "sweep.toml"
    cfg_blocks: list[Any] = []
    if toml_path.exists():
        cfg_blocks.append(Preformatted(toml_path.read_text(encoding="utf-8"), caption="sweep.toml"))
    cfg_blocks.append(Table(["setting", "value"], flatten(config), id="config", caption="Configuration."))
    cfg_blocks.append(Table(["package", "version"], list(versions.items()) + [("git revision", git)],
                            id="versions", caption="Versions (of the latest run)."))
    sections.append(Section("Configuration and versions", cfg_blocks, id="config-section"))

    facts = [("sweep", directory.resolve().name), ("tasks", len(df)), ("tasks done", counts["done"]),
             ("tasks failed", counts["failed"]), ("tasks pending", counts["pending"]),
             ("relufim", versions.get("relufim")),
             ("git revision", git), *claim_counts.facts()]
    report = Report(title=f"relufim sweep report: {name}",
                    subtitle="FIM spectra over a parameter grid, against the theory's predictions.",
                    facts=facts, sections=sections)
    return report, figs
