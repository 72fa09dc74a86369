"""`larvae simulate` and `detsim.simulate` end to end on tiny configs, and their bad-input errors."""
import subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from larvae_nb.config import SimConfig
from larvae_nb.base import LarvaeError
from larvae_nb.keys import EVENT_KEY
from larvae_nb.detsim import simulate, simulate_cmd
from larvae_nb import root_io

LARVAE = str(Path(sys.executable).with_name('larvae'))
TINY = dict(n_protons=4, n_kaons=3, n_mips=2, ticks=256, events_per_chunk=3)


def test_simulate_writes_a_complete_data_directory(tmp_path):
    out = simulate(tmp_path/'data', SimConfig(**TINY), progress=False)
    man = yaml.safe_load((out/'larvae-data.yaml').read_text())
    assert man['samples'] == {'proton': {'files': ['protons.root'], 'tree': 'ana/raw'},
                              'kaon': {'files': ['kaons.root'], 'tree': 'ana/raw'},
                              'mip': {'files': ['RAW_muons.root'], 'tree': 'anatree/raw'}}
    assert man['truth_tracks'] == 'truth_tracks.parquet'
    for rel in ('beamline.csv', 'reco_tracks.csv', 'truth.parquet', 'truth_tracks.parquet', 'bethe_bloch/proton.txt', 'bethe_bloch/kaon.txt'):
        assert (out/rel).is_file(), rel
    assert root_io.find_raw_tree(out/'protons.root').layout == 'channel_mapped'
    assert root_io.find_raw_tree(out/'kaons.root').layout == 'flat'
    n = sum(len(c) + c.n_empty for c in root_io.iterate_planes(out/'kaons.root'))
    assert n == 3
    truth = pd.read_parquet(out/'truth.parquet')
    assert len(truth) == 9 and not truth.duplicated(list(EVENT_KEY)).any()
    assert set(truth['sample']) == {'proton', 'kaon', 'mip'}
    bl = pd.read_csv(out/'beamline.csv')
    assert list(bl.columns) == list(EVENT_KEY) + ['p', 'm', 'beamline_mass', 'beamline_momentum_mevc', 'tof_ns'] and set(bl['p']) <= {0, 1}


def test_same_seed_same_data_and_chunking_does_not_matter(tmp_path):
    a = simulate(tmp_path/'a', SimConfig(**TINY), progress=False)
    b = simulate(tmp_path/'b', SimConfig(**(TINY | {'events_per_chunk': 1})), progress=False)
    for f in ('protons.root', 'kaons.root', 'RAW_muons.root'):
        ca = next(root_io.iterate_planes(a/f)); cb = next(root_io.iterate_planes(b/f))
        np.testing.assert_array_equal(ca.collection, cb.collection)
        np.testing.assert_array_equal(ca.induction, cb.induction)
    pd.testing.assert_frame_equal(pd.read_csv(a/'reco_tracks.csv'), pd.read_csv(b/'reco_tracks.csv'))
    pd.testing.assert_frame_equal(pd.read_parquet(a/'truth_tracks.parquet'), pd.read_parquet(b/'truth_tracks.parquet'))


def test_bad_inputs(tmp_path):
    (tmp_path/'file').write_text('x')
    with pytest.raises(LarvaeError, match='is a file'):
        simulate(tmp_path/'file', SimConfig(**TINY), progress=False)
    (tmp_path/'full').mkdir(); (tmp_path/'full'/'mine.txt').write_text('keep me')
    with pytest.raises(LarvaeError, match='holds files larvae did not write'):
        simulate(tmp_path/'full', SimConfig(**TINY), progress=False)
    assert (tmp_path/'full'/'mine.txt').read_text() == 'keep me'
    with pytest.raises(LarvaeError, match='nothing to simulate'):
        simulate(tmp_path/'x', SimConfig(n_protons=0, n_kaons=0, n_mips=0), progress=False)
    with pytest.raises(LarvaeError, match='n_mips must be >= 0'):
        SimConfig(n_mips=-1)
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


