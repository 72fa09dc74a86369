"""Benchmark of larvae_nb.detsim: events/s of `simulate` (generation + readout + writing both ROOT layouts)
at full 3072 ticks, against generation alone (`simulate_event` in a loop) measured in the same run, and peak RSS.

Run: OMP_NUM_THREADS=1 python tests/benchmarks/bench_detsim.py [--events 200] [--ticks 3072] [--chunk 100]
"""
import argparse, resource, shutil, sys, tempfile, time
from pathlib import Path

from larvae_nb.config import SimConfig
from larvae_nb.detsim import simulate, simulate_event


def peak_rss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == 'darwin' else r / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--events', type=int, default=200, help='events per sample')
    ap.add_argument('--ticks', type=int, default=3072)
    ap.add_argument('--chunk', type=int, default=100)
    ap.add_argument('--mips', type=int, default=0, help='events of the MIP sample (0: protons and kaons only, comparable across versions)')
    a = ap.parse_args()
    cfg = SimConfig(n_protons=a.events, n_kaons=a.events, ticks=a.ticks, events_per_chunk=a.chunk, **({'n_mips': a.mips} if 'n_mips' in SimConfig.__dataclass_fields__ else {}))  # (older versions have no MIP sample)
    simulate_event(cfg, 'proton', 0); simulate_event(cfg, 'kaon', 0)  # tables and noise banks
    t = time.perf_counter()
    for s in ('proton', 'kaon'):
        for i in range(a.events // 2): simulate_event(cfg, s, i)
    gen = a.events / (time.perf_counter() - t)
    d = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        simulate(d/'data', cfg, progress=False)
        full = (2 * a.events + a.mips) / (time.perf_counter() - t)
        size = sum(f.stat().st_size for f in (d/'data').rglob('*') if f.is_file()) / 2**20
    finally:
        shutil.rmtree(d)
    print(f"ticks {a.ticks}, chunk {a.chunk} events, {2 * a.events + a.mips} events ({a.mips} MIPs)")
    print(f"generation only      : {gen:7.1f} events/s")
    print(f"simulate incl. write : {full:7.1f} events/s  ({full / gen:.2f} x generation only; target >= 20/core)")
    print(f"output size          : {size:7.1f} MB")
    print(f"peak RSS             : {peak_rss_mb():7.0f} MB")


if __name__ == '__main__':
    main()
