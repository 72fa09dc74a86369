"""Bad input to `larvae dataset` (manifest, keyed CSVs, raw ROOT files, options, output directory, old tracks files)
and a killed stage: one line naming the file, non-zero exit, nothing half-written, no orphaned workers."""
import multiprocessing, os, shutil, signal, subprocess, time, warnings
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import psutil
import pytest

from larvae_nb.config import load_config
from larvae_nb.base import LarvaeError, LarvaeWarning
from larvae_nb.keys import EVENT_KEY
from larvae_nb.scaleout import imap_bounded
from larvae_nb.dataset import TRACKS_SCHEMA, MANIFEST, dataset_cmd, read_beamline, read_lifetime, read_manifest, read_reco
from larvae_nb.physics import dedx_table, write_dedx_table
from larvae_nb.root_io import RawWriter, iterate_planes, write_tree

from helpers import LARVAE, one_line_error
ENV = os.environ | {'OMP_NUM_THREADS': '1'}
BASE_MANIFEST = """samples:
  proton: {files: [protons.root], tree: ana/raw}
beamline: beamline.csv
reco: reco.csv
lifetime: lifetime.csv
truth: truth.parquet
bethe_bloch: {proton: bb/proton.txt, kaon: bb/kaon.txt}
"""


def larvae(*args, **kw):
    return subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, timeout=120, env=ENV, **kw)


