"""Stage 1 and sweeps against real services on loopback, started once per session by tests/services/*.sh:
a single-node SLURM with two fake GPUs, an XRootD server and an sshd.

 - stage 1 reading its raw files through root://localhost (a URL and a URL glob) equals the local result;
   a missing file and an unreachable server are one line naming the URL;
 - stage 1 on an SSHCluster and on a SLURMCluster equals the local process pool's result;
 - a worker that retires at its lifetime (inside the walltime) is replaced and every task finishes;
 - a sweep of 2 points whose driver is itself a batch job (sweeps/clusters/sweep.sbatch): each point runs in
   its own SLURM worker job and reports the CUDA_VISIBLE_DEVICES SLURM gave that job.

Each service is skipped with a one-line reason where it cannot start (not root, packages missing);
with LARVAE_REQUIRE_SERVICES=1 (set by .ci/run) that is an error instead."""
import os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from larvae_nb.config import load_config
from larvae_nb.base import LarvaeError
from larvae_nb.dataset import build_dataset, load_tracks

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT/'tests'/'services'
REQUIRE = os.environ.get('LARVAE_REQUIRE_SERVICES') == '1'
CFG = ['dataset.workers=2', 'dataset.chunk_events=4']
os.environ.setdefault('XRD_CONNECTIONRETRY', '1'); os.environ.setdefault('XRD_CONNECTIONWINDOW', '5')


def unavailable(why):
    "Skip (or, in CI, fail) with a one-line reason."
    if REQUIRE: pytest.fail(f"service required (LARVAE_REQUIRE_SERVICES=1) but {why}", pytrace=False)
    pytest.skip(why)


def start(script, binaries, modules, base):
    "Run tests/services/SCRIPT BASE; the reason it cannot start is a skip."
    if os.geteuid() != 0: unavailable(f"{script} needs root (it starts system daemons on loopback)")
    missing = [b for b in binaries if not shutil.which(b) and not Path('/usr/sbin', b).exists()]
    if missing: unavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge xrootd-server xrootd-client openssh-server)")
    for m in modules:
        try: __import__(m)
        except ImportError: unavailable(f"Python module {m} missing: pip install -e \".[dev]\"")
    r = subprocess.run(['bash', str(SERVICES/script), str(base)], capture_output=True, text=True, timeout=120)
    if r.returncode: unavailable(f"{script} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return base


@pytest.fixture(scope='session')
def svc_base():
    base = Path(tempfile.mkdtemp(prefix='larvae-svc-')); base.chmod(0o755)  # xrootd runs as another user: it must traverse this
    yield base
    for s in ('slurm', 'xrd', 'ssh'):
        if (base/s/'stop.sh').exists(): subprocess.run(['bash', str(base/s/'stop.sh')], capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def slurm(svc_base):
    base = start('slurm-up.sh', ['slurmctld', 'slurmd', 'munged', 'sbatch'], ['dask_jobqueue'], svc_base/'slurm')
    old = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(base/'etc'/'slurm.conf')  # SLURM's clients must not look the controller up over DNS
    yield base
    if old is None: os.environ.pop('SLURM_CONF', None)
    else: os.environ['SLURM_CONF'] = old


@pytest.fixture(scope='session')
def xrootd(svc_base):
    base = start('xrootd-up.sh', ['xrootd', 'xrdcp'], ['XRootD.client', 'fsspec_xrootd'], svc_base/'xrd')
    return base, int((base/'port').read_text())


@pytest.fixture(scope='session')
def sshd(svc_base):
    base = start('sshd-up.sh', ['sshd'], ['asyncssh'], svc_base/'ssh')
    return base, int((base/'port').read_text())


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    "A simulated data directory (8 proton- and 8 kaon-sample events) and its tracks from the local process pool."
    from larvae_nb.detsim import simulate
    d = tmp_path_factory.mktemp('tiny')
    simulate(d/'data', load_config(overrides=['sim.n_protons=8', 'sim.n_kaons=8', 'sim.n_mips=0', 'sim.seed=7']).sim, progress=False)
    build_dataset(d/'data', d/'local', load_config(overrides=CFG), progress=False)
    return d/'data', load_tracks(d/'local')


def same_tracks(a, b, drop=()):
    assert len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns=list(drop)), b.drop(columns=list(drop)))


def remote_python():
    "The interpreter a worker started over ssh runs (ssh sessions do not inherit this process's PYTHONPATH)."
    pp = os.environ.get('PYTHONPATH')
    return f"env PYTHONPATH={pp} {sys.executable}" if pp else sys.executable


