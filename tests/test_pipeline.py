"""`larvae pipeline` end to end on the quick settings: every stage, the reports, skipping, --force, a failing stage."""
import hashlib, json, os, subprocess, sys
from pathlib import Path

import nbformat
import pytest

LARVAE = str(Path(sys.executable).with_name('larvae'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
STAGES = ['simulate', 'dataset', 'images', 'train', 'infer', 'features', 'classify', 'analyse', 'report']


def larvae(*args, check=True):
    r = subprocess.run([LARVAE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600)
    if check and r.returncode != 0: raise AssertionError(f"larvae {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def digest(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp('pipeline')/'out'
    r = larvae('pipeline', '--quick', '--out', out)
    return out, r.stdout


def test_every_stage_runs_and_the_reports_are_executed(quick):
    out, log = quick
    for s in STAGES: assert f'[{s:>9}] done in' in log, (s, log)
    info = json.loads((out/'pipeline.json').read_text())
    run = out/info['run']
    assert (run/'metrics.json').is_file() and (run/'classifier'/'predictions.parquet').is_file()
    metrics = json.loads((run/'metrics.json').read_text())
    assert 0.0 <= metrics['truth']['table']['Pearson chi2 (p - K)']['auc'] <= 1.0
    reports = sorted(p.name for p in (out/'report').glob('*.ipynb'))
    assert reports == ['20_report_data.ipynb', '21_report_model.ipynb', '22_report_pid.ipynb', '24_report_beam.ipynb']
    nb = nbformat.read(out/'report'/'22_report_pid.ipynb', as_version=4)
    text = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
    assert 'true kaons' in text  # the PID table was printed, from this run's metrics
    assert not list((out/'report').glob('.*.part.ipynb'))  # no half-written report left behind


def test_a_rerun_skips_every_stage(quick):
    out, _ = quick
    log = larvae('pipeline', '--quick', '--out', out).stdout
    for s in STAGES: assert f'[{s:>9}] unchanged, skipped' in log, (s, log)


def test_a_failing_stage_is_one_line_and_keeps_earlier_outputs(quick):
    out, _ = quick
    tracks, images = out/'dataset'/'tracks.parquet', out/'images'/'images.pt'
    before, saved = digest(tracks), images.read_bytes()
    (out/'.stages'/'train.json').unlink()  # make the train stage run again ...
    images.write_bytes(b'not a torch file')  # ... on an unreadable images file
    try:
        r = larvae('pipeline', '--quick', '--out', out, check=False)
        assert r.returncode == 2, (r.stdout, r.stderr)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and 'images.pt' in err[0] and 'Traceback' not in r.stderr, r.stderr
        assert digest(tracks) == before  # what earlier stages wrote is untouched
        assert not (out/'.stages'/'train.json').exists()  # the failed stage is not marked done
    finally:
        images.write_bytes(saved)
    log = larvae('pipeline', '--quick', '--out', out).stdout  # mended input: the pipeline picks up where it failed
    assert '[    train] done in' in log and '[ simulate] unchanged, skipped' in log


def test_force_redoes_stages(quick):
    out, _ = quick
    log = larvae('pipeline', '--quick', '--out', out, '--force', '--until', 'images').stdout
    for s in ('simulate', 'dataset', 'images'): assert f'[{s:>9}] done in' in log, log
    assert 'train' not in log


def test_unknown_stage_and_missing_data_are_one_line_errors(tmp_path):
    r = larvae('pipeline', '--out', tmp_path/'o', '--until', 'analyze', check=False)
    assert r.returncode == 2 and "did you mean 'analyse'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = larvae('pipeline', '--out', tmp_path/'o', '--data', tmp_path/'nowhere', check=False)
    assert r.returncode == 2 and 'nowhere' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_changed_images_retrain_the_model(tmp_path):
    # a stage-1 cut changes the images but not the training settings (same run directory): the checkpoint of the
    # old images must not be resumed as if nothing had happened
    out = tmp_path/'out'
    larvae('pipeline', '--quick', '--out', out, '--until', 'train')
    run = out/json.loads((out/'pipeline.json').read_text())['run']
    before = json.loads((run/'history.json').read_text())['images_digest']
    log = larvae('pipeline', '--quick', '--out', out, '--until', 'train', 'cuts.height_lower=25').stdout
    assert 'training afresh' in log, log
    assert out/json.loads((out/'pipeline.json').read_text())['run'] == run  # the same training settings, the same run
    after = json.loads((run/'history.json').read_text())['images_digest']
    from larvae_nb.images import ImageSet
    from larvae_nb.train import images_digest
    assert after != before and after == images_digest(ImageSet.load(out/'images'/'images.pt'))


def test_the_report_is_browsable_without_quarto(quick, tmp_path):
    # self-contained HTML pages: every figure embedded as a PNG that decodes, code hidden, an index linking the pages
    import base64, re, shutil
    out, _ = quick
    html = out/'report'/'html'
    index = (html/'index.html').read_text()
    pages = re.findall(r'href="([^"]+\.html)"', index)
    assert pages == ['20_report_data.html', '21_report_model.html', '22_report_pid.html', '24_report_beam.html'], index
    n_figures = 0
    for page in pages:
        text = (html/page).read_text()
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text):
            assert base64.b64decode(data)[:8] == b'\x89PNG\r\n\x1a\n'; n_figures += 1
        assert 'src="http' not in text and 'def ' not in text  # nothing fetched from the network, no code shown
    assert n_figures >= 10, n_figures
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if browser is None: pytest.skip("headless Chromium is not installed (apt-get install chromium): the HTML was checked by parsing only")
    shot = tmp_path/'report.png'
    subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', f'--screenshot={shot}', '--window-size=1280,2000',
                    (html/'22_report_pid.html').as_uri()], check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_two_training_seeds_each_train_infer_classify_and_reach_the_table(tmp_path):
    # train.seeds=[0, 1]: the run holds seed 0, <run>/seeds/seed-1 seed 1, each with its model, inference and CNN;
    # the truth table reports the reconstruction error and the CNN over both seeds; a rerun skips every stage
    out = tmp_path/'out'
    larvae('pipeline', '--quick', '--out', out, '--until', 'analyse', '--no-progress', 'train.seeds=[0, 1]')
    run = out/json.loads((out/'pipeline.json').read_text())['run']
    sub = run/'seeds'/'seed-1'
    for p in ('model.pt', 'inference/val.npz', 'inference/kaon.npz', 'classifier/predictions.parquet'):
        assert (run/p).is_file() and (sub/p).is_file(), p
    assert digest(run/'model.pt') != digest(sub/'model.pt') and digest(run/'split.parquet') == digest(sub/'split.parquet')
    table = json.loads((run/'metrics.json').read_text())['truth']['table']
    assert table['reconstruction error']['seeds'] == ['seed 0', 'seed 1'] and len(table['supervised CNN']['auc_seeds']) == 2
    assert table['latent logistic probe']['seeds'] == ['VAE 0 + probe 0', 'VAE 1 + probe 1', 'VAE 0 + probe 2']
    log = larvae('pipeline', '--quick', '--out', out, '--until', 'analyse', '--no-progress', 'train.seeds=[0, 1]').stdout
    for s in STAGES[:-1]: assert f'[{s:>9}] unchanged, skipped' in log, (s, log)


def test_an_all_species_run_analyses_the_validation_tracks_of_every_species(tmp_path):
    # data.species=[proton, kaon, mip] with the balanced split (the seed's all-species model): inference writes
    # <species>_train / <species>_val; the analyses take <species>_val of every species and never a training set (but the
    # train-vs-validation test, whose subject it is), reach the truth table and name the sets in metrics.json
    import pandas as pd
    out = tmp_path/'out'
    larvae('pipeline', '--quick', '--out', out, '--until', 'analyse', '--no-progress', 'data.species=[proton, kaon, mip]', 'data.balanced=true',
           'data.n_train=30', 'sim.n_mips=60', 'analysis.analyses=[logistic, two_sample, truth]')  # 10 training tracks per species
    run = out/json.loads((out/'pipeline.json').read_text())['run']
    split = pd.read_parquet(run/'split.parquet')
    assert split[split['split'] == 'train'].groupby('sample').size().to_dict() == {'kaon': 10, 'mip': 10, 'proton': 10}
    m = json.loads((run/'metrics.json').read_text())
    sets = m['sets']
    assert sets['analysed'] == {'proton': 'proton_val', 'kaon': 'kaon_val', 'mip': 'mip_val'}
    val = split[split['split'] == 'val'].groupby('sample').size()
    assert sets['n_tracks'] == {f'{s}_val': int(n) for s, n in val.items()}, (sets['n_tracks'], val)
    assert sorted(sets['by_analysis']) == ['logistic', 'separation', 'truth', 'two_sample']
    for name, used in sets['by_analysis'].items():
        if name != 'two_sample': assert used == ['kaon_val', 'proton_val'], (name, used)  # the two-class analyses: no MIPs, no training set
    assert sets['by_analysis']['two_sample'] == sorted(f'{s}_{p}' for s in ('proton', 'kaon', 'mip') for p in ('train', 'val'))
    ts = m['two_sample']; assert set(ts) == {'proton', 'kaon', 'mip', 'combined', 'combined_matched'} and ts['mip']['n_train'] == 10
    cm, n_matched = ts['combined_matched'], 3 * int(val.min())  # training thirds: the matched pool is three times the smallest validation set
    assert (cm['n_val'] == n_matched and cm['n_train'] == 30) if n_matched >= 8 else 'skipped' in cm, (cm, val)
    assert {c['split'] for c in m['logistic']['hardest_keys']} <= {'proton_val', 'kaon_val'}
    assert 0.0 <= m['truth']['table']['latent logistic probe']['auc'] <= 1.0 and m['truth']['n_events'] <= val['proton'] + val['kaon']
