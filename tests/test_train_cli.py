"""Train -> infer end to end on a tiny synthetic image set, through the Python API, the stage functions
behind `larvae train` / `larvae infer`, and the `larvae` command itself; bad input gives one-line errors."""
import subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from larvae_nb.config import load_config
from larvae_nb.base import LarvaeError
from larvae_nb.images import ImageSet
from larvae_nb.inference import infer, infer_cmd, load_inference, novelty_auc
from larvae_nb.train import train, train_cmd

LARVAE = str(Path(sys.executable).with_name('larvae'))
TINY = ['model.channels=[4,8]', 'model.latent=2', 'model.kernel=3', 'train.epochs=2', 'train.batch_size=8', 'train.device=cpu']


def tiny_images(n=24, kaons=8):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n + kaons, 2, 48, 48, generator=g) * 50
    keys = pd.DataFrame({'run': np.r_[np.full(n, 8000), np.full(kaons, 8001)], 'subrun': 0,
                         'event': np.r_[np.arange(n), np.arange(kaons)], 'track': 0,
                         'sample': ['proton'] * n + ['kaon'] * kaons})
    return ImageSet(x=x, keys=keys)


@pytest.fixture
def images(tmp_path):
    p = tmp_path / 'images' / 'images.pt'
    p.parent.mkdir()
    tiny_images().save(p)
    return p


def test_python_api_train_then_infer(tmp_path, images):
    cfg = load_config(overrides=TINY)
    hist = train(images, cfg, tmp_path / 'run', progress=False)
    assert len(hist['val']['total']) == 2 and hist['n_train'] + hist['n_val'] == 24
    paths = infer(tmp_path / 'run')
    assert sorted(paths) == ['kaon', 'train', 'val']
    kaon = load_inference(tmp_path / 'run', 'kaon')
    assert kaon.mu.shape == (8, 2) and list(kaon.keys.columns) == ['run', 'subrun', 'event', 'track', 'sample']
    assert 0 <= novelty_auc(tmp_path / 'run')['auc'] <= 1


def test_stage_functions(tmp_path, images):
    run = train_cmd(images=str(images.parent), out=str(tmp_path / 'runs'), channels='4,8', latent=2, kernel=3,
                    epochs=2, batch_size=8, progress=False)
    assert (run / 'model.pt').is_file() and (run / 'history.json').is_file()
    infer_cmd(str(run))
    assert (run / 'inference' / 'val.npz').is_file()
    with pytest.raises(LarvaeError, match='run directory exists already'):
        train_cmd(images=str(images), out=str(tmp_path / 'runs'), channels='4,8', latent=2, kernel=3, epochs=2,
                  batch_size=8, progress=False)


def test_missing_images_is_a_clear_error_and_makes_no_run(tmp_path):
    with pytest.raises(LarvaeError, match='images file not found'):
        train_cmd(images=str(tmp_path / 'nope.pt'), out=str(tmp_path / 'runs'))
    assert not (tmp_path / 'runs').exists()
    with pytest.raises(LarvaeError, match='run directory not found'):
        infer_cmd(str(tmp_path / 'no-run'))


def test_command_line_bad_input_is_one_line(tmp_path):
    r = subprocess.run([LARVAE, 'train', '--images', str(tmp_path / 'nope.pt'), '--out', str(tmp_path / 'runs')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'images file not found' in lines[0], r.stderr


def test_larvae_classify_scores_every_analysed_track_held_out(tmp_path, images):
    run = train_cmd(images=str(images), out=str(tmp_path / 'runs'), channels='4,8', latent=2, kernel=3,
                    epochs=2, batch_size=8, progress=False)
    r = subprocess.run([LARVAE, 'classify', '--run', str(run), '--no-progress'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'held-out AUC' in r.stdout
    pred = pd.read_parquet(run / 'classifier' / 'predictions.parquet')
    split = pd.read_parquet(run / 'split.parquet')
    val = split[split.split == 'val'][['run', 'subrun', 'event']]
    # every kaon and every validation proton of the VAE, once; no proton the VAE trained on
    assert (pred['sample'] == 'kaon').sum() == 8
    prot = pred[pred['sample'] == 'proton'][['run', 'subrun', 'event']]
    assert len(prot) == len(val) and len(prot.merge(val)) == len(val)
    assert pred.p_kaon.between(0, 1).all() and not pred.duplicated(['run', 'subrun', 'event', 'track']).any()
    r = subprocess.run([LARVAE, 'classify', '--run', str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'not a training run' in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_all_species_balanced_training_and_per_species_inference(tmp_path):
    """data.species + data.balanced: equal per-species training counts by the seed's rule, split per track and saved;
    inference writes one set per species and split, which partition the images; a resumed run reuses the split."""
    ims = tiny_images(n=24, kaons=20)
    ims.keys.loc[34:, 'sample'] = 'mip'  # 24 protons, 10 kaons, 10 MIPs
    over = TINY + ['data.species=[proton, kaon, mip]', 'data.balanced=true', 'data.n_train=13']
    hist = train(ims, load_config(overrides=over), tmp_path / 'run', progress=False)
    sp = pd.read_parquet(tmp_path / 'run' / 'split.parquet')
    assert sp[sp.split == 'train'].groupby('sample').size().to_dict() == {'proton': 4, 'kaon': 4, 'mip': 5}  # remainder: last species
    assert (hist['n_train'], hist['n_val']) == (13, 31)
    paths = infer(tmp_path / 'run', ims)
    assert list(paths) == ['proton_train', 'proton_val', 'kaon_train', 'kaon_val', 'mip_train', 'mip_val']
    got = pd.concat([load_inference(tmp_path / 'run', s).keys for s in paths])
    assert len(got) == 44 and not got.duplicated().any()
    assert len(load_inference(tmp_path / 'run', 'mip').keys) == 10
    with pytest.raises(LarvaeError, match='fewer than the 11'):
        train(ims, load_config(overrides=TINY + ['data.species=[proton, kaon]', 'data.balanced=true', 'data.n_train=22']),
              tmp_path / 'big', progress=False)
