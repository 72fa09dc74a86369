"""The site configuration Quarto would render: checked here without Quarto."""
import os, shutil, stat, subprocess, sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'


def sidebar_entries():
    def walk(items):
        for it in items:
            if isinstance(it, str): yield it
            elif isinstance(it, dict): yield from walk(it.get('contents', []))
    sb = yaml.safe_load((NBS/'sidebar.yml').read_text())
    return list(walk(sb['website']['sidebar']['contents']))


def test_every_notebook_is_in_the_sidebar_and_every_entry_exists():
    entries = sidebar_entries()
    notebooks = sorted(p.relative_to(NBS).as_posix() for p in NBS.rglob('*.ipynb')
                       if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))
    assert sorted(set(entries)) == notebooks, (set(notebooks) - set(entries), set(entries) - set(notebooks))
    assert len(entries) == len(set(entries)), "a page is listed twice"


def test_quarto_config_has_one_source():
    link = NBS/'_quarto.yml'
    assert link.is_symlink() and link.resolve() == (ROOT/'_quarto.yml').resolve()
    q = yaml.safe_load((ROOT/'_quarto.yml').read_text())
    assert q['project']['type'] == 'website'
    assert set(q['metadata-files']) == {'nbdev.yml', 'sidebar.yml'}


def test_nbdev_proc_nbs_succeeds(tmp_path):
    # nbdev_proc_nbs only checks that a `quarto` executable exists (it would try to download one
    # otherwise); a stand-in on PATH lets the processing itself run, on a copy of the project.
    proj = tmp_path/'proj'
    for name in ('settings.ini', '_quarto.yml'): shutil.copy(ROOT/name, proj/name if proj.exists() else (proj.mkdir() or proj/name))
    shutil.copytree(ROOT/'nbs', proj/'nbs', symlinks=True)
    shutil.copytree(ROOT/'larvae_nb', proj/'larvae_nb', ignore=shutil.ignore_patterns('__pycache__'))
    bin_ = tmp_path/'bin'; bin_.mkdir()
    stub = bin_/'quarto'; stub.write_text('#!/bin/sh\nexit 0\n'); stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}")
    nbdev_proc = Path(sys.executable).with_name('nbdev_proc_nbs')
    r = subprocess.run([str(nbdev_proc), '--n_workers', '1'], cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    processed = {p.name for p in (proj/'_proc').rglob('*.ipynb')}
    assert {p.name for p in NBS.glob('*.ipynb')} <= processed


def test_every_notebook_names_its_kernel():
    # papermill and `jupyter execute` then need no `-k`; nbdev_clean keeps the kernelspec
    import json
    for p in sorted(NBS.glob('*.ipynb')) + [ROOT/'larvae_nb'/'templates'/'experiment.ipynb']:
        ks = json.loads(p.read_text())['metadata'].get('kernelspec') or {}
        assert ks.get('name') == 'python3' and ks.get('language') == 'python', (p.name, ks)


def test_a_wheel_ships_the_report_notebooks(tmp_path):
    # the report stage must work from an installed package, not only from a git checkout
    import zipfile
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel, = tmp_path.glob('larvae_nb-*.whl')
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path/'site')
    from larvae_nb.report import REPORTS
    assert {f'larvae_nb/reports/{n}' for n in REPORTS} <= names, sorted(n for n in names if 'report' in n)
    assert {'larvae_nb/configs/pipeline.yaml', 'larvae_nb/templates/experiment.ipynb'} <= names
    code = "import larvae_nb.report as r; print(*r.report_notebooks(), sep='\\n')"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, 'PYTHONPATH': str(tmp_path/'site')}, check=True).stdout.split()
    assert all(Path(p).parent == (tmp_path/'site'/'larvae_nb'/'reports').resolve() for p in out), out


def test_the_report_pages_show_the_committed_default_run():
    # Quarto publishes the outputs stored in nbs/: the PID page must show the run results/default-run.json (the README's
    # numbers) was taken from, not an older one
    import json, re
    s = json.loads((ROOT/'results'/'default-run.json').read_text())
    nb = json.loads((NBS/'22_report_pid.ipynb').read_text())
    texts = [''.join(o.get('data', {}).get('text/plain', '') or o.get('text', '')) for c in nb['cells'] if c['cell_type'] == 'code'
             for o in c.get('outputs', [])]
    table = next((t for t in texts if re.search(r'^reconstruction error\s+0\.\d+', t, flags=re.M)), None)
    assert table is not None, "nbs/22_report_pid.ipynb stores no headline table: execute the report pages on the default run (README, The site)"
    for method in ('reconstruction error', 'supervised CNN', 'latent logistic probe', 'features: gradient-boosted trees'):
        m = re.search(rf"^{re.escape(method)}\s+([0-9.]+)", table, flags=re.M)
        assert m and abs(float(m.group(1)) - s['table'][method]['auc']) < 6e-4, (method, m and m.group(1), s['table'][method]['auc'])
