"""`larvae analyse` as a user meets it: bad input is one line; numbers land in metrics.json by key."""
import json, subprocess, sys
from pathlib import Path

import pytest

from larvae_nb.config import AnalysisConfig
from larvae_nb.base import LarvaeError
from larvae_nb.keys import TRACK_KEY
from larvae_nb.analysis import SPLIT_SAMPLE, analyse
from larvae_nb.latents import latent_columns, synthetic_latents

LARVAE = str(Path(sys.executable).with_name('larvae'))


def run(*args):
    return subprocess.run([LARVAE, *args], capture_output=True, text=True, timeout=120)


def test_unknown_analysis_is_one_line_with_a_suggestion(tmp_path):
    r = run('analyse', '--run', str(tmp_path), '--analyses', 'correlation,seperation')
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown analysis 'seperation'; did you mean 'separation'?" in lines[0]


def test_missing_run_directory(tmp_path):
    r = run('analyse', '--run', str(tmp_path/'nope'), '--analyses', 'separation')
    assert r.returncode == 2
    assert 'run directory not found' in r.stderr


def _fake_run(tmp_path, seed=0):
    L, F = synthetic_latents(80, d=2, seed=seed)
    def loader(run_dir, split):
        part = L[L['sample'] == SPLIT_SAMPLE[split]]
        return {'keys': part[list(TRACK_KEY) + ['sample']], 'mu': part[latent_columns(part)].values}
    return L, F, loader


def test_metrics_merge_and_do_not_depend_on_row_order(tmp_path):
    L, F, loader = _fake_run(tmp_path)
    F.to_csv(tmp_path/'features.csv', index=False)
    cfg = AnalysisConfig(gmm_inits=2)
    analyse(tmp_path, tmp_path/'features.csv', 'separation', cfg, loader=loader)
    analyse(tmp_path, tmp_path/'features.csv', 'feature_auc', cfg, loader=loader)
    first = json.loads((tmp_path/'metrics.json').read_text())
    assert {'separation', 'feature_auc', 'join'} <= set(first)  # a second call adds to the file
    assert (tmp_path/'figures'/'separation.png').is_file() and (tmp_path/'figures'/'separation.pdf').is_file()  # savefig writes both
    F.sample(frac=1, random_state=4).to_csv(tmp_path/'features.csv', index=False)  # same tracks, another order
    analyse(tmp_path, tmp_path/'features.csv', ['separation', 'feature_auc'], cfg, loader=loader)
    assert json.loads((tmp_path/'metrics.json').read_text()) == first


def test_missing_features_and_disjoint_keys(tmp_path):
    L, F, loader = _fake_run(tmp_path)
    with pytest.raises(LarvaeError, match='features.parquet: file not found'):
        analyse(tmp_path, None, 'separation', loader=loader)
    F.assign(event=F['event'] + 10_000).to_parquet(tmp_path/'features.parquet')
    with pytest.raises(LarvaeError, match='no row of latents'):
        analyse(tmp_path, None, 'separation', loader=loader)
    assert not (tmp_path/'metrics.json').exists()  # nothing half-written


def test_worker_processes_give_the_same_numbers(tmp_path):
    from larvae_nb.latents import feature_auc, logistic, nonlinear
    L, F = synthetic_latents(100, d=2, seed=2)
    Z, y, s = L[latent_columns(L)], (L['sample'] == 'kaon').values, L['sample'].values
    for fn, args, kw in ((logistic, (Z, y), {'models': ('mlp',)}), (nonlinear, (Z, F[['width']], s), {}),
                         (feature_auc, (Z, F[['peak_adc', 'width']], s), {})):
        one, two = (fn(*args, **kw, plot=False, n_jobs=n) for n in (1, 2))
        one.pop('arrays', None); two.pop('arrays', None)
        assert json.dumps(one, sort_keys=True, default=float) == json.dumps(two, sort_keys=True, default=float), fn.__name__


def test_jobs_must_be_positive(tmp_path):
    r = run('analyse', '--run', str(tmp_path), '--analyses', 'separation', '--workers', '0')
    assert r.returncode == 2 and 'give at least 1 worker process' in r.stderr
