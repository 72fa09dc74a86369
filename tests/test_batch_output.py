"""Batch-friendly output: `larvae --quiet` prints nothing on standard output for a successful command, a batch log
(standard output and error not a terminal) holds no carriage-return bar updates, a bar of epochs that stops early
ends at the stopping epoch with a line saying so, and renamed options still work for one release with a warning."""
import io, subprocess

import numpy as np
import pandas as pd
import pytest

from helpers import LARVAE

SIM = ['--n-protons', '2', '--n-kaons', '1', '--n-mips', '0', '--ticks', '512']


def run(*args):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_quiet_simulate_prints_nothing(tmp_path):
    r = run('--quiet', 'simulate', '--out', tmp_path/'d', *SIM)
    assert r.returncode == 0, r.stderr
    assert r.stdout == '' and (tmp_path/'d'/'larvae-data.yaml').is_file()


def test_batch_log_has_no_carriage_returns(tmp_path):
    r = run('simulate', '--out', tmp_path/'d', *SIM)
    assert r.returncode == 0, r.stderr
    assert '\r' not in r.stdout + r.stderr, (r.stdout + r.stderr)[-500:]
    assert r.stdout.strip().splitlines() == [f"wrote 2 proton, 1 kaon and 0 MIP events to {tmp_path/'d'}/larvae-data.yaml"]


@pytest.fixture(scope='module')
def tracks(tmp_path_factory):
    "A dataset directory with tracks.parquet of 6 synthetic tracks."
    import pyarrow.parquet as pq
    from larvae_nb.dataset import tracks_to_arrow
    d, rows = tmp_path_factory.mktemp('ds'), []
    for i in range(6):
        img = np.zeros((40, 120), np.float32); img[np.arange(40), np.linspace(2, 117, 40).astype(int)] = 100 + 10 * np.arange(40)
        rows.append(dict(run=3, subrun=1, event=i, track=0, sample='proton' if i % 3 else 'kaon',
                         col_image=list(img), col_profile=img.max(axis=1), ind_image=list(0.4 * img)))
    pq.write_table(tracks_to_arrow(pd.DataFrame(rows)), d/'tracks.parquet')
    return d


def test_quiet_images_prints_nothing(tracks, tmp_path):
    loud = run('images', '--dataset', tracks, '--out', tmp_path/'a')
    assert loud.returncode == 0 and loud.stdout.startswith('wrote 6 images'), loud.stdout + loud.stderr
    r = run('-q', 'images', '--dataset', tracks, '--out', tmp_path/'b')
    assert r.returncode == 0, r.stderr
    assert r.stdout == '' and (tmp_path/'b'/'images.pt').is_file()


def test_early_stop_closes_the_bar_at_the_stopping_epoch(tmp_path, monkeypatch, capsys):
    import tqdm.auto
    from larvae_nb.config import load_config
    from larvae_nb.train import train
    from test_train_cli import TINY, tiny_images
    bars = []
    class Shown(tqdm.auto.tqdm):  # a bar drawn as on a terminal, into a buffer
        def __init__(self, *a, **kw):
            super().__init__(*a, **(kw | dict(disable=False, file=io.StringIO(), mininterval=0))); bars.append(self)
    monkeypatch.setattr(tqdm.auto, 'tqdm', Shown)
    cfg = load_config(overrides=TINY + ['train.epochs=60', 'train.patience=1', 'train.min_delta=1e9'])
    hist = train(tiny_images(), cfg, tmp_path/'run', progress=True)
    assert hist['stopped_early'] and len(hist['train']['total']) == 2
    (bar,) = bars
    assert (bar.n, bar.total) == (2, 2) and '2/2' in bar.fp.getvalue().split('\r')[-1] and '/60' not in bar.fp.getvalue().split('\r')[-1]
    assert 'training stopped early at epoch 2 (patience 1)' in capsys.readouterr().out


@pytest.mark.parametrize('cmd, old, new', [('train', '--runs', '--out'), ('analyse', '--jobs', '--workers')])
def test_old_option_names_warn_and_work(cmd, old, new, tmp_path):
    from larvae_nb.cli import RENAMED, build_parser, load_command
    assert RENAMED[cmd][old[2:]] == new[2:]
    with pytest.warns(UserWarning, match=f"larvae {cmd}: {old} is now {new}"):
        args = build_parser(cmd, load_command(cmd)).parse_args(([] if cmd == 'train' else ['--run', 'r']) + [old, '3'])
    assert str(getattr(args, new[2:])) == '3'
    r = run(cmd, '--help')
    assert f'{old} {old[2:].upper()}' not in r.stdout and f'{new} {new[2:].upper()}' in r.stdout  # the old name is hidden


def test_old_name_through_the_command_line(tmp_path):
    r = run('analyse', '--run', tmp_path/'none', '--jobs', '0')
    assert r.returncode == 2
    assert r.stderr.splitlines() == ['larvae: warning: larvae analyse: --jobs is now --workers (the old name goes in the next release)',
                                     'larvae analyse: error: --workers 0: give at least 1 worker process']


def test_help_has_one_line_per_command():
    from larvae_nb.cli import COMMANDS
    out = run('--help').stdout.splitlines()
    for name in COMMANDS:
        (line,) = [l for l in out if l.startswith(f'  {name} ')]
        assert len(line.split(None, 1)[1]) > 20, line