def test_mip_sample_adding_it_leaves_the_other_samples_unchanged(tmp_path):
    a = simulate(tmp_path/'a', SimConfig(**(TINY | {'n_mips': 0})), progress=False)
    b = simulate(tmp_path/'b', SimConfig(**TINY), progress=False)
    for f in ('protons.root', 'kaons.root'):
        np.testing.assert_array_equal(next(root_io.iterate_planes(a/f)).collection, next(root_io.iterate_planes(b/f)).collection)
    assert not (a/'RAW_muons.root').exists() and 'mip' not in yaml.safe_load((a/'larvae-data.yaml').read_text())['samples']


def test_mip_sample_is_beam_pions_and_muons_in_its_mass_window_with_mip_dedx():
    """Known answers: every MIP event is picky, measures m < 350 MeV/c2 (some negative) and is a true pi+ or mu+;
    its reco dE/dx away from the ends peaks at the Landau MPV of a MIP over the wire pitch (~1.7 MeV/cm), far below protons'."""
    from larvae_nb import physics as phys
    from larvae_nb.detsim import mode_fwhm, simulate_event
    cfg = SimConfig()
    evs = [simulate_event(cfg, 'mip', i) for i in range(40)]
    mass = np.array([e.beamline['beamline_mass'] for e in evs])
    assert (mass < 350).all() and (mass < 0).any() and all(e.beamline['p'] == 1 for e in evs)
    assert {e.truth['species'] for e in evs} <= {'pion', 'muon'} and {e.run for e in evs} == {cfg.run + 2}
    dedx = np.concatenate([e.reco.dedx[5:-5] for e in evs if e.reco is not None and len(e.reco.dedx) > 30])
    mpv = mode_fwhm(dedx, 120)[0]
    ref = float(phys.mpv_dedx('pion', 600., phys.EFFECTIVE_PITCH))
    assert abs(mpv - ref) < 0.08 * ref, (mpv, ref)
    prot = np.concatenate([e.reco.dedx[5:-5] for e in (simulate_event(cfg, 'proton', i) for i in range(10))
                           if e.reco is not None and len(e.reco.dedx) > 15])
    assert np.median(prot) > 1.5 * mpv


def test_truth_tracks_name_the_primary_of_single_particle_events_and_cover_the_dataset(tmp_path):
    from larvae_nb.config import load_config
    from larvae_nb.dataset import build_dataset, load_tracks, read_manifest
    from larvae_nb.keys import TRACK_KEY
    from larvae_nb.simtruth import read_truth_tracks
    out = simulate(tmp_path/'data', SimConfig(n_protons=25, n_kaons=25, n_mips=15, events_per_chunk=10), progress=False)
    m = read_manifest(out)
    tt, ev = read_truth_tracks(m.truth_tracks), pd.read_parquet(m.truth)
    cfg = load_config(); cfg.dataset.workers = 1
    trk = load_tracks(build_dataset(out, tmp_path/'ds', cfg, progress=False))
    assert set(trk['sample']) == {'proton', 'kaon', 'mip'}  # stage 1 reads the MIP sample like the others
    j = trk[list(TRACK_KEY) + ['sample']].merge(tt, on=list(TRACK_KEY) + ['sample'], how='left', validate='one_to_one')
    assert j['species'].notna().all()  # every stage-1 track has its truth
    one = tt.merge(ev[list(EVENT_KEY) + ['species', 'n_tracks']], on=list(EVENT_KEY), suffixes=('', '_event'))
    one = one[(one.n_tracks == 1) & (one.groupby(list(EVENT_KEY)).track.transform('size') == 1)]
    assert len(one) >= 10 and one.is_primary.all() and (one.species == one.species_event).all()
    assert set(tt.loc[tt['sample'] == 'mip', 'species']) & {'pion', 'muon'}
    with pytest.raises(LarvaeError, match='other stage-1 settings'):
        read_truth_tracks(m.truth_tracks, load_config(overrides=['cuts.height_lower=20']))
