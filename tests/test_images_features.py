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
    "The seed's own values on its 12 x 6 test crop, every feature, to the six figures quoted."
    from larvae_nb.seed_features import SEED_FEATURES, SEED_KNOWN_ANSWERS, seed_features, seed_test_vector
    I, c = seed_test_vector()
    assert set(SEED_KNOWN_ANSWERS) == set(SEED_FEATURES)
    f = seed_features(I, c)
    bad = {k: (f[k], v) for k, v in SEED_KNOWN_ANSWERS.items() if not abs(f[k] - v) <= 5e-6*max(1, abs(v))}
    assert not bad, bad
    c[11] = 200  # maximum on the stopping wire: no prominence, width 0
    assert seed_features(I, c)['bragg_peak_width'] == 0.0


def test_seed_nan_rules_counted():
    "The seed's NaN/inf rules (its src/features/) give NaN where it does, and each one is counted."
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


# The seed's images (the seed's `src/images.py`), against a direct implementation written here from the spec:
# last 50 wires, 51 x 1502 canvas, top aligned, x0 = max(0, min(751 - v, 1502 - w)), then plain bilinear
# sampling with half-pixel centres, every weight spelled out.
SEED = dict(n_wires=50, canvas_wires=51, canvas_ticks=1502, wire_align='top', antialias=False)


def seed_image(crop, size=48):
    kept = np.asarray(crop, np.float64)[-50:]
    h, w = kept.shape
    v = int(np.argmax(kept[0]))
    x0 = max(0, min(751 - v, 1502 - w))
    canvas = np.zeros((51, 1502))
    canvas[:h, x0:x0 + w] = kept
    out = np.zeros((size, size))
    for i in range(size):
        y = max((i + 0.5)*51/size - 0.5, 0.)
        r0 = int(y); r1 = min(r0 + 1, 50); wy = y - r0
        for j in range(size):
            x = max((j + 0.5)*1502/size - 0.5, 0.)
            c0 = int(x); c1 = min(c0 + 1, 1501); wx = x - c0
            out[i, j] = ((1 - wy)*(1 - wx)*canvas[r0, c0] + (1 - wy)*wx*canvas[r0, c1]
                         + wy*(1 - wx)*canvas[r1, c0] + wy*wx*canvas[r1, c1])
    return out


def one_track(col, ind=None):
    ind = col if ind is None else ind
    return pd.DataFrame([dict(run=1, subrun=0, event=1, track=0, sample='kaon', col_image=list(col), ind_image=list(ind))])


def test_seed_sampling_by_hand():
    from larvae_nb.config import ImageConfig
    from larvae_nb.images import make_images
    cfg = ImageConfig(device='cpu', **SEED)
    crop = np.zeros((2, 40), np.float32); crop[0, 5] = 200; crop[0, 20] = 100  # peak tick 5 -> column 751; tick 20 -> 766
    x = make_images(one_track(crop), cfg).x[0, 0].numpy()
    want = np.zeros((48, 48)); want[0, 24] = 100*31/32*41/48  # output (0, 24) reads rows 0/1 at 31/32, 1/32 and columns 766/767 at 41/48, 7/48
    np.testing.assert_allclose(x, want, atol=5e-3)  # torch's float32 source coordinate is off by ~2e-5
    x = make_images(one_track(np.full((60, 40), 100, np.float32)), cfg).x[0, 0].numpy()
    assert set(np.nonzero(x)[1]) == {24}
    np.testing.assert_allclose(x[:47, 24], 100, rtol=1e-6)
    np.testing.assert_allclose(x[47, 24], 3.125, rtol=1e-5)  # row 47 blends canvas row 49 (1/32) with the empty row 50


