"""The `larvae` command as a user meets it."""
import subprocess, sys
from pathlib import Path

LARVAE = str(Path(sys.executable).with_name('larvae'))


def run(*args, **kw):
    return subprocess.run([LARVAE, *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_every_stage():
    r = run('--help')
    assert r.returncode == 0
    for cmd in ('simulate', 'dataset', 'images', 'train', 'infer', 'features', 'analyse', 'sweep', 'pipeline'):
        assert cmd in r.stdout


def test_unknown_command_is_one_line_with_a_suggestion():
    r = run('trian')
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["larvae trian: error: unknown command 'trian'; did you mean 'train'?"]


def test_import_is_light():
    code = ("import sys, larvae_nb, larvae_nb.config, larvae_nb.cli; "
            "heavy = [m for m in ('torch', 'uproot', 'matplotlib', 'sklearn', 'umap', 'awkward') if m in sys.modules]; "
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
