"""``relufim spectrum``: the clustered spectrum of one FIM against the theory."""

from __future__ import annotations

import time
from typing import Any

import click

from ..model.activations import get_activation
from ..theory.checks import spectrum_summary
from ..theory.limit import limit_cluster_values
from ..model.weights import sample_weights
from ._common import (
    emit_json,
    handle_errors,
    json_option,
    peak_memory_bytes,
    progress_bar,
    quiet_option,
    stage,
)


def limit_values(d: int, p: int, activation: str, scale: str | float) -> dict[str, float] | None:
    """Infinite-width cluster eigenvalues (None where the limit is not defined, e.g. d = 1)."""
    try:
        return limit_cluster_values(d, activation=activation, scale=scale, p=p)
    except ValueError:
        return None


def _scale(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def format_table(s: dict[str, Any]) -> str:
    """A readable plain-text table of the clusters against the theory."""
    lines = [f"FIM spectrum: d = {s['d']}, p = {s['p']}, seed = {s['seed']}, fisher = {s['fisher']}"
             + (f" (n = {s['n']})" if s.get("n") else "") + f", activation = {s['activation']}, solver = {s['solver']}",
             ""]
    head = f"{'cluster':>7}  {'size':>4}  {'pred':>4}  {'mean':>11}  {'min':>11}  {'max':>11}  {'RQ bound':>9}  {'limit':>11}  {'cos(angle)':>10}"
    lines += [head, "-" * len(head)]
    bound_keys = ["v0", "rows", "v_ab"]
    for i, c in enumerate(s["clusters"][:3]):
        t3 = s.get("theorem3", {}).get(bound_keys[i], {})
        lim = (s.get("limit") or {}).get(f"cluster{i + 1}")
        cos = s.get("alignment", {}).get(f"cluster{i + 1}")
        bound = t3.get("bound")
        lines.append(f"{i + 1:>7}  {c['size']:>4}  {c['predicted_size']:>4}  {c['mean']:>11.5g}  {c['min']:>11.5g}  "
                     f"{c['max']:>11.5g}  {'' if bound is None else format(bound, '.4g'):>9}  "
                     f"{'' if lim is None else format(lim, '.5g'):>11}  {'' if cos is None else format(cos, '.6f'):>10}")
    lines.append("")
    tf = s.get("top_fraction")
    paper_setting = s["activation"] == "relu" and s["scale"] == "1/p"  # where Theorem 3's numbers apply
    lines.append(f"trace                  {s['trace']:.6g}"
                 + (f"   (Theorem 3: <= d/2 (1+delta) = {s['d'] / 2:g})" if paper_setting else ""))
    if tf is not None:
        lines.append(f"top d(d+3)/2 share     {tf:.4%}"
                     + (f"   (Theorem 3 asymptotic bound: >= {s['top_fraction_bound']:.4%})" if s["activation"] == "relu"
                        else ""))
    lines.append(f"Perron-Frobenius       {'yes' if s['perron_frobenius'] else 'NO'}   (top eigenvector has one sign)")
    if "hadamard" in s.get("alignment", {}):
        lines.append(f"span(c1 + c3) vs Hadamard products: min cos = {s['alignment']['hadamard']:.6f}")
    if s.get("remainder_min_eigenvalue") is not None:
        lines.append(f"Theorem 2 remainder R: min eigenvalue {s['remainder_min_eigenvalue']:.3g} (PSD), "
                     f"share of trace {s['remainder_trace_share']:.3%}")
    lines.append(f"max residual           {s['max_residual']:.2e}   (the {sum(c['size'] for c in s['clusters'][:3])} "
                 f"cluster pairs {'converged' if s['converged'] else 'did NOT all converge'})")
    if s.get("extra"):
        lines.append(f"                       {s['max_residual_extra']:.2e}   ({s['extra_converged']} of the "
                     f"{s['extra']} pairs beyond the clusters converged; the rest are flagged: their Ritz values are lower bounds)")
    ev = s["eigenvalues"]
    lines.append(f"eigenvalues            {len(ev)} computed; first beyond the clusters: "
                 + ", ".join(f"{x:.4g}" for x in ev[sum(c['size'] for c in s['clusters'][:3]):][:3]))
    cmp = s.get("relu_comparison")
    if cmp:
        lines += ["", f"{s['activation']} against ReLU on the same W:",
                  f"  {'':>12}  {'sizes':>14}  {'top share':>10}  {'cluster means':>36}"]
        for name, row in ((s["activation"], {"sizes": [c["size"] for c in s["clusters"][:3]],
                                              "top_fraction": s["top_fraction"],
                                              "means": [c["mean"] for c in s["clusters"][:3]]}), ("relu", cmp)):
            means = ", ".join(f"{m:.4g}" for m in row["means"])
            lines.append(f"  {name:>12}  {str(row['sizes']):>14}  {row['top_fraction']:>10.4%}  {means:>36}")
    if "memory_peak_bytes" in s:
        lines.append(f"time {s['seconds']:.1f} s, peak memory {s['memory_peak_bytes'] / 1e9:.2f} GB")
    return "\n".join(lines)


@click.command("spectrum")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=2000, show_default=True, help="Number of hidden units.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (and of the Monte Carlo inputs).")
@click.option("--method", type=click.Choice(["exact", "monte-carlo"]), default="exact", show_default=True,
              help="Exact FIM (Lemma 1) or Monte Carlo FIM from --n Gaussian inputs.")
@click.option("--n", "n", type=int, default=None, help="Monte Carlo samples (required with --method monte-carlo).")
@click.option("--activation", default="relu", show_default=True, help="Activation (see 'relufim limit --help').")
@click.option("--scale", default="1/p", show_default=True, help="Weight scale: 1/p, 1/d, unit, or an entry variance.")
@click.option("--extra", type=int, default=10, show_default=True, help="Eigenvalues computed beyond the three clusters.")
@json_option
@quiet_option
@handle_errors
def spectrum_command(d: int, p: int, seed: int, method: str, n: int | None, activation: str, scale: str, extra: int,
                     as_json: bool, quiet: bool) -> None:
    """Top eigenvalues of the FIM, its three clusters, and the theory's predictions next to them.

    Example: relufim spectrum --d 10 --p 2000 --seed 0 --json
    """
    if method == "monte-carlo" and n is None:
        raise ValueError("--method monte-carlo needs --n (number of Gaussian input samples), e.g. --n 20000.")
    if method == "exact" and n is not None:
        raise ValueError("--n is only used with --method monte-carlo.")
    t0 = time.perf_counter()
    sc = _scale(scale)
    with stage(f"drawing W (d = {d}, p = {p}, scale = {scale})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed, scale=sc)
    k = d * (d + 3) // 2 + extra
    with stage("computing the spectrum and checking the theory", enabled=not quiet):
        with progress_bar("  eigenpairs converged", k, enabled=not quiet) as cb:
            s = spectrum_summary(d, p, seed, fisher=method, n=n, activation=activation, scale=sc, extra=extra,
                                 W=W, progress=cb)
    s["limit"] = limit_values(d, p, activation, sc)
    if get_activation(activation).name != "relu":
        with stage("ReLU on the same W, for comparison", enabled=not quiet):
            r = spectrum_summary(d, p, seed, fisher=method, n=n, activation="relu", scale=sc, extra=extra, W=W)
        s["relu_comparison"] = {"sizes": [c["size"] for c in r["clusters"][:3]], "top_fraction": r["top_fraction"],
                                "means": [c["mean"] for c in r["clusters"][:3]]}
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    if as_json:
        emit_json(s)
    else:
        click.echo(format_table(s))