def nothing_written(out):
    "No tracks file and no temporary debris in `out` (it may exist: claimed before a raw file failed)."
    if out.exists():
        assert not (out/'tracks.parquet').exists() and not list(out.glob('.*.tmp')), list(out.iterdir())
    assert not list(out.parent.glob(f'.{out.name}.*.tmp'))


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    "A tiny valid data directory: 2 channel-mapped events of 64 ticks, the three CSVs, truth and dE/dx tables."
    d = tmp_path_factory.mktemp('base')
    z = np.zeros((2, 240, 64), np.int16)
    with RawWriter(d/'protons.root', n_ticks=64) as w: w.write([1, 1], [0, 0], [1, 2], z, z + 1)
    (d/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,1,921.4\n1,0,2,1,0,958.0\n")  # p picky, m match flags; measured mass
    (d/'reco.csv').write_text('run,subrun,event,trkrr,trkdedx\n1,0,1,"3;2;1","2;3;4"\n1,0,2,"3;2;1","2;3;4"\n')
    (d/'lifetime.csv').write_text("run,lifetime_us\n1,700\n")
    pd.DataFrame({'run': [1], 'subrun': [0], 'event': [1]}).to_parquet(d/'truth.parquet')
    (d/'bb').mkdir()
    for sp in ('proton', 'kaon'): write_dedx_table(dedx_table(sp, rr_max=20, step=0.5), d/'bb'/f'{sp}.txt')
    (d/MANIFEST).write_text(BASE_MANIFEST)
    return d


@pytest.fixture
def data(base, tmp_path):
    "A private copy of `base` to break."
    return Path(shutil.copytree(base, tmp_path/'data'))


def dataset(data, out, *extra):
    return larvae('dataset', '--data', data, '--out', out, *extra)


# --- 1. the manifest

@pytest.mark.parametrize('text, msg', [
    ('hello', "the manifest must be a mapping of entries"),
    ('samples: {proton: {files: [protons.root}', "not valid YAML (line 1"),
    ('samples: {proton: {files: 3}}', "sample 'proton' needs 'files': a file name or a list of them, got 3"),
    ('samples: {proton: {files: protons.root, treee: ana/raw}}', "sample 'proton' has an unknown entry 'treee'; did you mean 'tree'?"),
])
def test_manifest_cli(data, tmp_path, text, msg):
    (data/MANIFEST).write_text(text)
    one_line_error(dataset(data, tmp_path/'out'), data/MANIFEST, msg)
    assert not (tmp_path/'out').exists()


@pytest.mark.parametrize('text, msg', [
    ('samples: 5', "needs a 'samples' mapping"),
    ('samples: {proton: {files: protons.root, tree: [1]}}', "sample 'proton' 'tree' must be a tree path such as ana/raw, got [1]"),
    (BASE_MANIFEST.replace('bethe_bloch: {proton: bb/proton.txt, kaon: bb/kaon.txt}', 'bethe_bloch: bb'), "bethe_bloch must map species to table files"),
    (BASE_MANIFEST.replace('reco: reco.csv', 'reco: 7'), "reco must be a file name, got 7"),
    (BASE_MANIFEST.replace('truth: truth.parquet', 'truth: gone.parquet'), "truth 'gone.parquet' does not exist"),
])
def test_manifest_types(data, text, msg):
    (data/MANIFEST).write_text(text)
    with pytest.raises(LarvaeError) as e: read_manifest(data)
    assert '\n' not in str(e.value) and f"{data/MANIFEST}: {msg}" in str(e.value), str(e.value)


def test_truth_is_a_directory_cli(data, tmp_path):
    (data/'truth.parquet').unlink(); (data/'truth.parquet').mkdir()
    one_line_error(dataset(data, tmp_path/'out'), data/MANIFEST, "truth 'truth.parquet' is a directory, not a file")


@pytest.mark.parametrize('rel, what', [('beamline.csv', 'beamline'), ('lifetime.csv', 'lifetime'), ('bb/kaon.txt', "bethe_bloch table 'kaon'"),
                                       ('protons.root', "sample 'proton' file")])
def test_manifest_path_is_a_directory(data, rel, what):
    (data/rel).unlink(); (data/rel).mkdir()
    with pytest.raises(LarvaeError, match=f"{what} '{rel}' is a directory, not a file"): read_manifest(data)


# --- 2. keyed CSVs

def test_key_not_whole_number_cli(data, tmp_path):
    (data/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,1,921.4\n1,0,4.5,1,0,958.0\n")
    one_line_error(dataset(data, tmp_path/'out'), data/'beamline.csv',
                   "column 'event' of the beamline CSV has 1 value(s) that are not whole numbers, e.g. event=4.5 in data row 2")
    assert not (tmp_path/'out').exists()


@pytest.mark.parametrize('csv, text, msg', [
    ('reco.csv', 'run,subrun,event,trkrr,trkdedx\n1,0,inf,"1;2","3;4"\n', "column 'event' of the reco CSV has 1 value(s)"),
    ('reco.csv', 'run,subrun,event,trkrr,trkdedx\nabc,0,1,"1;2","3;4"\n1,0,2,"1;2","3;4"\n', "column 'run' of the reco CSV has 1 value(s) that are not whole numbers, e.g. run='abc' in data row 1"),
    ('lifetime.csv', 'run,lifetime_us\n1.25,700\n', "column 'run' of the lifetime CSV has 1 value(s)"),
])
def test_key_not_whole_number(data, csv, text, msg):
    (data/csv).write_text(text)
    read = {'reco.csv': lambda p: read_reco(p, load_config()), 'lifetime.csv': read_lifetime}[csv]
    with pytest.raises(LarvaeError) as e: read(data/csv)
    assert '\n' not in str(e.value) and f"{data/csv}: {msg}" in str(e.value), str(e.value)


def test_beamline_flags_must_be_0_or_1(data, tmp_path):
    "An old-style file with the momentum in p (and the mass in m) is refused, naming the file, the column and the row."
    (data/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,1,921.4\n1,0,2,610,880,938.3\n")
    one_line_error(dataset(data, tmp_path/'out'), data/'beamline.csv',
                   "column 'p' must be a 0/1 flag (p is the picky flag of the WC track, not its momentum), but data row 2 has p=610")
    (data/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,0.5,921.4\n")
    with pytest.raises(LarvaeError, match="column 'm' must be a 0/1 flag .m is the WC-to-TPC match flag"): read_beamline(data/'beamline.csv')

def test_beamline_values_dropped_with_warning(data, tmp_path):
    (data/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,inf,921.4\n1,0,2,1,0,958.0\n1,0,3,x,1,\n")
    with pytest.warns(LarvaeWarning, match=r"beamline.csv: dropped 2 of 3 beamline row\(s\) whose p, m or beamline_mass"):
        got = read_beamline(data/'beamline.csv')
    assert got['event'].tolist() == [2] and np.isfinite(got[['p', 'm', 'beamline_mass']].to_numpy()).all()
    r = dataset(data, tmp_path/'out', '--workers', 1)  # the toy events have no tracks: the stage then stops, after warning
    assert f"larvae: warning: {data/'beamline.csv'}: dropped 2 of 3 beamline row(s)" in r.stderr.splitlines()[0], r.stderr
    (data/'beamline.csv').write_text("run,subrun,event,p,m,beamline_mass\n1,0,1,1,nan,921.4\n")
    with pytest.raises(LarvaeError, match="beamline.csv: no row of the beamline CSV has finite numbers"): read_beamline(data/'beamline.csv')


def test_reco_rows_dropped_with_warning(data):
    (data/'reco.csv').write_text('run,subrun,event,trkrr,trkdedx\n1,0,1,"3;2;1","2;3;4"\n1,0,2,"3;2","2;3;4"\n1,0,3,"3;?","2;3"\n')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        reco, why = read_reco(data/'reco.csv', load_config())
    assert reco['event'].tolist() == [1] and (why['unparseable'], why['length_mismatch']) == (1, 1)
    assert [(x.category, str(x.message)) for x in w] == [(LarvaeWarning, f"{data/'reco.csv'}: dropped 2 of 3 reco row(s) whose trkrr and trkdedx "
                                                          "do not parse as numbers (1) or have different lengths (1); fix those rows to keep their tracks")]


# --- 3. raw ROOT files

def mapped_tree(path, channels, **keys):
    "A channel-mapped raw file of 64 ticks with the given channel ids per entry (event keys overridable)."
    n = len(channels)
    br = {k: np.arange(1, n + 1, dtype=np.int32) if k == 'event' else np.ones(n, np.int32) for k in EVENT_KEY} | keys
    counts = [64*len(c) for c in channels]
    br['raw_rawadc'] = ak.unflatten(np.ones(sum(counts), np.int16), counts)
    br['raw_channel'] = ak.unflatten(np.concatenate(channels).astype(np.int16), [len(c) for c in channels])
    write_tree(path, br)


def test_duplicate_channel(data, tmp_path):
    mapped_tree(data/'protons.root', [[0, 1, 2], [5, 9, 5]])
    one_line_error(dataset(data, tmp_path/'out'), data/'protons.root', 'entry 1: channel 5 appears 2 times in raw_channel')
    nothing_written(tmp_path/'out')


def test_event_branch_not_whole(data, tmp_path):
    mapped_tree(data/'protons.root', [[0], [1]], event=np.array([1., 4.5]))
    one_line_error(dataset(data, tmp_path/'out', '--workers', 1), data/'protons.root',
                   "branch 'event' has 1 value(s) that are not whole numbers, e.g. 4.5 at entry 1")
    nothing_written(tmp_path/'out')


def test_run_branch_jagged(data):
    mapped_tree(data/'protons.root', [[0], [1]], run=ak.unflatten(np.ones(3, np.int32), [1, 2]))
    with pytest.raises(LarvaeError) as e: list(iterate_planes(data/'protons.root'))
    assert f"{data/'protons.root'}: ana/raw;1 branch 'run' is not one number per entry" in str(e.value), str(e.value)


# --- 4. options and the output directory

def test_workers_at_least_one(data, tmp_path):
    one_line_error(dataset(data, tmp_path/'out', '--workers', 0), '--workers must be at least 1 (got 0)')
    with pytest.raises(LarvaeError, match=r'--workers must be at least 1 \(got -2\)'): dataset_cmd(str(data), str(tmp_path/'out'), workers=-2)
    assert not (tmp_path/'out').exists()


def test_foreign_output_dir_refused(data, tmp_path):
    out = tmp_path/'mine'; out.mkdir(); (out/'thesis.tex').write_text('keep me')
    one_line_error(dataset(data, out), out, 'holds files larvae did not write')
    assert [p.name for p in out.iterdir()] == ['thesis.tex']


# --- 5. killed stage: workers die with their parent

@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    "A small simulated data directory and a config that makes many small jobs."
    d = tmp_path_factory.mktemp('sim')
    r = larvae('simulate', '--out', d/'data', '--n-protons', 40, '--n-kaons', 20, '--ticks', 1024)
    assert r.returncode == 0, r.stderr
    (d/'small_jobs.yaml').write_text('dataset: {chunk_events: 1, workers: 2}\n')
    return d


def start_with_workers(sim, out):
    "Start `larvae dataset` and return (process, its worker processes) once the pool is running."
    p = subprocess.Popen([LARVAE, 'dataset', '--data', str(sim/'data'), '--out', str(out), '--config', str(sim/'small_jobs.yaml')],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    parent, t0 = psutil.Process(p.pid), time.monotonic()
    while len(parent.children()) < 2:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < 60, 'no workers appeared'
        time.sleep(0.02)
    return p, parent.children(recursive=True)


def gone(procs, within:float)->list:
    "The processes of `procs` still running (zombies count as gone) after waiting up to `within` seconds."
    t0 = time.monotonic()
    while True:
        alive = [q for q in procs if q.is_running() and q.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() - t0 > within: return alive
        time.sleep(0.1)


def test_sigkill_parent_workers_exit(sim, tmp_path):
    p, workers = start_with_workers(sim, tmp_path/'out')
    try:
        p.kill()  # SIGKILL to the parent alone, as the OOM killer does
        p.wait(10)
        assert gone(workers, within=4) == []
    finally:
        for q in workers:
            if q.is_running(): q.kill()


def test_sigterm_stops_promptly_and_cleans_up(sim, tmp_path):
    out = tmp_path/'out'
    p, workers = start_with_workers(sim, out)
    p.send_signal(signal.SIGTERM); t0 = time.monotonic()
    _, err = p.communicate(timeout=20)
    assert time.monotonic() - t0 < 5
    assert p.returncode == 130, err
    assert 'interrupted' in err and 'Traceback' not in err, err
    assert gone(workers, within=2) == []
    nothing_written(out)


def no_children_by(deadline: float) -> list:
    "This process's children still alive at `deadline` (time.monotonic), or none as soon as they are gone."
    while multiprocessing.active_children() and time.monotonic() < deadline: time.sleep(0.05)
    return multiprocessing.active_children()


def test_interrupt_does_not_wait_for_queued_jobs():
    "An interrupt while waiting for a result, or the consumer stopping, ends the pool at once (jobs here sleep 5 s)."
    def interrupt(signum, frame): raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5); t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt): list(imap_bounded(time.sleep, [5]*6, 2))
        assert time.monotonic() - t0 < 3 and no_children_by(t0 + 4.5) == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)
    results = imap_bounded(time.sleep, [0] + [5]*6, 2)
    next(results); t0 = time.monotonic()
    results.close()
    assert time.monotonic() - t0 < 3 and no_children_by(t0 + 4.5) == []


# --- 6. tracks.parquet of an older version

def test_old_tracks_file_refused(tmp_path):
    rows = dict(run=[1], subrun=[0], event=[1], track=[0], sample=['proton'], col_image=[[[1., 2.], [3., 4.]]])
    pd.DataFrame(rows).to_parquet(tmp_path/'tracks.parquet')  # no schema version: as an older larvae_nb wrote it
    one_line_error(larvae('features', '--dataset', tmp_path, '--out', tmp_path/'f'), tmp_path/'tracks.parquet',
                   f'written by an older larvae_nb (schema 0, this version needs {TRACKS_SCHEMA}): rerun `larvae dataset`')
    assert not (tmp_path/'f'/'features.parquet').exists()
