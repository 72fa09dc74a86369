"""Commit the README's and the report's numbers from finished runs, never typing them by hand.

    python tools/results.py larvae-out                    # results/default-run.json from a `larvae pipeline` output
    python tools/results.py --ablation larvae-ablation    # results/ablation.json from a `larvae ablation` directory
    python tools/results.py --sweep latent SWEEP_OUT      # results/sweep-latent.json from a `larvae sweep` output
    python tools/results.py --sweep split SWEEP_OUT       # results/sweep-split.json

then `python tools/readme.py` (README.md shows what the extracts say). The default-run extract is what
`larvae_nb.report.results_summary` takes from the run's metrics.json and history.json; the README is rendered from it
by a cell of nbs/index.ipynb. The ablation extract is the ablation's own ablation.json, shown by nbs/23_ablation.ipynb.
A sweep extract is the sweep's table of finished points (`larvae_nb.sweep_analysis.sweep_table`) with its grid and the
code that ran it, shown by nbs/15a_sweep_analysis.ipynb. Every extract names the commit its run was made at (None for
runs made before larvae_nb recorded it).
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'results'/'default-run.json'


def write(path, obj, source):
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + '\n', encoding='utf-8')
    print(f"wrote {path.relative_to(ROOT)} from {source}; now run `python tools/readme.py`")


def ablation(out):
    from larvae_nb.ablation import variants
    from larvae_nb.run import ABLATION_NAME
    src = Path(out)/f'{ABLATION_NAME}.json'
    if not src.is_file(): print(f"{src}: no ablation result; run `larvae ablation --out {out}` to the end first"); return 1
    info = json.loads(src.read_text())
    names = [r['variant'] for r in info['table']]
    if info['quick'] or names != list(variants()):
        print(f"{src}: not a full ablation (quick={info['quick']}, variants {names}); run every variant at full size"); return 1
    write(ROOT/'results'/f'{ABLATION_NAME}.json', info, out)
    return 0


def sweep(kind, out):
    import pandas as pd
    from larvae_nb.base import LarvaeError
    from larvae_nb.run import MARKER, SweepDir
    from larvae_nb.sweep_analysis import sweep_table
    from larvae_nb.sweeps import load_grid
    out = Path(out)
    try:
        df, grid = sweep_table(out, kind), load_grid(SweepDir(out).grid)
    except LarvaeError as e: print(e); return 1
    made = json.loads((out/MARKER).read_text()) if (out/MARKER).is_file() else {}
    rows = json.loads(df.drop(columns=[c for c in ('error', 'index') if c in df]).to_json(orient='records'))
    info = {'kind': kind, 'grid': {'name': grid.name, 'base': grid.base, 'product': grid.product}, 'version': made.get('version'),
            'commit': made.get('commit'), 'n_points': len(grid.points()), 'n_done': len(df),
            'point_minutes': round(float(pd.to_numeric(df['seconds']).sum()) / 60, 1), 'rows': rows}
    write(ROOT/'results'/f'sweep-{kind}.json', info, out)
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == '--ablation': return ablation(argv[1])
    if len(argv) == 3 and argv[0] == '--sweep': return sweep(argv[1], argv[2])
    if len(argv) != 1 or argv[0].startswith('-'): print(__doc__); return 2
    from larvae_nb.report import results_summary
    write(RESULTS, results_summary(argv[0]), argv[0])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