def test_seed_images_match_direct_formula():
    import pyarrow as pa
    from larvae_nb.config import ImageConfig
    from larvae_nb.images import make_images
    rng, rows, crops = np.random.default_rng(3), [], []
    for i, (h, w) in enumerate([(11, 40), (50, 300), (51, 30), (120, 1499), (30, 1400), (75, 900), (15, 5), (178, 760)]):
        col = np.where(rng.random((h, w)) < 0.3, rng.integers(16, 900, (h, w)), 0).astype(np.float32)
        col[:, 0] = 20  # every wire holds charge, like a cluster; the first wire of a few crops peaks at tick 0 (clamping)
        if i % 2: col[-min(h, 50), rng.integers(0, w)] = 2000
        ind = np.roll(col, 1, axis=1)*0.4
        crops.append((col, ind))
        rows.append(dict(run=1, subrun=0, event=i, track=0, sample='proton', col_image=list(col), ind_image=list(ind)))
    df = pd.DataFrame(rows)
    for tracks in (df, pa.Table.from_pandas(df)):
        x = make_images(tracks, ImageConfig(device='cpu', batch_size=3, **SEED)).x.numpy()
        for k, (col, ind) in enumerate(crops):
            for c, crop in enumerate((col, ind)):
                want = seed_image(crop)
                # torch places the sample points in float32 (~6e-5 of a pixel at column 766): weights good to 1e-4
                np.testing.assert_allclose(x[k, c], want, atol=1e-4*crop.max(), err_msg=f"track {k}, plane {c}")
                if want.any(): assert np.corrcoef(x[k, c].ravel(), want.ravel())[0, 1] > 0.999999
                else: assert k == 6 and not x[k, c].any()  # 5 ticks at columns 751-755: between the sample points, the image is empty


def test_larvae_alignment_and_edge_clipping():
    from larvae_nb.images import crop_to_canvas
    crop = np.zeros((20, 400), np.float32); crop[0, 390] = 5; crop[:, 10] = 1; crop[-1, 300] = 9
    c = crop_to_canvas(crop, 50, 256)  # larvae_nb: 50 x 256, bottom aligned
    assert c.shape == (50, 256) and c[:30].sum() == 0 and c[-1].max() == 9  # stopping wire on the last row
    assert c[30].argmax() == 390 - 144  # first kept wire on row 30; its peak cannot reach column 128: clamped, ticks 144..399 fill the canvas
    assert c[:, :].sum() == 5 + 9  # ticks 0..143 (the column of ones) fell off the left edge
    s = crop_to_canvas(crop, 50, 1502, 51, 'top')  # the seed: nothing is cut, first wire on row 0
    assert s[0].argmax() == 751 and s[19].max() == 9 and s[20:].sum() == 0 and s.sum() == crop.sum()


def test_seed_settings_through_the_command(dataset, tmp_path):
    r = run('images', '--dataset', str(dataset), '--out', str(tmp_path), *(f'images.{k}={str(v).lower()}' for k, v in SEED.items()))
    assert r.returncode == 0, r.stderr
    from larvae_nb.images import ImageSet
    ims = ImageSet.load(tmp_path/'images.pt')
    assert ims.meta['images']['canvas_ticks'] == 1502 and ims.meta['images']['antialias'] is False
    tracks = pd.read_parquet(dataset/'tracks.parquet')
    for k in (0, 5):
        crop = np.stack(tracks['col_image'][k])
        np.testing.assert_allclose(ims.x[k, 0].numpy(), seed_image(crop), atol=1e-4*crop.max())
    one_line_error(run('images', '--dataset', str(dataset), '--out', str(tmp_path/'o'), 'images.canvas_wires=49'),
                   'images.canvas_wires=49 is below n_wires=50')


# Intensity transforms: the seed's six under the seed's names (the seed's `src/transforms.py`), larvae_nb's under `_larvae` names.

SEED_TWELVE = ['none', 'log1p', 'sqrt', 'cbrt', 'minmax', 'log1p_minmax', 'clamp99_minmax', 'tanh100', 'tanh500',
               'mpv_linear', 'mpv_tanh', 'hill_mpv']  # the seed's `apply_transform`, in its order