# ------------------------------------------------------------------------------------------ XRootD
def test_stage1_through_xrootd_equals_local(xrootd, tiny, tmp_path):
    (xbase, port), (data, local) = xrootd, tiny
    served = xbase/'data'/'tiny'; served.mkdir(exist_ok=True)
    for f in ('protons.root', 'kaons.root'): shutil.copy(data/f, served/f)
    remote = tmp_path/'remote'; shutil.copytree(data, remote, ignore=shutil.ignore_patterns('*.root'))
    m = yaml.safe_load((remote/'larvae-data.yaml').read_text())
    url = f'root://localhost:{port}//data/tiny'
    m['samples']['proton']['files'] = [f'{url}/protons.root']  # a URL
    m['samples']['kaon']['files'] = [f'{url}/k*.root']  # a URL glob
    (remote/'larvae-data.yaml').write_text(yaml.safe_dump(m, sort_keys=False))
    build_dataset(remote, tmp_path/'out', load_config(overrides=CFG), progress=False)
    got = load_tracks(tmp_path/'out')
    assert set(got['file']) == {f'{url}/protons.root', f'{url}/kaons.root'}
    same_tracks(local, got, drop=['file'])


def test_missing_or_unreachable_url_is_one_line(xrootd, tiny, tmp_path):
    (_, port), (data, _) = xrootd, tiny
    for url, says in ((f'root://localhost:{port}//data/tiny/nope.root', 'no such sample \'proton\' file on the server'),
                      (f'root://localhost:{port}//data/none/*.root', 'matches no file; fix the pattern'),
                      ('root://localhost:1//data/protons.root', 'cannot read it from the server')):  # nothing listens on port 1
        d = tmp_path/str(abs(hash(url))); shutil.copytree(data, d, ignore=shutil.ignore_patterns('*.root'))
        m = yaml.safe_load((d/'larvae-data.yaml').read_text()); m['samples']['proton']['files'] = [url]
        (d/'larvae-data.yaml').write_text(yaml.safe_dump(m, sort_keys=False))
        t0 = time.perf_counter()
        r = subprocess.run([str(Path(sys.executable).with_name('larvae')), 'dataset', '--data', str(d), '--out', str(tmp_path/'o')],
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and url in lines[0] and says in lines[0], r.stderr
        assert time.perf_counter() - t0 < 60 and not (tmp_path/'o'/'tracks.parquet').exists()


# ------------------------------------------------------------------------------------------ SSH
def test_stage1_on_ssh_cluster_equals_local(sshd, tiny, tmp_path):
    (base, port), (data, local) = sshd, tiny
    (tmp_path/'ssh.yaml').write_text(yaml.safe_dump({
        'hosts': ['127.0.0.1', '127.0.0.1'], 'python': remote_python(),
        'connect_options': {'port': port, 'known_hosts': None, 'client_keys': [str(base/'id_ed25519')]},
        'scheduler_options': {'host': '127.0.0.1', 'port': 0, 'dashboard_address': '127.0.0.1:0'},
        'worker_options': {'host': '127.0.0.1'}, 'startup_timeout': 60, 'dataset': {'workers_per_host': 2}}))
    build_dataset(data, tmp_path/'out', load_config(overrides=CFG), progress=False, cluster='ssh', cluster_config=tmp_path/'ssh.yaml')
    same_tracks(local, load_tracks(tmp_path/'out'))


# ------------------------------------------------------------------------------------------ SLURM
def slurm_file(path, slurm, **kw):
    path.write_text(yaml.safe_dump({'partition': 'debug', 'walltime': '00:15:00', 'jobs': 2, 'cores': 1, 'memory': '1GB',
                                    'python': sys.executable, 'interface': 'lo', 'log_directory': str(slurm/'jobs'),
                                    'prologue': ['export OMP_NUM_THREADS=1'], 'startup_timeout': 120,
                                    'scheduler_options': {'dashboard_address': '127.0.0.1:0'}} | kw))
    return path


def test_stage1_on_slurm_cluster_equals_local(slurm, tiny, tmp_path):
    data, local = tiny
    cf = slurm_file(tmp_path/'slurm.yaml', slurm, gpus=1, dataset={'gpus': 0})
    build_dataset(data, tmp_path/'out', load_config(overrides=CFG), progress=False, cluster='slurm', cluster_config=cf)
    same_tracks(local, load_tracks(tmp_path/'out'))


def test_bad_cluster_file_stops_before_writing(slurm, tiny, tmp_path):
    data, _ = tiny
    cf = slurm_file(tmp_path/'slurm.yaml', slurm, waltime='00:10:00')
    with pytest.raises(LarvaeError, match="unknown key 'waltime' for a slurm cluster; did you mean 'walltime'"):
        build_dataset(data, tmp_path/'out', load_config(overrides=CFG), progress=False, cluster='slurm', cluster_config=cf)
    assert not (tmp_path/'out').exists()


def test_workers_retiring_at_lifetime_are_replaced(slurm, tmp_path):
    "One SLURM job at a time whose worker retires after 8 s: the adaptive cluster replaces it and every task finishes."
    from larvae_nb.scaleout import dask_client, dask_imap
    cf = slurm_file(tmp_path/'slurm.yaml', slurm, jobs=1, walltime='00:01:00', lifetime='00:00:08')
    task = lambda i: (time.sleep(1), i, os.environ.get('SLURM_JOB_ID'))[1:]  # noqa: E731 (a lambda travels by value: workers cannot import this module)
    with dask_client('slurm', cf, purpose='dataset') as (client, info):
        out = list(dask_imap(client, task, range(14), window=2))
    assert [i for i, _ in out] == list(range(14))
    assert len({j for _, j in out}) >= 2, out  # tasks ran in more than one job: the first retired, another took over


def job_state(jid):
    out = subprocess.run(['scontrol', 'show', 'job', '-o', str(jid)], capture_output=True, text=True, timeout=30).stdout
    return (re.search(r'JobState=(\w+)', out) or [None, None])[1]


def test_sweep_driver_as_batch_job_points_on_slurm_gpus(slurm, tmp_path):
    "Driver = sweeps/clusters/sweep.sbatch as a SLURM job; 2 points, each in its own worker job with the GPU SLURM gave it."
    data = tmp_path/'pipe'
    r = subprocess.run([str(Path(sys.executable).with_name('larvae')), 'pipeline', '--quick', '--until', 'features', '--out', str(data)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    (tmp_path/'g.yaml').write_text("name: t\nbase: [train.epochs=1, 'model.channels=[8,16,32]', 'analysis.analyses=[logistic]', analysis.folds=3]\n"
                                   "product:\n  model.latent: [2, 3]\n")
    cf = slurm_file(tmp_path/'slurm.yaml', slurm, gpus=1, memory='1GB', min_jobs=2,
                    prologue=['export OMP_NUM_THREADS=1', 'echo "SLURM gave CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'])
    log = tmp_path/'driver.log'
    r = subprocess.run(['sbatch', '--parsable', '--partition=debug', '--time=00:20:00', '--mem=500M', f'--output={log}', f'--chdir={tmp_path}',
                        f'--export=ALL,LARVAE_VENV={sys.prefix}', str(ROOT/'sweeps'/'clusters'/'sweep.sbatch'),
                        str(tmp_path/'g.yaml'), str(data), str(cf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    driver = int(r.stdout.strip().split(';')[0])
    deadline = time.time() + 900
    while (state := job_state(driver)) in ('PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', None) and time.time() < deadline: time.sleep(2)
    text = log.read_text() if log.exists() else ''
    assert state == 'COMPLETED', f"driver job {driver} {state}:\n{text[-3000:]}"
    assert '\r' not in text and '2 points done; summary in' in text, text[-3000:]  # a batch log: no progress bars
    s = pd.read_csv(tmp_path/'sweeps'/'out'/'t'/'summary.csv')
    assert sorted(s.status) == ['done', 'done']
    recs = [yaml.safe_load((p/'done.json').read_text()) for p in sorted((tmp_path/'sweeps'/'out'/'t'/'points').glob('p-*'))]
    jobs = {int(r['slurm_job']) for r in recs}
    assert len(recs) == 2 and len(jobs) == 2 and driver not in jobs, recs  # each point in its own worker job, not the driver's
    assert {r['gpu'] for r in recs} == {'0', '1'}, recs  # the two jobs ran side by side, on the two GPUs of the node
    for rec in recs:  # the device a point reports is the one SLURM gave its job (its job script printed it)
        job_log = (slurm/'jobs'/f"dask-worker-{rec['slurm_job']}.out").read_text()
        assert f"SLURM gave CUDA_VISIBLE_DEVICES={rec['gpu']}\n" in job_log, (rec, job_log[-500:])
        assert f"point {rec['id']} done on GPU {rec['gpu']} in SLURM job {rec['slurm_job']}" in text
