"""Benchmark of larvae_nb.root_io: events/s of chunked `iterate_planes` against bare chunked uproot reads
and against the seed's one-event-at-a-time `tree.arrays(entry_start=i, entry_stop=i+1)` pattern.

Run: python tests/benchmarks/bench_root_io.py [--events 300] [--ticks 3072] [--chunk 50] [--subset 30] [--compression zstd]
It writes noise + track events of both layouts into a temporary directory (deleted afterwards)
and prints events/s (best of --repeat passes, to damp other load on the machine) and the ratios
measured in the same run.
"""
import argparse, tempfile, time
from pathlib import Path

import numpy as np
import uproot

from larvae_nb.keys import EVENT_KEY
from larvae_nb.root_io import LAYOUT_BRANCHES, N_WIRES, RawWriter, iterate_planes


def toy_chunk(rng, n, ticks):
    "n events of int16 noise (2 ADC rms) plus one straight track per plane."
    ind = rng.standard_normal((n, N_WIRES, ticks), dtype=np.float32) * 2
    col = rng.standard_normal((n, N_WIRES, ticks), dtype=np.float32) * 2
    w = np.arange(20, 200)
    for i in range(n):
        t0, slope = rng.uniform(800, 1800), rng.uniform(-2, 2)
        t = np.clip((t0 + slope*(w - 20)).astype(int), 0, ticks - 2)
        col[i, w, t] += 80; ind[i, w, t] += 30; ind[i, w, t + 1] -= 30
    return ind.round().astype(np.int16), col.round().astype(np.int16)


def write_files(d, n, ticks, compression, seed=0):
    "Both layouts of the same events; returns {layout: (path, seconds to write)}."
    out = {}
    for layout in ('channel_mapped', 'flat'):
        rng, t = np.random.default_rng(seed), time.perf_counter()
        with RawWriter(d/f'{layout}.root', layout, n_ticks=ticks, compression=compression) as w:
            for a in range(0, n, 25):
                m = min(25, n - a)
                ind, col = toy_chunk(rng, m, ticks)
                w.write(np.full(m, 8000), np.zeros(m), np.arange(a, a + m), ind, col)
        out[layout] = d/f'{layout}.root', time.perf_counter() - t
    return out


def rate(f, n, repeat=1):
    "events/s of f(), which processes n events: the best of `repeat` passes."
    best = float('inf')
    for _ in range(repeat):
        t = time.perf_counter(); f(); best = min(best, time.perf_counter() - t)
    return n/best


def ours(path, chunk):
    return sum(len(c) for c in iterate_planes(path, chunk_events=chunk))


def bare(path, layout, chunk):
    "Bare chunked uproot: decompress the raw branches, touch the flat payload."
    t = uproot.open(path)['ana/raw']
    for arr in t.iterate(list(EVENT_KEY + LAYOUT_BRANCHES[layout]), step_size=chunk, how=dict):
        np.asarray(arr[LAYOUT_BRANCHES[layout][0]].layout.content.data).sum()


def one_at_a_time(path, layout, n):
    "The seed's pattern: one tree.arrays call per event, reshaped to planes."
    t = uproot.open(path)['ana/raw']
    for i in range(n):
        arr = t.arrays(list(EVENT_KEY + LAYOUT_BRANCHES[layout]), entry_start=i, entry_stop=i + 1, library='np')
        np.asarray(arr[LAYOUT_BRANCHES[layout][0]][0], dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--events', type=int, default=300); p.add_argument('--ticks', type=int, default=3072)
    p.add_argument('--chunk', type=int, default=50); p.add_argument('--subset', type=int, default=30)
    p.add_argument('--repeat', type=int, default=3); p.add_argument('--compression', default='zstd')
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        files = write_files(Path(d), a.events, a.ticks, a.compression)
        print(f"{a.events} events of 480 x {a.ticks} int16 per layout ({a.compression}), chunks of {a.chunk}, "
              f"one-at-a-time on {a.subset}, best of {a.repeat}")
        for layout, (path, secs) in files.items():
            print(f"\n[{layout}] file {path.stat().st_size/2**20:.0f} MiB, RawWriter {a.events/secs:.1f} events/s")
            r_ours = rate(lambda path=path: ours(path, a.chunk), a.events, a.repeat)
            r_bare = rate(lambda path=path, layout=layout: bare(path, layout, a.chunk), a.events, a.repeat)
            r_one = rate(lambda path=path, layout=layout: one_at_a_time(path, layout, a.subset), a.subset, a.repeat)
            print(f"  (a) iterate_planes          {r_ours:8.1f} events/s")
            print(f"  (b) bare chunked uproot     {r_bare:8.1f} events/s")
            print(f"  (c) one event at a time     {r_one:8.1f} events/s")
            print(f"  ours/bare = {r_ours/r_bare:.2f}   ours/one-at-a-time = {r_ours/r_one:.2f}")


if __name__ == '__main__':
    main()