def test_transform_names_seed_first_variants_renamed():
    import yaml
    from pathlib import Path
    from larvae_nb.config import load_config
    from larvae_nb.images import TRANSFORMS
    assert list(TRANSFORMS[:12]) == SEED_TWELVE
    assert sorted(TRANSFORMS[12:]) == sorted(f'{n}_larvae' for n in ['minmax', 'log1p_minmax', 'clamp99_minmax', 'mpv_linear', 'mpv_tanh', 'hill_mpv'])
    grid = yaml.safe_load((Path(__file__).parents[1]/'sweeps'/'transforms.yaml').read_text())
    assert grid['product']['images.transform'] == list(TRANSFORMS)  # the sweep names every transform, once
    assert {load_config(profile=p).images.transform for p in ('seed', 'larvae')} == {'log1p'}


def test_seed_transforms_known_answers():
    "Two 1x2 images (collection [0, 483], [966, 161]; induction [247, 0], [494, 741]), computed by hand from the seed's formulas."
    import torch
    from larvae_nb.images import apply_transform, fit_transform
    x = torch.tensor([[[[0., 483.]], [[247., 0.]]], [[[966., 161.]], [[494., 741.]]]])
    want = {  # flattened as (image, plane, pixel)
        'minmax': [0, 483/966, 247/966, 0, 1, 161/966, 494/966, 741/966],  # one maximum, 966, over both planes
        'clamp99_minmax': [0, 483/950.25, 247/950.25, 0, 1, 161/950.25, 494/950.25, 741/950.25],  # q = 741 + .93*(966 - 741)
        'mpv_linear': [0, 1, 1, 0, 2, 1/3, 2, 3],  # collection / 483, induction / 247
        'hill_mpv': [0, 1/2, 1/2, 0, 2/3, 1/4, 2/3, 3/4],
        'mpv_tanh': list(np.tanh([0, 1, 1, 0, 2, 1/3, 2, 3])),
        'log1p_minmax': list(np.log1p([0, 483, 247, 0, 966, 161, 494, 741])/np.log(967))}
    for name, w in want.items():
        stats = fit_transform(x, name)
        assert stats['version'] == 2
        got = apply_transform(x, name, stats).flatten().double().numpy()
        np.testing.assert_allclose(got, w, rtol=2e-6, atol=1e-7, err_msg=name)
    assert fit_transform(x, 'minmax')['max'] == 966. and abs(fit_transform(x, 'clamp99_minmax')['q99'] - 950.25) < 1e-3


def test_seed_quantile_beyond_torch_limit():
    "The seed's clamp99_minmax fails above 2**24 elements; the same quantile here has no limit and equals torch's below it."
    import torch
    from larvae_nb.images import seed_quantile
    v = torch.rand(10_001, generator=torch.Generator().manual_seed(3))
    assert seed_quantile(v, .99) == float(torch.quantile(v, .99))
    big = torch.zeros(2**24 + 100)
    big[-200:] = torch.arange(1., 201.)  # 200 non-zero values at the top: rank .99 (n - 1) lands among the zeros
    with pytest.raises(RuntimeError, match='too large'): torch.quantile(big, .99)
    assert seed_quantile(big, .99) == 0. and seed_quantile(big, 1.) == 200.


