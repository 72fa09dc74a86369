"""`larvae sweep` on a local Dask cluster: dry run, a failing point among finishing ones, --resume, --keep-going."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from larvae_nb.report import report_out

LARVAE = str(Path(sys.executable).with_name('larvae'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
# a device this machine does not have: the point is valid for the config schema and fails when it trains
ABSENT = 'cuda' if not torch.cuda.is_available() else 'mps'


def larvae(*args):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=900)


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    d = tmp_path_factory.mktemp('sweep')
    (d/'grid.yaml').write_text(f"""
name: t
base: [train.epochs=1, 'model.channels=[8,16,32]', 'analysis.analyses=[logistic,separation]', analysis.folds=3, analysis.gmm_inits=1]
zip:
  model.latent: [2, 3, 4, 2]
  train.device: [cpu, cpu, cpu, {ABSENT}]
product:
  model.kernel: [3, 4]
""")
    return d/'grid.yaml', report_out(log=lambda *a: None)


def test_dry_run_lists_points_and_refusals(grid, tmp_path):
    g, data = grid
    r = larvae('sweep', g, '--data', data, '--out', tmp_path/'o', '--dry-run')
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('to run') == 4 and r.stdout.count('refused') == 4, r.stdout  # kernel 4 does not halve 48 pixels: refused
    assert not (tmp_path/'o').exists()  # a dry run writes nothing


def test_sweep_failure_resume_keep_going(grid, tmp_path):
    g, data = grid
    out = tmp_path/'o'
    r = larvae('sweep', g, '--data', data, '--out', out, '--limit', '2')
    assert r.returncode == 0, r.stderr
    done = sorted((out/'points').glob('*/done.json'))
    assert len(done) == 2 and all((p.parent/'experiment.ipynb').is_file() for p in done)
    first = {p: p.stat().st_mtime_ns for p in done}

    r = larvae('sweep', g, '--data', data, '--out', out)  # an earlier sweep is there: refused without --resume
    assert r.returncode == 2 and '--resume' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

    r = larvae('sweep', g, '--data', data, '--out', out, '--resume')
    assert '2 already done, 2 to run' in r.stdout, r.stdout
    assert r.returncode == 2 and '1 of 4 points failed' in r.stderr, (r.stdout, r.stderr)
    assert 'FAILED p-' in r.stdout and ABSENT in r.stdout  # the failure is summarised with its reason
    assert {p: p.stat().st_mtime_ns for p in done} == first  # finished points were not run again
    s = pd.read_csv(out/'summary.csv')
    assert sorted(s.status) == ['done', 'done', 'done', 'failed']
    assert s.loc[s.status == 'done', 'probe_auc_logistic'].between(0, 1).all()
    bad = s.loc[s.status == 'failed', 'id'].item()
    assert (out/'points'/bad/'experiment.ipynb').is_file() and not (out/'points'/bad/'done.json').exists()

    r = larvae('sweep', g, '--data', data, '--out', out, '--resume', '--keep-going')
    assert '3 already done, 1 to run' in r.stdout and r.returncode == 0, (r.stdout, r.stderr)
