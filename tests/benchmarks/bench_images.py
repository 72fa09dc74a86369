"""Image making speed: tracks per second of `make_images`, against the one-track reference in the same run.

Run: python tests/benchmarks/bench_images.py [--tracks N] [--threads T]

Tracks are synthetic rows shaped like tracks.parquet (crops of 11-175 wires and 50-1500 ticks, the spread
of the default simulated dataset). Three figures are printed:
  - the baseline: `crop_to_canvas` on each track and plane (a Python loop, as the seed did), then one
    batched resize;
  - `make_images` from a pandas DataFrame (as `load_tracks` returns the rows);
  - `make_images` from a pyarrow Table (as `larvae images` reads them), the target (>= 1,000 tracks/s on
    2 CPU cores);
  - the same with the seed's images (51 x 1502 canvas, top aligned, no antialiasing).
"""
import argparse, time

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F

from larvae_nb.config import ImageConfig
from larvae_nb.images import crop_to_canvas, make_images


def toy_rows(n, seed=0):
    "n track rows with a diagonal track on each plane, sizes like the simulated dataset."
    rng, rows = np.random.default_rng(seed), []
    for i in range(n):
        h = int(rng.integers(11, 176)); w = int(np.clip(rng.lognormal(np.log(150), 0.8), 50, 1500))
        img = np.zeros((h, w), np.float32)
        t = np.linspace(0, w - 3, h).astype(int)
        img[np.arange(h), t] = 100 + 400*np.arange(h)/h; img[np.arange(h), t + 1] = 50
        rows.append(dict(run=1, subrun=0, event=i, track=0, sample='proton' if i % 2 else 'kaon',
                         col_image=list(img), ind_image=list(0.4*img)))
    return pd.DataFrame(rows)


def best_rate(fn, n, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return n/best


def main(n=4000, threads=2, repeat=3):
    torch.set_num_threads(threads)
    df = toy_rows(n)
    tab = pa.Table.from_pandas(df, preserve_index=False)
    cfg = ImageConfig(device='cpu')

    def reference():
        canv = np.stack([[crop_to_canvas(r, cfg.n_wires, cfg.canvas_ticks) for r in (a, b)]
                         for a, b in zip(df['col_image'], df['ind_image'])])
        return F.interpolate(torch.from_numpy(canv), size=(cfg.output_hw,)*2, mode='bilinear', antialias=True)

    base = best_rate(reference, n, repeat)
    r_pd = best_rate(lambda: make_images(df, cfg), n, repeat)
    r_pa = best_rate(lambda: make_images(tab, cfg), n, repeat)
    seed = ImageConfig(device='cpu', canvas_wires=51, canvas_ticks=1502, wire_align='top', antialias=False)
    r_seed = best_rate(lambda: make_images(tab, seed), n, repeat)
    print(f"make_images, {n} tracks, {torch.get_num_threads()} torch threads, device cpu")
    print(f"  {'one-track reference loop':>28}: {base:9.0f} tracks/s  (baseline)")
    print(f"  {'make_images (pandas rows)':>28}: {r_pd:9.0f} tracks/s  ({r_pd/base:.1f}x)")
    print(f"  {'make_images (pyarrow table)':>28}: {r_pa:9.0f} tracks/s  ({r_pa/base:.1f}x)  target >= 1000")
    print(f"  {'... with the seed settings':>28}: {r_seed:9.0f} tracks/s  ({r_seed/base:.1f}x)  target >= 1000")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tracks', type=int, default=4000)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    main(a.tracks, a.threads)
