"""Training and inference throughput of the seed's paper model (48x48, channels 32-64-128-256, kernel 5, stride 2,
latent 8, batch 32) on the CPU with 2 threads.

Training: images/s of `larvae_nb.train.train` (its per-epoch training-loop timing, plus the end-to-end rate
including validation, checkpoints, setup and plots) against a bare PyTorch loop of the same model, optimiser
and loss on in-memory random tensors, measured in the same run. Target: ratio >= 0.9.
Inference: images/s of `larvae_nb.inference.infer` (transform, encode, decode, errors, keyed .npz writes).
Target: >= 800 images/s.

Run: python tests/benchmarks/bench_train.py [--n 1152] [--epochs 3] [--n-infer 4096]
"""
import argparse, json, shutil, statistics, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from larvae_nb.config import load_config
from larvae_nb.images import ImageSet, apply_transform
from larvae_nb.inference import infer
from larvae_nb.model import VAE, vae_loss
from larvae_nb.train import make_optimizer, train, train_epoch

PAPER = ['model.channels=[32,64,128,256]', 'model.latent=8', 'model.kernel=5', 'model.stride=2', 'model.dropout=0.0',
         'model.activation=relu', 'model.output=hidden', 'train.beta=0.5', 'optimizer.name=adam',
         'train.batch_size=32', 'train.device=cpu', 'images.transform=log1p', 'train.patience=1000']


def random_images(n, kaons=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + kaons, 2, 48, 48, generator=g) * 100  # raw-ADC-like values
    keys = pd.DataFrame({'run': np.r_[np.full(n, 8000), np.full(kaons, 8001)], 'subrun': 0,
                         'event': np.r_[np.arange(n), np.arange(kaons)], 'track': 0,
                         'sample': ['proton'] * n + ['kaon'] * kaons})
    return ImageSet(x=x, keys=keys)


def bare_loop(x, cfg, epochs):
    "The reference: the same model, optimiser and loss in a plain loop over in-memory tensors; images/s per epoch."
    torch.manual_seed(0)
    model = VAE(cfg.model)
    opt = make_optimizer(model.parameters(), cfg.optimizer)
    tc, rates = cfg.train, []
    model.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), tc.batch_size):
            xb = x[perm[i:i + tc.batch_size]]
            recon, mu, logvar = model(xb)
            loss = vae_loss(recon, xb, mu, logvar, tc.beta, tc.signal_threshold, tc.signal_weight).total
            opt.zero_grad()
            loss.backward()
            opt.step()
        rates.append(len(x) / (time.perf_counter() - t0))
    return rates


def interleaved(x, cfg, rounds):
    "Per-round ratio of `train_epoch` (the loop `train` runs) to the bare loop, alternating epochs so load drift cancels."
    torch.manual_seed(0)
    ours = VAE(cfg.model)
    opt = make_optimizer(ours.parameters(), cfg.optimizer)
    gen, ratios = torch.Generator().manual_seed(0), []
    for _ in range(rounds):
        b = bare_loop(x, cfg, 1)[0]
        t0 = time.perf_counter()
        train_epoch(ours, x, opt, cfg.train, gen)
        ratios.append(len(x) / (time.perf_counter() - t0) / b)
    return ratios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1152, help='proton images (10%% go to validation)')
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--n-infer', type=int, default=4096, help='extra kaon images for the inference benchmark')
    a = ap.parse_args()
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = load_config(overrides=PAPER + [f'train.epochs={a.epochs}'])
        ims = random_images(a.n, kaons=a.n_infer)
        ims.save(tmp / 'images.pt')
        n_train = round(a.n * (1 - cfg.data.val_split))
        x_bare = apply_transform(ims.x[:n_train], 'log1p').contiguous()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; paper model, batch {cfg.train.batch_size}, "
              f"{n_train} training images, {a.epochs} epochs per measurement")

        bare = bare_loop(x_bare, cfg, a.epochs)
        t0 = time.perf_counter()
        hist = train(tmp / 'images.pt', cfg, tmp / 'run', progress=False)
        wall = time.perf_counter() - t0
        bare += bare_loop(x_bare, cfg, a.epochs)  # bracket ours with two bare measurements against load drift

        ours = hist['train_images_per_second']
        b, o = statistics.median(bare), statistics.median(ours)
        print(f"best epochs (least disturbed by other load): ours {max(ours):.1f}, bare {max(bare):.1f}, ratio {max(ours) / max(bare):.3f}")
        e2e = hist['n_train'] * len(ours) / wall
        print(f"bare loop:            {b:7.1f} images/s  (epochs: {', '.join(f'{r:.0f}' for r in bare)})")
        print(f"larvae train (loop):  {o:7.1f} images/s  (epochs: {', '.join(f'{r:.0f}' for r in ours)})")
        print(f"ratio train/bare:     {o / b:7.3f}   (target >= 0.9)")
        print(f"larvae train end-to-end incl. setup, sanity check, validation, checkpoints, plot: "
              f"{e2e:.1f} training images/s = {e2e / b:.3f} x bare ({wall:.1f} s wall)")

        r = interleaved(x_bare, cfg, 2 * a.epochs)
        print(f"interleaved epochs, train_epoch/bare: median {statistics.median(r):.3f}  ({', '.join(f'{v:.2f}' for v in r)})")

        t0 = time.perf_counter()
        infer(tmp / 'run')
        wall = time.perf_counter() - t0
        s = json.loads((tmp / 'run' / 'inference' / 'summary.json').read_text())['sets']
        n = sum(v['n'] for v in s.values())
        enc = n / sum(v['seconds'] for v in s.values())
        print(f"inference: {n} images, {enc:.0f} images/s in the encode loop, {n / wall:.0f} images/s end-to-end incl. "
              f"loading and .npz writes (target >= 800)")
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
