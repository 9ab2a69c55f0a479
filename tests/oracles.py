"""Independent oracles and small helpers shared by several test modules."""

from __future__ import annotations

import re

import mpmath as mp


def mu_mpmath(d: int, k: int, kernel_mp, dps: int) -> mp.mpf:
    """Funk–Hecke coefficient by mpmath quadrature in the angle (the integrand is analytic there)."""
    mp.mp.dps = dps
    a = mp.mpf(d) / 2 - 1
    cd = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2))
    norm = mp.gegenbauer(k, a, 1) if d > 2 else 1

    def f(th):
        t, s = mp.cos(th), mp.sin(th)
        P = mp.gegenbauer(k, a, t) / norm if d > 2 else mp.cos(k * th)  # d = 2: Chebyshev
        return kernel_mp(th) * P * s ** (d - 2)

    return cd * mp.quad(f, [0, mp.pi / 4, mp.pi / 2, 3 * mp.pi / 4, mp.pi])


def kappa_mp(th):
    """The arc-cosine kernel as a function of the angle, in mpmath."""
    return (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / (2 * mp.pi)


def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)
