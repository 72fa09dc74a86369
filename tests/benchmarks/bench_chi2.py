"""Throughput of the vectorised PID scorer `score_tracks` against a Python loop over `score_track`.

Run: python tests/benchmarks/bench_chi2.py [n_tracks]
"""
import sys, time, warnings

import awkward as ak
import numpy as np

from larvae_nb import physics
from larvae_nb.chi2 import score_track, score_tracks, toy_tracks


def main(n=20_000, n_loop=500):
    tables = {sp: physics.dedx_table(sp) for sp in ('proton', 'kaon')}
    rp, dp = toy_tracks(tables['proton'], n // 2, seed=1)
    rk, dk = toy_tracks(tables['kaon'], n - n // 2, seed=2)
    rr, dedx = ak.concatenate([rp, rk]), ak.concatenate([dp, dk])
    n_hits = int(ak.sum(ak.num(rr)))
    warnings.simplefilter('ignore')
    score_tracks(rr[:100], dedx[:100], tables)  # warm-up
    t0 = time.perf_counter(); score_tracks(rr, dedx, tables); t_batch = time.perf_counter() - t0
    lists_r, lists_d = [np.asarray(x) for x in ak.to_list(rr)], [np.asarray(x) for x in ak.to_list(dedx)]
    t0 = time.perf_counter(); score_tracks(lists_r, lists_d, tables); t_lists = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a, b in zip(lists_r[:n_loop], lists_d[:n_loop]): score_track(a, b, tables)
    t_loop = (time.perf_counter() - t0) * n / n_loop
    print(f"tracks: {n:,}, hits: {n_hits:,} ({n_hits / n:.0f} per track)")
    print(f"score_tracks (awkward input):   {n / t_batch:12,.0f} tracks/s  {n_hits / t_batch / 1e6:6.2f} M hits/s")
    print(f"score_tracks (list of arrays):  {n / t_lists:12,.0f} tracks/s")
    print(f"score_track loop (baseline):    {n / t_loop:12,.0f} tracks/s")
    print(f"speed-up of the batch API over the per-track loop: {t_loop / t_batch:.0f}x")


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
