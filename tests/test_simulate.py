"""`larvae simulate` and `detsim.simulate` end to end on tiny configs, and their bad-input errors."""
import subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from larvae_nb.config import LarvaeError, SimConfig
from larvae_nb.keys import EVENT_KEY
from larvae_nb.detsim import simulate, simulate_cmd
from larvae_nb import root_io

LARVAE = str(Path(sys.executable).with_name('larvae'))
TINY = dict(n_protons=4, n_kaons=3, ticks=256, events_per_chunk=3)


def test_simulate_writes_a_complete_data_directory(tmp_path):
    out = simulate(tmp_path/'data', SimConfig(**TINY), progress=False)
    man = yaml.safe_load((out/'larvae-data.yaml').read_text())
    assert man['samples'] == {'proton': {'files': ['protons.root'], 'tree': 'ana/raw'},
                              'kaon': {'files': ['kaons.root'], 'tree': 'ana/raw'}}
    for rel in ('beamline.csv', 'reco_tracks.csv', 'truth.parquet', 'bethe_bloch/proton.txt', 'bethe_bloch/kaon.txt'):
        assert (out/rel).is_file(), rel
    assert root_io.find_raw_tree(out/'protons.root').layout == 'channel_mapped'
    assert root_io.find_raw_tree(out/'kaons.root').layout == 'flat'
    n = sum(len(c) + c.n_empty for c in root_io.iterate_planes(out/'kaons.root'))
    assert n == 3
    truth = pd.read_parquet(out/'truth.parquet')
    assert len(truth) == 7 and not truth.duplicated(list(EVENT_KEY)).any()
    assert set(truth['sample']) == {'proton', 'kaon'}
    bl = pd.read_csv(out/'beamline.csv')
    assert list(bl.columns) == list(EVENT_KEY) + ['p', 'm', 'beamline_mass', 'beamline_momentum_mevc', 'tof_ns'] and set(bl['p']) <= {0, 1}


def test_same_seed_same_data_and_chunking_does_not_matter(tmp_path):
    a = simulate(tmp_path/'a', SimConfig(**TINY), progress=False)
    b = simulate(tmp_path/'b', SimConfig(**(TINY | {'events_per_chunk': 1})), progress=False)
    for f in ('protons.root', 'kaons.root'):
        ca = next(root_io.iterate_planes(a/f)); cb = next(root_io.iterate_planes(b/f))
        np.testing.assert_array_equal(ca.collection, cb.collection)
        np.testing.assert_array_equal(ca.induction, cb.induction)
    pd.testing.assert_frame_equal(pd.read_csv(a/'reco_tracks.csv'), pd.read_csv(b/'reco_tracks.csv'))


def test_bad_inputs(tmp_path):
    (tmp_path/'file').write_text('x')
    with pytest.raises(LarvaeError, match='is a file'):
        simulate(tmp_path/'file', SimConfig(**TINY), progress=False)
    (tmp_path/'full').mkdir(); (tmp_path/'full'/'mine.txt').write_text('keep me')
    with pytest.raises(LarvaeError, match='holds files larvae did not write'):
        simulate(tmp_path/'full', SimConfig(**TINY), progress=False)
    assert (tmp_path/'full'/'mine.txt').read_text() == 'keep me'
    with pytest.raises(LarvaeError, match='nothing to simulate'):
        simulate(tmp_path/'x', SimConfig(n_protons=0, n_kaons=0), progress=False)
    with pytest.raises(LarvaeError, match='ticks'):
        simulate_cmd(str(tmp_path/'y'), ticks=10)


def test_command_line(tmp_path):
    r = subprocess.run([LARVAE, 'simulate', '--out', str(tmp_path/'d'), '--n-protons', '2', '--n-kaons', '1',
                        '--ticks', '256', '--seed', '3'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'d'/'larvae-data.yaml').is_file()
    (tmp_path/'f').write_text('x')
    r = subprocess.run([LARVAE, 'simulate', '--out', str(tmp_path/'f')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'is a file' in r.stderr and 'Traceback' not in r.stderr
