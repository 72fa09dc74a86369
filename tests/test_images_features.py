"""`larvae images` and `larvae features` end to end on a small synthetic tracks.parquet, and their bad-input errors."""
import subprocess

import numpy as np
import pandas as pd
import pytest

from helpers import LARVAE, one_line_error


def run(*args):
    return subprocess.run([LARVAE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    "A dataset directory with tracks.parquet of 12 synthetic tracks (run 3, events 0..11)."
    d = tmp_path_factory.mktemp('ds')
    rng, rows = np.random.default_rng(0), []
    for i in range(12):
        h, w = int(rng.integers(20, 90)), int(rng.integers(40, 400))
        img = np.zeros((h, w), np.float32)
        t = np.linspace(2, w - 3, h).astype(int)
        img[np.arange(h), t] = 60 + 400*np.arange(h)/h
        rows.append(dict(run=3, subrun=1, event=i, track=0, sample='proton' if i % 3 else 'kaon',
                         col_image=list(img), col_profile=img.max(axis=1), ind_image=list(0.4*img)))
    import pyarrow.parquet as pq
    from larvae_nb.dataset import tracks_to_arrow  # stamped with the tracks schema, as `larvae dataset` writes it
    pq.write_table(tracks_to_arrow(pd.DataFrame(rows).sample(frac=1, random_state=0).reset_index(drop=True)), d/'tracks.parquet')
    return d


def test_images_end_to_end(dataset, tmp_path):
    r = run('images', '--dataset', str(dataset), '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    from larvae_nb.images import ImageSet
    ims = ImageSet.load(tmp_path/'images.pt')
    assert tuple(ims.x.shape) == (12, 2, 48, 48)
    assert sorted(ims.keys['event']) == list(range(12))
    assert (ims.keys['sample'] == 'kaon').sum() == 4
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith('.larvae')] == ['images.pt']


def test_features_end_to_end(dataset, tmp_path):
    r = run('features', '--dataset', str(dataset), '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    f = pd.read_parquet(tmp_path/'features.parquet')
    assert len(f) == 12 and f.shape[1] == 5 + 25
    assert f['total_adc_larvae'].notna().all() and 'total_adc' not in f  # the default set: no variant under a seed name
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('.larvae')) == ['features.json', 'features.parquet']


def test_features_seed_set_cli(dataset, tmp_path):
    r = run('features', '--dataset', str(dataset), '--out', str(tmp_path), 'features.set=seed', 'features.categories=seed')
    assert r.returncode == 0, r.stderr
    from larvae_nb.seed_features import SEED_FEATURES
    f = pd.read_parquet(tmp_path/'features.parquet')
    assert list(f.columns[5:]) == ['height', *SEED_FEATURES]
    assert (f['height'] == [len(im) for im in pd.read_parquet(dataset/'tracks.parquet').set_index('event').loc[f['event'], 'col_image']]).all()
    info = __import__('json').loads((tmp_path/'features.json').read_text())
    assert info['set'] == 'seed' and info['categories']['profile_kurtosis'] == 'calorimetry'


@pytest.mark.parametrize('override, says', [('features.set=seeds', 'features.set'), ('features.last_wires=1', 'at least 2')])
def test_bad_feature_option_is_one_line(override, says, dataset, tmp_path):
    one_line_error(run('features', '--dataset', str(dataset), '--out', str(tmp_path/'o'), override), says)
    assert not (tmp_path/'o').exists()


def test_seed_known_answers():
    "SEED_SPEC B.3: the seed's own values on its 12 x 6 test crop, every feature, to the six figures quoted."
    from larvae_nb.seed_features import SEED_FEATURES, SEED_KNOWN_ANSWERS, seed_features, seed_test_vector
    I, c = seed_test_vector()
    assert set(SEED_KNOWN_ANSWERS) == set(SEED_FEATURES)
    f = seed_features(I, c)
    bad = {k: (f[k], v) for k, v in SEED_KNOWN_ANSWERS.items() if not abs(f[k] - v) <= 5e-6*max(1, abs(v))}
    assert not bad, bad
    c[11] = 200  # maximum on the stopping wire: no prominence, width 0
    assert seed_features(I, c)['bragg_peak_width'] == 0.0


def test_seed_nan_rules_counted():
    "The seed's NaN/inf rules (B.2) give NaN where it does, and each one is counted."
    from collections import Counter
    from larvae_nb.features import FEATURE_SETS, track_features
    from larvae_nb.config import FeatureConfig
    I = np.zeros((6, 4)); I[:, 1] = [1., 2., 2., 2., 2., 1.]  # 6 wires, flat top
    why = Counter()
    f = track_features(I, reasons=why, cfg=FeatureConfig(set='seed'))
    assert list(f) == list(FEATURE_SETS['seed'])
    for k in ('profile_kurtosis', 'monotonic_rise_fraction', 'end_vs_start_ratio'): assert np.isnan(f[k]), k
    assert {r.split(':')[0] for r in why} == {'profile_kurtosis', 'monotonic_rise_fraction', 'end_vs_start_ratio'}
    g = track_features(I, reasons=Counter(), cfg=FeatureConfig(set='larvae'))
    assert np.isfinite(g['profile_kurtosis_larvae']) and np.isfinite(g['end_start_ratio'])


@pytest.mark.parametrize('cmd', ['images', 'features'])
def test_missing_tracks_is_one_line(cmd, tmp_path):
    one_line_error(run(cmd, '--dataset', str(tmp_path), '--out', str(tmp_path/'o')), 'tracks.parquet', 'no tracks file')
    assert not (tmp_path/'o').exists()


@pytest.mark.parametrize('cmd, col', [('images', 'ind_image'), ('features', 'col_image')])
def test_missing_column_is_one_line(cmd, col, dataset, tmp_path):
    pd.read_parquet(dataset/'tracks.parquet').drop(columns=col).to_parquet(tmp_path/'tracks.parquet')
    one_line_error(run(cmd, '--dataset', str(tmp_path), '--out', str(tmp_path/'o')), f"lacks column(s) ['{col}']")


@pytest.mark.parametrize('cmd', ['images', 'features'])
def test_corrupt_tracks_is_one_line(cmd, tmp_path):
    (tmp_path/'tracks.parquet').write_bytes(b'not parquet')
    one_line_error(run(cmd, '--dataset', str(tmp_path), '--out', str(tmp_path/'o')), 'not a readable Parquet file')
