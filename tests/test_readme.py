"""The README's commands work as printed. Every `larvae` command in its shell blocks runs here, in a fresh directory,
on the quick settings (`--quick` is added to `larvae pipeline`); the YAML block that names a file (`# my.yaml`) is
written first. Left out, each for a stated reason: installs and the test command itself (CI runs them), the site
build (needs Quarto) and commands for SLURM or SSH clusters (they need those services)."""
import os, re, shlex, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LARVAE = str(Path(sys.executable).with_name('larvae'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
NOT_HERE = ('--cluster slurm', '--cluster ssh')  # need a scheduler or sshd (issue: scale-out tests)


def blocks(kind: str) -> list[str]:
    text = (ROOT/'README.md').read_text()
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def readme_commands() -> list[list[str]]:
    "The `larvae` commands of the README's shell blocks, in order, each once, comments dropped."
    cmds = []
    for b in blocks('sh'):
        for line in b.splitlines():
            for part in line.split('#')[0].split('&&'):
                part = part.strip()
                if not part.startswith('larvae ') or any(n in part for n in NOT_HERE): continue
                args = shlex.split(part)[1:]
                if args[0] == 'pipeline': args.append('--quick')
                if args not in cmds: cmds.append(args)
    return cmds


def test_the_readme_shows_what_this_test_runs():
    cmds = [c[0] for c in readme_commands()]
    assert cmds.count('pipeline') >= 2 and 'sweep' in cmds and 'train' in cmds, cmds


def test_every_readme_command_runs_as_printed(tmp_path):
    for b in blocks('yaml'):
        first = b.splitlines()[0]
        if first.startswith('# ') and first.endswith('.yaml'): (tmp_path/first[2:].strip()).write_text(b)
    shutil.copytree(ROOT/'sweeps', tmp_path/'sweeps', ignore=shutil.ignore_patterns('out'))
    for args in readme_commands():
        r = subprocess.run([LARVAE, *args], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=900)
        assert r.returncode == 0, f"larvae {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert (tmp_path/'sweeps'/'out'/'tiny'/'summary.csv').is_file()
    runs = [p for p in (tmp_path/'larvae-out'/'runs').iterdir() if p.is_dir() and '-z32-b5-' in p.name and '-gelu-' in p.name]
    assert runs and (runs[0]/'model.pt').is_file(), list((tmp_path/'larvae-out'/'runs').iterdir())


def test_the_readme_numbers_are_the_committed_runs():
    # every number of the README's results section comes from results/default-run.json (tools/results.py took it from
    # a run's metrics.json); a hand edit of either side, or a README not regenerated, fails here
    import json
    from larvae_nb.report import results_markdown
    root = Path(__file__).resolve().parents[1]
    extract = json.loads((root/'results'/'default-run.json').read_text())
    readme = (root/'README.md').read_text()
    assert results_markdown(extract) in readme
    for method, row in extract['table'].items():
        assert f"| {method} | {row['auc']:.3f} [" in readme, method
