"""07_chi2: the batch PID scorer against the per-track one, shuffling, table files and bad input."""
import warnings

import awkward as ak
import numpy as np
import pandas as pd
import pytest

from larvae_nb import physics
from larvae_nb.calorimetry import batch_calorimetry, toy_cluster_image
from larvae_nb.chi2 import SCORE_COLUMNS, UNDECIDED, score_track, score_tracks, toy_tracks
from larvae_nb.config import Chi2Config
from larvae_nb.base import ConfigError, LarvaeError


@pytest.fixture(scope='module')
def tables():
    return {sp: physics.dedx_table(sp, rr_max=60.) for sp in ('proton', 'kaon')}


@pytest.fixture(scope='module')
def tracks(tables):
    """Toy protons and kaons, some with hits beyond the 60 cm tables, plus an unscorable and an empty track."""
    rp, dp = toy_tracks(tables['proton'], 150, seed=1, range_cm=(2., 80.))
    rk, dk = toy_tracks(tables['kaon'], 150, seed=2, range_cm=(2., 80.), smearing='gauss')
    rr = ak.to_list(rp) + ak.to_list(rk) + [[500., 400.], []]
    dedx = ak.to_list(dp) + ak.to_list(dk) + [[2., 2.], []]
    return [np.asarray(x, float) for x in rr], [np.asarray(x, float) for x in dedx]


@pytest.mark.parametrize('mode', ['drop', 'clamp'])
def test_batch_equals_per_track(tables, tracks, mode):
    cfg = Chi2Config(out_of_range=mode)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        batch = score_tracks(*tracks, tables, cfg)
    one = pd.DataFrame([score_track(r, d, tables, cfg) for r, d in zip(*tracks)])[list(SCORE_COLUMNS)]
    pd.testing.assert_frame_equal(batch, one.astype(batch.dtypes.to_dict()), rtol=1e-10)
    assert batch.n_hits_out_of_range.sum() > 0
    if mode == 'clamp': assert (batch.n_hits.iloc[:-1] == [len(r) for r in tracks[0][:-1]]).all()
    assert batch.particle_hypothesis.iloc[-2:].tolist() == [UNDECIDED if mode == 'drop' else batch.particle_hypothesis.iloc[-2], UNDECIDED]


def test_shuffling_tracks_leaves_each_result_unchanged(tables, tracks):
    rr, dedx = tracks
    perm = np.random.default_rng(7).permutation(len(rr))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        base = score_tracks(ak.Array(rr), ak.Array(dedx), tables)
        shuf = score_tracks([rr[i] for i in perm], [dedx[i] for i in perm], tables)
    pd.testing.assert_frame_equal(shuf, base.iloc[perm].reset_index(drop=True), rtol=1e-12)


def test_table_files_and_a_track_on_each_curve(tables, tmp_path):
    paths = {}
    for sp, t in tables.items():
        paths[sp] = tmp_path / f'{sp}.txt'
        physics.write_dedx_table(t, paths[sp])
    rr = 0.05 * np.arange(800, 4, -9)  # on the tables' 0.05 cm grid, so snapping changes nothing
    on = {sp: np.interp(rr, t.rr, t.dedx) for sp, t in tables.items()}
    s = score_tracks([rr, rr], [on['proton'], on['kaon']], paths)
    assert s.particle_hypothesis.tolist() == [1, 0]
    assert s.chi2_proton[0] == pytest.approx(0., abs=1e-6) and s.chi2_kaon[1] == pytest.approx(0., abs=1e-6)


def test_calorimetry_feeds_the_scorer(tables):
    rr = (59 - np.arange(60) + 0.5) * 0.4619
    img = toy_cluster_image(np.interp(rr, tables['proton'].rr, tables['proton'].dedx), calib=0.05)
    r, d = batch_calorimetry([img, img], calib=0.05)
    s = score_tracks(r, d, tables)
    assert s.particle_hypothesis.tolist() == [1, 1] and (s.chi2_proton < 1e-3).all()


@pytest.mark.parametrize('rr, dedx, msg', [
    ([[1., 2.]], [[1.]], 'track 0: trkrr has 2 hits but trkdedx has 1'),
    ([[1.], [2.]], [[1.]], 'trkrr has 2 tracks but trkdedx has 1'),
    (['1;2'], ['3;4'], "parse ';'-joined strings first"),
    ([[1., np.inf]], [[1., 2.]], 'track 0: holds NaN or infinite'),
    ([[[1.]]], [[[1.]]], 'not a 1-D list of numbers'),
])
def test_malformed_tracks_raise_one_clear_error(tables, rr, dedx, msg):
    with pytest.raises(LarvaeError, match=msg.replace('(', r'\(')):
        score_tracks(rr, dedx, tables)


def test_malformed_tables_and_config_raise(tables, tmp_path):
    with pytest.raises(LarvaeError, match="no 'kaon' table"):
        score_tracks([[1.]], [[1.]], {'proton': tables['proton'], 'kaons': tables['kaon']})
    with pytest.raises(LarvaeError, match="no column 'dedx'"):
        score_tracks([[1.]], [[1.]], {'proton': tables['proton'], 'kaon': tables['kaon'].rename(columns={'dedx': 'de'})})
    with pytest.raises(LarvaeError, match='file not found'):
        score_tracks([[1.]], [[1.]], {'proton': tmp_path / 'missing.txt', 'kaon': tables['kaon']})
    with pytest.raises(ConfigError, match="valid choices: 'drop', 'clamp'"):
        Chi2Config(out_of_range='nan')


def test_seed_table_flip(tables, tracks):
    """The seed's mirrored table: batch equals per track, only the Pearson χ² and hypothesis change, χ² grows."""
    rr, dedx = tracks
    flip = Chi2Config(seed_table_flip=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a, b = score_tracks(rr, dedx, tables), score_tracks(rr, dedx, tables, flip)
        one = pd.DataFrame([score_track(r, d, tables, flip) for r, d in zip(rr, dedx)])
    pd.testing.assert_frame_equal(b, one[list(SCORE_COLUMNS)].astype(b.dtypes.to_dict()), rtol=1e-10)
    same = ['chi2ls_proton', 'chi2ls_kaon', 'pida', 'n_hits', 'n_hits_ls', 'n_hits_pida', 'n_hits_out_of_range']
    pd.testing.assert_frame_equal(a[same], b[same])
    ok = a.n_hits > 0
    assert np.median(b.chi2_proton[ok] / a.chi2_proton[ok]) > 5
    assert (a.particle_hypothesis != b.particle_hypothesis).any()
