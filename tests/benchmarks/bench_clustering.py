"""Clustering speed: planes per second for each algorithm, against the seed's pattern measured in the same run.

Run: python tests/benchmarks/bench_clustering.py [--planes N]

Baseline: the seed study's per-plane clustering, `skimage.measure.label` + `regionprops(intensity_image=...)`
with each region's `image_intensity` and per-wire maxima, on the same planes and threshold.
"""
import argparse, time

import numpy as np
from skimage.measure import label, regionprops

from larvae_nb.config import ClusterConfig
from larvae_nb.clustering import ALGORITHMS, ToyTrack, cluster_chunk, find_clusters, toy_plane


def make_planes(n, bipolar, seed=0):
    "n toy 240x3072 planes with one or two beam-like tracks each, on 2 ADC noise."
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w0 = int(rng.integers(13, 36)); t0 = float(rng.uniform(900, 1800))
        tracks = [ToyTrack(w0, w0 + int(rng.integers(40, 180)), t0, t0 + float(rng.uniform(-200, 200)))]
        if i % 2: tracks.append(ToyTrack(int(rng.integers(0, 200)), 239, float(rng.uniform(200, 2800)), float(rng.uniform(200, 2800))))
        tracks = [ToyTrack(t.wire0, min(t.wire1, 239), t.tick0, t.tick1) for t in tracks]
        out.append(toy_plane(tracks, seed=seed + i, bipolar=bipolar))
    return np.stack(out)


def seed_pattern(plane, threshold):
    "The seed's clustering of one plane (skimage), with the same per-cluster outputs."
    lab = label(plane > threshold)
    return [(r.bbox, r.image_intensity, r.image_intensity.max(axis=1)) for r in regionprops(lab, intensity_image=plane)]


def rate(fn, planes, repeat=3):
    "Best-of-`repeat` planes per second of fn(plane) over all planes."
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p in planes: fn(p)
        best = min(best, time.perf_counter() - t0)
    return len(planes)/best


class _Chunk:
    def __init__(self, col, ind):
        import pandas as pd
        self.keys = pd.DataFrame(dict(file='bench.root', entry=np.arange(len(col)), run=1, subrun=0, event=np.arange(len(col))))
        self.collection, self.induction = col, ind


def main(n_planes=40):
    col, ind = make_planes(n_planes, False), make_planes(n_planes, True, seed=1000)
    for name, planes, thr in (('collection', col, 15.), ('induction', ind, 7.)):
        base = rate(lambda p, thr=thr: seed_pattern(p, thr), planes)
        print(f"{name} plane, {n_planes} planes of 240x3072")
        print(f"  {'seed skimage label+regionprops':>32}: {base:8.1f} planes/s  (baseline)")
        for alg in ALGORITHMS:
            cfg = ClusterConfig(algorithm=alg)
            r = rate(lambda p, cfg=cfg, name=name: find_clusters(p, cfg, name), planes)
            print(f"  {alg:>32}: {r:8.1f} planes/s  {r/base:5.2f} x baseline  ({1e3/r:.2f} ms/plane)")
    cfg = ClusterConfig()
    ch = _Chunk(col, ind)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter(); cluster_chunk(ch, cfg); best = min(best, time.perf_counter() - t0)
    base = 1/(1/rate(lambda p: seed_pattern(p, 15.), col) + 1/rate(lambda p: seed_pattern(p, 7.), ind))
    print(f"cluster_chunk (both planes, connected): {n_planes/best:8.1f} events/s  {n_planes/best/base:5.2f} x the seed pattern on both planes")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--planes', type=int, default=40)
    main(ap.parse_args().planes)
