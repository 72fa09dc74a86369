"""Fault injection on `larvae pipeline --quick`: kills at every stage, a second writer, edits of code, manifest and
inputs, unwritable outputs. What must hold: a killed run leaves no process behind and its rerun gives the same
artifacts as an undisturbed run; two writers never share a directory; a change reruns exactly what it affects;
a bad output location is one line. (16_cli and 00_config show the mechanisms; 19_reliability tells the story.)"""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch

LARVAE = str(Path(sys.executable).with_name('larvae'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
STAGES = ['simulate', 'dataset', 'images', 'train', 'infer', 'features', 'classify', 'analyse']
QUICK = ['pipeline', '--quick', '--until', 'analyse', '--no-progress']


def larvae(*args, env=None, check=True):
    r = subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, env=env or ENV, timeout=600)
    if check and r.returncode != 0: raise AssertionError(f"larvae {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def ran(log: str) -> list:
    "The stages a pipeline log says it ran (not skipped)."
    return [s for s in STAGES if f'[{s:>9}] running' in log]


def processes_of(out: Path) -> list:
    "Live processes whose command line mentions `out` (a pipeline and its workers)."
    found = []
    for p in psutil.process_iter(['cmdline', 'status']):
        try:
            if p.info['status'] != psutil.STATUS_ZOMBIE and any(str(out) in a for a in (p.info['cmdline'] or [])): found.append(p)
        except psutil.Error: pass
    return found


def run_dir(out: Path) -> Path: return out/json.loads((out/'pipeline.json').read_text())['run']


def artifacts(out: Path) -> dict:
    "The numbers every stage wrote, in a comparable form."
    run = run_dir(out)
    metrics = json.loads((run/'metrics.json').read_text())
    model = torch.load(run/'model.pt', map_location='cpu', weights_only=True)
    weights = model.get('model', model) if isinstance(model, dict) else model
    return {'tracks': pd.read_parquet(out/'dataset'/'tracks.parquet').drop(columns=['file']),  # paths differ between outputs
            'images': torch.load(out/'images'/'images.pt', map_location='cpu', weights_only=True)['x'],
            'weights': {k: v for k, v in weights.items() if torch.is_tensor(v)},
            'features': pd.read_parquet(out/'features'/'features.parquet'),
            'truth_table': metrics['truth']['table']}


def assert_same(a: dict, b: dict):
    pd.testing.assert_frame_equal(a['tracks'], b['tracks'])
    assert torch.equal(a['images'], b['images'])
    assert a['weights'].keys() == b['weights'].keys() and all(torch.equal(a['weights'][k], b['weights'][k]) for k in a['weights'])
    pd.testing.assert_frame_equal(a['features'], b['features'])
    assert a['truth_table'] == b['truth_table']


class Pipeline:
    "A `larvae pipeline` in its own process group, its log read line by line."
    def __init__(self, out: Path, *extra):
        self.p = subprocess.Popen([LARVAE, *QUICK, '--out', str(out), *map(str, extra)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
        self.log = []

    def wait_for(self, text: str, timeout: float = 300) -> bool:
        t0 = time.time()
        while time.time() - t0 < timeout:
            line = self.p.stdout.readline()
            if not line: return False  # finished before printing it
            self.log.append(line)
            if text in line: return True
        raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(self.log)}")

    def kill_tree(self):
        os.killpg(self.p.pid, signal.SIGKILL); self.p.wait(30)


def no_survivors(out: Path, within: float = 10.):
    t0 = time.time()
    while processes_of(out) and time.time() - t0 < within: time.sleep(0.2)
    left = processes_of(out)
    assert not left, f"processes survived the kill: {[p.cmdline() for p in left]}"


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An undisturbed quick run."
    out = tmp_path_factory.mktemp('faults')/'reference'
    larvae(*QUICK, '--out', out)
    return artifacts(out)


@pytest.fixture(scope='module')
def killed(tmp_path_factory):
    """A quick run killed with SIGKILL once in every stage (the whole process tree, and in the dataset stage the parent
    alone), each time rerun, then finished; what it checked on the way, for the tests to assert."""
    out = tmp_path_factory.mktemp('faults')/'killed'
    seen = {'second_writer': None, 'orphans_after_parent_kill': None, 'sigterm': None, 'killed_in': []}
    for stage in STAGES:
        run = Pipeline(out)
        if not run.wait_for(f'[{stage:>9}] running'): continue
        if stage == 'simulate':  # a second writer while the first holds the directory
            seen['second_writer'] = larvae(*QUICK, '--out', out, check=False)
        if stage == 'dataset':  # the parent alone, once its workers exist (as the OOM killer would)
            parent = psutil.Process(run.p.pid)
            t0 = time.time()
            while not parent.children(recursive=True) and time.time() - t0 < 20: time.sleep(0.05)
            workers = parent.children(recursive=True)
            os.kill(run.p.pid, signal.SIGKILL); run.p.wait(30)
            t0 = time.time()
            while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers) and time.time() - t0 < 10: time.sleep(0.1)
            seen['orphans_after_parent_kill'] = [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        elif stage == 'train':  # SIGTERM, as `timeout` or a batch scheduler sends it
            time.sleep(1.0)
            os.kill(run.p.pid, signal.SIGTERM)
            err = run.p.communicate(timeout=60)[1]
            seen['sigterm'] = (run.p.returncode, err, [p for p in out.rglob('.*.tmp')])
        else:
            time.sleep(0.3)  # somewhere inside the stage
            run.kill_tree()
        no_survivors(out)
        seen['killed_in'].append(stage)
    final = larvae(*QUICK, '--out', out)
    return out, final.stdout, seen


def test_a_second_writer_is_refused_in_one_line(killed):
    _, _, seen = killed
    r = seen['second_writer']
    assert r is not None and r.returncode == 2, r
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and 'in use by pid' in err[0] and 'larvae pipeline' in err[0], r.stderr


def test_workers_die_with_their_parent(killed):
    _, _, seen = killed
    assert seen['orphans_after_parent_kill'] == [], seen


def test_kill_9_in_every_stage_then_rerun_gives_the_undisturbed_result(killed, reference):
    out, log, seen = killed
    assert len(seen['killed_in']) >= 6, seen  # the quickest stages may end before the kill lands
    assert_same(artifacts(out), reference)
    assert not [p for p in out.rglob('.*.tmp')], "debris of killed runs was not swept"


def test_a_rerun_after_the_kills_skips_everything(killed):
    out, _, _ = killed
    assert ran(larvae(*QUICK, '--out', out).stdout) == []


def test_a_killed_report_stage_leaves_no_kernel_and_reruns(killed):
    "The report stage runs notebook kernels: killing the pipeline alone (SIGKILL) must not leave them running."
    out, _, _ = killed
    run = subprocess.Popen([LARVAE, 'pipeline', '--quick', '--no-progress', '--out', str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, env=ENV, start_new_session=True)
    line = ''
    while '[   report] running' not in line:
        line = run.stdout.readline()
        assert line, 'the pipeline ended before its report stage'
    parent = psutil.Process(run.pid)
    t0 = time.time()
    while not [c for c in parent.children(recursive=True) if 'ipykernel' in ' '.join(c.cmdline())] and time.time() - t0 < 60:
        time.sleep(0.2)
    kernels = [c for c in parent.children(recursive=True) if 'ipykernel' in ' '.join(c.cmdline())]
    assert kernels, 'no report kernel started'
    os.kill(run.pid, signal.SIGKILL); run.wait(30)
    _, alive = psutil.wait_procs(kernels, timeout=15)
    assert not alive, f"report kernels outlived the pipeline: {[k.pid for k in alive]}"
    log = larvae('pipeline', '--quick', '--no-progress', '--out', out).stdout
    assert ran(log) == [] and '[   report] done in' in log, log  # only the report stage runs again
    assert sorted(p.name for p in (out/'report').glob('*.ipynb')) == ['20_report_data.ipynb', '21_report_model.ipynb', '22_report_pid.ipynb', '24_report_beam.ipynb']
    assert not list((out/'report').glob('.*.part.ipynb'))


def test_edits_rerun_exactly_the_stages_they_affect(killed, tmp_path):
    out, _, _ = killed
    # code: a copy of the package whose features module changed
    pkg = Path(__import__('larvae_nb').__file__).parent
    shutil.copytree(pkg, tmp_path/'larvae_nb', ignore=shutil.ignore_patterns('__pycache__'))
    with open(tmp_path/'larvae_nb'/'features.py', 'a') as f: f.write('\n# an edit\n')
    edited = {**ENV, 'PYTHONPATH': str(tmp_path)}
    assert ran(larvae(*QUICK, '--out', out, env=edited).stdout) == ['features', 'analyse']
    # an input file replaced by a new version (same name)
    data = out/'data'
    beam = data/'beamline.csv'
    beam.write_text(beam.read_text())
    log = larvae(*QUICK, '--out', out, '--until', 'images').stdout
    assert ran(log) == ['dataset', 'images'], log
    # a sample dropped from the manifest
    manifest = data/'larvae-data.yaml'
    text = manifest.read_text()
    import yaml
    m = yaml.safe_load(text); del m['samples']['kaon']
    manifest.write_text(yaml.safe_dump(m))
    log = larvae(*QUICK, '--out', out, '--until', 'dataset').stdout
    assert ran(log) == ['dataset'], log
    samples = set(pd.read_parquet(out/'dataset'/'tracks.parquet', columns=['sample'])['sample'])
    assert 'kaon' not in samples and 'proton' in samples, samples  # the MIP sample stays in the manifest
    manifest.write_text(text)


def test_outputs_that_cannot_be_written_are_one_line(tmp_path):
    (tmp_path/'afile').write_text('x')
    cases = {tmp_path/'afile': 'is a file, not a directory', Path('/sys/larvae-test/out'): 'cannot create an output directory here'}
    if os.geteuid() != 0:  # root writes anywhere: a read-only directory only stops other users
        ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555)
        cases[ro/'out'] = 'cannot create an output directory here'
    for target, says in cases.items():
        r = larvae(*QUICK, '--out', target, check=False)
        err = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(err) == 1 and says in err[0] and 'Traceback' not in r.stderr, (target, r.stderr)
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep me')
    r = larvae(*QUICK, '--out', tmp_path/'mine', check=False)
    assert r.returncode == 2 and 'holds files larvae did not write' in r.stderr
    assert [p.name for p in (tmp_path/'mine').iterdir()] == ['notes.txt']


def test_simulate_never_replaces_a_users_data_directory(tmp_path):
    d = tmp_path/'real'; d.mkdir()
    (d/'larvae-data.yaml').write_text('samples: {proton: {files: [run1.root], tree: ana/raw}}\n')
    (d/'run1.root').write_bytes(b'precious')
    r = larvae('simulate', '--out', d, '--n-protons', 2, '--n-kaons', 0, '--ticks', 512, check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'did not write' in r.stderr, r.stderr
    assert (d/'run1.root').read_bytes() == b'precious'
    # a directory larvae made is replaced as a whole, and the rerun sweeps a killed run's debris beside it
    sim = tmp_path/'sim'
    larvae('simulate', '--out', sim, '--n-protons', 2, '--n-kaons', 0, '--ticks', 512)
    (tmp_path/'.sim.killed.tmp').mkdir()
    larvae('simulate', '--out', sim, '--n-protons', 3, '--n-kaons', 0, '--n-mips', 0, '--ticks', 512)
    assert not (tmp_path/'.sim.killed.tmp').exists()
    assert len(pd.read_parquet(sim/'truth.parquet')) == 3


def test_sigterm_is_an_interrupt_with_a_true_hint(killed):
    _, _, seen = killed
    code, err, debris = seen['sigterm']
    assert code == 130 and 'finished stages are skipped' in err.strip().splitlines()[-1] and 'Traceback' not in err, err
    assert debris == []  # the interrupted stage cleaned up after itself

