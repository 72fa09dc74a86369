"""Every file larvae loads is loaded safely: a planted pickle in a run directory (model.pt, transform.pt,
checkpoint.pt, an inference .npz) or at the UMAP cache path is refused in one line naming the file, and the code
it carries never runs. Also: results that would be silently wrong (a diverged training, weights of another
architecture, a batch size of 0) are one-line errors."""
import os, pickle, shutil, subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from larvae_nb.config import load_config
from larvae_nb.base import LarvaeError
from larvae_nb.images import ImageSet
from larvae_nb.inference import load_inference, load_run
from larvae_nb.model import VAE
from larvae_nb.train import train, train_cmd

from helpers import LARVAE, one_line_error
FLAGS = dict(channels='4,8', latent=2, kernel=3, epochs=2, batch_size=8)
CLI_FLAGS = ['--channels', '4,8', '--latent', '2', '--kernel', '3', '--epochs', '2', '--batch-size', '8', '--no-progress']


class Planted:
    "Unpickling this runs `touch marker`."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def plant(path, marker, how='torch'):
    "Replace `path` by a file whose unpickling would create `marker`."
    if how == 'torch': torch.save({'model': Planted(marker), 'stats': {}}, path)
    else: Path(path).write_bytes(pickle.dumps(Planted(marker), protocol=2))


def larvae(*args):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=os.environ | {'OMP_NUM_THREADS': '1'})


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A finished tiny run: (images.pt, runs root, run directory)."
    d = tmp_path_factory.mktemp('safe')
    g = torch.Generator().manual_seed(0)
    keys = pd.DataFrame({'run': np.r_[np.full(24, 8000), np.full(8, 8001)], 'subrun': 0,
                         'event': np.r_[np.arange(24), np.arange(8)], 'track': 0, 'sample': ['proton'] * 24 + ['kaon'] * 8})
    ImageSet(x=torch.rand(32, 2, 48, 48, generator=g) * 50, keys=keys).save(d / 'images.pt')
    run = train_cmd(images=str(d / 'images.pt'), out=str(d / 'runs'), progress=False, **FLAGS)
    return d / 'images.pt', d / 'runs', run


@pytest.fixture
def copy(trained, tmp_path):
    "A private copy of the runs root and of the run inside it."
    images, runs, run = trained
    shutil.copytree(runs, tmp_path / 'runs')
    return images, tmp_path / 'runs', tmp_path / 'runs' / run.name


@pytest.mark.parametrize('name, how', [('model.pt', 'torch'), ('model.pt', 'pickle'), ('transform.pt', 'torch')])
def test_planted_run_file_is_refused_by_infer(copy, tmp_path, name, how):
    images, runs, run = copy
    marker = tmp_path / 'ran'
    plant(run / name, marker, how)
    with pytest.raises(LarvaeError, match=f'{name}: not a larvae .* it was not loaded \\(loading it could run code\\)'):
        load_run(run)
    one_line_error(larvae('infer', '--run', run), f'{run / name}: not a larvae', 'retrain the run')
    assert not marker.exists()
    assert not (run / 'inference').exists()


def test_planted_checkpoint_is_refused_by_resume(copy, tmp_path):
    images, runs, run = copy
    marker = tmp_path / 'ran'
    plant(run / 'checkpoint.pt', marker)
    with pytest.raises(LarvaeError, match='checkpoint.pt: not a larvae checkpoint file'):
        train(images, load_config(run / 'config.yaml'), run, resume=True, progress=False)
    r = larvae('train', '--images', images, '--out', runs, '--resume', *CLI_FLAGS)
    one_line_error(r, f'{run / "checkpoint.pt"}: not a larvae checkpoint file, or written by an older larvae_nb')
    assert not marker.exists()


def test_planted_inference_output_is_refused(copy, tmp_path):
    images, runs, run = copy
    marker = tmp_path / 'ran'
    (run / 'inference').mkdir()
    plant(run / 'inference' / 'val.npz', marker, 'pickle')
    with pytest.raises(LarvaeError, match='val.npz: not a larvae inference file'):
        load_inference(run, 'val')
    assert not marker.exists()


def test_planted_umap_cache_is_refused(tmp_path):
    from sklearn.decomposition import PCA
    from larvae_nb.features import umap_embedding
    X = np.random.default_rng(0).normal(size=(20, 3))
    keys = pd.DataFrame({'run': 1, 'subrun': 0, 'event': np.arange(20), 'track': 0})
    emb = umap_embedding(X, keys, tmp_path / 'umap.npz', PCA(2))
    np.testing.assert_array_equal(umap_embedding(X, keys, tmp_path / 'umap.npz', PCA(2)), emb)  # the cache round trip
    marker = tmp_path / 'ran'
    plant(tmp_path / 'umap.npz', marker, 'pickle')
    with pytest.raises(LarvaeError, match='umap.npz: not a larvae UMAP cache'):
        umap_embedding(X, keys, tmp_path / 'umap.npz', PCA(2))
    assert not marker.exists()


def test_weights_of_another_architecture_are_refused(copy):
    images, runs, run = copy
    other = VAE(load_config(overrides=['model.channels=[4,8]', 'model.latent=4', 'model.kernel=3']).model)
    torch.save(other.state_dict(), run / 'model.pt')
    one_line_error(larvae('infer', '--run', run), f"{run / 'model.pt'}: weights do not fit the run's model config",
                   'retrain or use the matching config')
    one_line_error(larvae('infer', '--run', run, '--batch-size', '0'), '--batch-size 0')


def test_diverged_training_is_an_error_without_a_model(trained, tmp_path):
    images = trained[0]
    r = larvae('train', '--images', images, '--out', tmp_path / 'runs', '--lr', '1e6', *CLI_FLAGS)
    one_line_error(r, 'epoch 1: the training loss is not finite', 'optimizer.lr (now 1e+06)', 'train.beta')
    assert not list((tmp_path / 'runs').glob('*/model.pt'))
