"""Throughput of the vectorised energy-loss and range functions of larvae_nb.physics.

Run: python tests/benchmarks/bench_physics.py [n_energies]

Baseline: the same Bethe-Bloch formula evaluated one energy at a time with the `math` module
(the pattern of a per-step Python simulation), measured in the same run on a subset and scaled.
"""
import math, sys, time

import numpy as np

from larvae_nb import physics as ph


def bethe_scalar(M, T):
    "Bethe-Bloch for one kinetic energy [MeV], plain Python (the baseline)."
    bg2 = T * (T + 2 * M) / M**2
    beta2 = bg2 / (1 + bg2)
    r = ph.ME / M
    wmax = 2 * ph.ME * bg2 / (1 + 2 * (1 + T / M) * r + r * r)
    s = ph.STERNHEIMER
    x = 0.5 * math.log10(bg2)
    delta = 0. if x < s['x0'] else 2 * math.log(10) * x - s['cbar'] + (s['a'] * (s['x1'] - x)**s['k'] if x < s['x1'] else 0.)
    L = 0.5 * math.log(2 * ph.ME * bg2 * wmax / ph.I_LAR**2) - beta2 - 0.5 * delta
    return ph.K_BETHE * ph.LAR_Z_OVER_A * ph.LAR_DENSITY / beta2 * max(L, 1.)


def timed(f, *a, repeat=3):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter(); out = f(*a); best = min(best, time.perf_counter() - t0)
    return best, out


def main(n=1_000_000, n_loop=20_000):
    rng = np.random.default_rng(0)
    T = rng.uniform(1., 1000., n)
    M = ph.mass('kaon')
    t_vec, dedx = timed(ph.mean_dedx, 'kaon', T)
    t0 = time.perf_counter(); loop = [bethe_scalar(M, t) for t in T[:n_loop]]; t_loop = (time.perf_counter() - t0) * n / n_loop
    assert np.allclose(loop, dedx[:n_loop], rtol=1e-12)
    ph._range_grid.cache_clear()
    t0 = time.perf_counter(); ph.csda_range('kaon', 1.); t_grid = time.perf_counter() - t0
    t_rng, R = timed(ph.csda_range, 'kaon', T)
    t_inv, _ = timed(ph.ke_from_range, 'kaon', R)
    t_tab, _ = timed(ph.dedx_table, 'proton')
    print(f"energies: {n:,}")
    print(f"mean_dedx (vectorised):      {t_vec * 1e3:8.1f} ms  {n / t_vec / 1e6:7.1f} M/s")
    print(f"Bethe in a Python loop:      {t_loop * 1e3:8.1f} ms  {n / t_loop / 1e6:7.2f} M/s  (scaled from {n_loop:,})")
    print(f"speed-up over the loop:      {t_loop / t_vec:8.0f} x")
    print(f"range table build (1st call): {t_grid * 1e3:7.1f} ms")
    print(f"csda_range:                  {t_rng * 1e3:8.1f} ms  {n / t_rng / 1e6:7.1f} M/s")
    print(f"ke_from_range:               {t_inv * 1e3:8.1f} ms  {n / t_inv / 1e6:7.1f} M/s")
    print(f"dedx_table('proton') (2000 rows): {t_tab * 1e3:5.1f} ms")


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
