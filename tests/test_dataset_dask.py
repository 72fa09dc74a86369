"""`larvae dataset --cluster local`: stage 1 as Dask tasks on a LocalCluster writes the tracks the process pool writes;
a cluster that cannot be made is one line before anything is written. (SSH and SLURM: tests/test_services.py.)"""
import subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import one_line_error
from larvae_nb.config import load_config
from larvae_nb.dataset import load_tracks

LARVAE = str(Path(sys.executable).with_name('larvae'))


def larvae(*args):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from larvae_nb.detsim import simulate
    d = tmp_path_factory.mktemp('dask')/'data'
    simulate(d, load_config(overrides=['sim.n_protons=6', 'sim.n_kaons=6', 'sim.seed=11']).sim, progress=False)
    (d.parent/'small.yaml').write_text('dataset: {chunk_events: 2}\n')
    return d


def test_local_cluster_equals_pool(data, tmp_path):
    cfg = data.parent/'small.yaml'
    r = larvae('dataset', '--data', data, '--out', tmp_path/'pool', '--config', cfg, '--workers', 2)
    assert r.returncode == 0, r.stderr
    r = larvae('dataset', '--data', data, '--out', tmp_path/'dask', '--config', cfg, '--workers', 2, '--cluster', 'local')
    assert r.returncode == 0, r.stderr
    a, b = load_tracks(tmp_path/'pool'), load_tracks(tmp_path/'dask')
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path/'pool'/'cutflow.csv').read_text() == (tmp_path/'dask'/'cutflow.csv').read_text()
    r = larvae('dataset', '--data', data, '--out', tmp_path/'dask', '--config', cfg, '--cluster', 'local')
    assert r.returncode == 0 and 'unchanged; skipping' in r.stdout, (r.stdout, r.stderr)  # resumable: same inputs, same output


@pytest.mark.parametrize('args,says', [
    (['--cluster', 'slurm'], '--cluster slurm needs --cluster-config FILE (see sweeps/clusters/slurm.yaml)'),
    (['--cluster', 'ssh', '--cluster-config', 'nope.yaml'], 'nope.yaml: cluster file not found'),
])
def test_cluster_that_cannot_be_made_is_one_line(data, tmp_path, args, says):
    r = larvae('dataset', '--data', data, '--out', tmp_path/'o', *args)
    one_line_error(r, says)
    assert not (tmp_path/'o').exists()


def test_manifest_globs(data, tmp_path):
    "A `files:` glob names the files it matches, sorted; one that matches none is one line naming the pattern."
    from larvae_nb.dataset import read_manifest
    m = (data/'larvae-data.yaml').read_text()
    (data/'larvae-data.yaml').write_text(m.replace('- protons.root', "- 'p*ons.root'"))
    try:
        assert read_manifest(data).samples['proton'].files == [(data/'protons.root').resolve()]
        (data/'larvae-data.yaml').write_text(m.replace('- protons.root', "- 'run*/p*.root'"))
        r = larvae('dataset', '--data', data, '--out', tmp_path/'o')
        one_line_error(r, "sample 'proton' file pattern 'run*/p*.root' matches no file")
    finally: (data/'larvae-data.yaml').write_text(m)