def test_run_from_before_the_rename_is_refused(tmp_path):
    "A run whose transform.pt predates the rename (mpv_tanh meant larvae_nb's variant, stats without a version) is refused in one line."
    import torch
    from larvae_nb.config import load_config
    from larvae_nb.images import ImageSet
    from larvae_nb.train import train
    g = torch.Generator().manual_seed(0)
    keys = pd.DataFrame({'run': np.r_[np.full(24, 8000), np.full(8, 8001)], 'subrun': 0,
                         'event': np.r_[np.arange(24), np.arange(8)], 'track': 0, 'sample': ['proton']*24 + ['kaon']*8})
    ims = tmp_path/'images'/'images.pt'; ims.parent.mkdir()
    ImageSet(torch.rand(32, 2, 48, 48, generator=g)*300, keys).save(ims)
    tiny = ['model.channels=[4,8]', 'model.latent=2', 'model.kernel=3', 'train.epochs=1', 'train.batch_size=8', 'train.device=cpu']
    run_dir = tmp_path/'run'
    train(ims, load_config(overrides=tiny + ['images.transform=mpv_tanh']), run_dir, progress=False)
    assert run('infer', '--run', str(run_dir), '--no-recon').returncode == 0  # the seed's mpv_tanh: constants, no statistics
    torch.save({'transform': 'mpv_tanh', 'stats': {'mpv': [120., 60.]}}, run_dir/'transform.pt')  # as larvae_nb wrote it before
    one_line_error(run('infer', '--run', str(run_dir), '--no-recon'), "'mpv_tanh'", "now 'mpv_tanh_larvae'", 'retrain with images.transform=mpv_tanh_larvae')


# Where the transform statistics come from: images.transform_stats (the seed's per-tensor statistics; 09_images).

def test_transform_stats_unknown_value_is_refused_in_one_line(dataset, tmp_path):
    one_line_error(run('images', '--dataset', str(dataset), '--out', str(tmp_path), 'images.transform_stats=per_image'),
                   "images.transform_stats='per_image' is not valid", "'training', 'per_tensor'")


def test_transform_stats_per_tensor_known_answer(tmp_path):
    "minmax with kaons whose brightest pixel is twice the training protons': per_tensor divides them by exactly twice as much; the default by the training maximum."
    import json
    import torch
    from larvae_nb.config import load_config
    from larvae_nb.images import ImageSet, apply_transform
    from larvae_nb.train import train
    keys = pd.DataFrame({'run': np.r_[np.full(24, 8000), np.full(8, 8001)], 'subrun': 0,
                         'event': np.r_[np.arange(24), np.arange(8)], 'track': 0, 'sample': ['proton']*24 + ['kaon']*8})
    x = torch.rand(32, 2, 48, 48, generator=torch.Generator().manual_seed(0))*100
    x[:24, 0, 0, 0] = 200.  # every proton holds the protons' maximum: the training split's is 200 whatever the split
    x[24, 1, 0, 0] = 400.  # the kaons' maximum: twice that
    ims = tmp_path/'images'/'images.pt'; ims.parent.mkdir()
    ImageSet(x, keys).save(ims)
    tiny = ['model.channels=[4,8]', 'model.latent=2', 'model.kernel=3', 'train.epochs=1', 'train.batch_size=8', 'train.device=cpu',
            'images.transform=minmax']
    sets = {}
    for mode in ('training', 'per_tensor'):
        train(ims, load_config(overrides=tiny + [f'images.transform_stats={mode}']), tmp_path/mode, progress=False)
        r = run('infer', '--run', str(tmp_path/mode), '--no-recon')
        assert r.returncode == 0, r.stderr
        sets[mode] = json.loads((tmp_path/mode/'inference'/'summary.json').read_text())['sets']
    assert torch.load(tmp_path/'training'/'transform.pt')['stats'] == {'version': 2, 'max': 200.}  # the default: unchanged
    for s in ('train', 'val', 'kaon'):
        assert sets['training'][s]['transform'] == {'name': 'minmax', 'statistics': 'training', 'fitted_on': 'the training images (transform.pt)',
                                                   'values': {'version': 2, 'max': 200.}}
    assert sets['per_tensor']['kaon']['transform'] == {'name': 'minmax', 'statistics': 'per_tensor', 'fitted_on': 'all 8 kaon images',
                                                      'values': {'version': 2, 'max': 400.}}
    assert [sets['per_tensor'][s]['transform']['fitted_on'] for s in ('train', 'val')] == ['all 24 proton images']*2
    a, b = (apply_transform(x[24:], 'minmax', sets[m]['kaon']['transform']['values']) for m in ('training', 'per_tensor'))
    assert torch.equal(a, 2*b)  # per_tensor scales the kaons by exactly the factor between the maxima
