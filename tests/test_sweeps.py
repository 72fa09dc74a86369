"""`larvae sweep` on a local Dask cluster: dry run, refused grids and names, what a point needs from the pipeline
output, the output directory's claim and lock, Ctrl-C then --resume, a failing point among finishing ones, --keep-going."""
import os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
import torch

LARVAE = str(Path(sys.executable).with_name('larvae'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
# a device this machine does not have: the point is valid for the config schema and fails when it trains
ABSENT = 'cuda' if not torch.cuda.is_available() else 'mps'
BASE = "base: [train.epochs=1, 'model.channels=[8,16,32]', 'analysis.analyses=[logistic,separation]', analysis.folds=3, analysis.gmm_inits=1]"
AXES = f"""zip:
  model.latent: [2, 3, 4, 2]
  train.device: [cpu, cpu, cpu, {ABSENT}]
product:
  model.kernel: [3{{}}]
"""


def larvae(*args, cwd=None):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=900, cwd=cwd)


def one_line_error(r, *parts, ran=False):
    "The command failed with one error line on stderr that contains each of `parts` (after the progress bars when it `ran` points)."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert (ran or len(lines) == 1) and lines[-1].startswith('larvae sweep: error: ') and 'Traceback' not in r.stderr, r.stderr
    for p in parts: assert p in lines[-1], (p, r.stderr)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "The README recipe's data: `larvae pipeline --until features` (quick), with no trained-model analysis or reports."
    d = tmp_path_factory.mktemp('pipe')/'out'
    r = larvae('pipeline', '--quick', '--until', 'features', '--out', d)
    assert r.returncode == 0, r.stderr
    assert not (d/'.stages'/'analyse.json').exists()
    return d


@pytest.fixture(scope='module')
def grids(tmp_path_factory):
    "Two grids with the same base and point ids: `run.yaml` (4 valid points, one fails) and `refusing.yaml` (4 more, refused)."
    d = tmp_path_factory.mktemp('sweep')
    (d/'run.yaml').write_text(f"name: t\n{BASE}\n{AXES.format('')}")
    (d/'refusing.yaml').write_text(f"name: t\n{BASE}\n{AXES.format(', 4')}")  # kernel 4 does not halve 48 pixels: refused
    (d/'typo.yaml').write_text(f"name: typo\n{BASE}\nproduct:\n  model.latnt: [2, 4]\n")
    return d


def test_dry_run_lists_points_and_refusals(grids, tmp_path):
    r = larvae('sweep', grids/'refusing.yaml', '--data', tmp_path/'none', '--out', tmp_path/'o', '--dry-run')
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('to run') == 4 and r.stdout.count('refused') == 4, r.stdout
    assert not (tmp_path/'o').exists()  # a dry run writes nothing


def test_every_point_refused_is_an_error(grids, data, tmp_path):
    for dry in ([], ['--dry-run']):
        r = larvae('sweep', grids/'typo.yaml', '--data', data, '--out', tmp_path/'o', *dry)
        one_line_error(r, f"{grids/'typo.yaml'}: all 2 points are refused", "unknown key 'model.latnt'; did you mean 'latent'?", 'fix')
        assert 'summary' not in r.stdout and not (tmp_path/'o').exists(), r.stdout


def test_partly_refused_grid_needs_keep_going(grids, data, tmp_path):
    r = larvae('sweep', grids/'refusing.yaml', '--data', data, '--out', tmp_path/'o')
    one_line_error(r, f"{grids/'refusing.yaml'}: 4 of 8 points are refused", '--keep-going')
    assert r.stdout.count('REFUSED p-') == 4 and 'model.kernel=4' in r.stdout, r.stdout
    assert not (tmp_path/'o').exists()
    r = larvae('sweep', grids/'run.yaml', '--data', data, '--out', tmp_path/'o', '--start-index', '4')
    one_line_error(r, '--start-index 4 selects none of its 4 valid points')


@pytest.mark.parametrize('name', ['../escape', 'a/b', "''", '..'])
def test_grid_name_must_be_plain(grids, data, tmp_path, name):
    (tmp_path/'g.yaml').write_text(f"name: {name}\n{BASE}\n{AXES.format('')}")
    r = larvae('sweep', tmp_path/'g.yaml', '--data', data, cwd=tmp_path)
    one_line_error(r, f"{tmp_path/'g.yaml'}: grid name", 'is not a plain name')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['g.yaml']  # no sweeps/out/../escape or anything else


def test_data_must_hold_what_a_point_reads(grids, tmp_path):
    part = tmp_path/'part'
    (part/'images').mkdir(parents=True); (part/'pipeline.json').write_text('{"data": "data"}'); (part/'images'/'images.pt').touch()
    r = larvae('sweep', grids/'run.yaml', '--data', part, '--out', tmp_path/'o')
    one_line_error(r, f"{part}: missing dataset/tracks.parquet, features/features.parquet",
                   f"run `larvae pipeline --out {part} --until features`")
    r = larvae('sweep', grids/'run.yaml', '--data', tmp_path/'nothing', '--out', tmp_path/'o')
    one_line_error(r, 'not a pipeline output (no pipeline.json)')
    assert not (tmp_path/'o').exists()


def test_foreign_directory_refused(grids, data, tmp_path):
    out = tmp_path/'o'; out.mkdir(); (out/'notes.txt').write_text('mine')
    r = larvae('sweep', grids/'run.yaml', '--data', data, '--out', out)
    one_line_error(r, f"{out}: holds files larvae did not write")
    assert sorted(p.name for p in out.iterdir()) == ['notes.txt']


def _wait_for(cond, proc, timeout=120):
    t0 = time.monotonic()
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, 'timed out'
        time.sleep(0.2)


def test_lock_interrupt_resume_failure_keep_going(grids, data, tmp_path):
    out, run = tmp_path/'o', grids/'run.yaml'
    # a sweep holds its directory: a second one is refused at once; SIGTERM stops the first with the resume hint
    p = subprocess.Popen([LARVAE, 'sweep', run, '--data', data, '--out', out, '--limit', '2'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    _wait_for(lambda: any((out/'points').glob('p-*/experiment.ipynb')), p)
    r = larvae('sweep', run, '--data', data, '--out', out, '--limit', '2')
    one_line_error(r, f"{out}: in use by pid {p.pid} (larvae sweep")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'interrupted; rerun with --resume to run the points not yet done' in err, err
    assert not (out/'summary.csv').exists()

    r = larvae('sweep', run, '--data', data, '--out', out, '--limit', '2')  # the same command: refused, saying why
    one_line_error(r, f"{out}: holds a sweep already; rerun with --resume to continue it or choose another --out")

    r = larvae('sweep', run, '--data', data, '--out', out, '--limit', '2', '--resume')
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert '2 points done; summary in' in r.stdout, r.stdout
    done = sorted((out/'points').glob('*/done.json'))
    assert len(done) == 2 and all((d.parent/'experiment.ipynb').is_file() for d in done)
    first = {d: d.stat().st_mtime_ns for d in done}

    r = larvae('sweep', run, '--data', data, '--out', out, '--resume')
    assert '2 already done, 2 to run' in r.stdout, r.stdout
    one_line_error(r, '1 of 4 points failed', ran=True)
    assert 'FAILED p-' in r.stdout and ABSENT in r.stdout  # the failure is summarised with its reason
    assert {d: d.stat().st_mtime_ns for d in done} == first  # finished points were not run again
    s = pd.read_csv(out/'summary.csv')
    assert sorted(s.status) == ['done', 'done', 'done', 'failed']
    assert s.loc[s.status == 'done', 'probe_auc_logistic'].between(0, 1).all()
    bad = s.loc[s.status == 'failed', 'id'].item()
    assert (out/'points'/bad/'experiment.ipynb').is_file() and not (out/'points'/bad/'done.json').exists()

    # the same points plus four refused ones: --keep-going runs the valid one left and exits 0 as one point finished
    r = larvae('sweep', grids/'refusing.yaml', '--data', data, '--out', out, '--resume', '--keep-going')
    assert r.returncode == 0 and r.stdout.count('REFUSED p-') == 4, (r.stdout, r.stderr)
    assert '4 refused by the config schema, 3 already done, 1 to run' in r.stdout, r.stdout
    assert len(list((out/'points').glob('*/done.json'))) == 3
