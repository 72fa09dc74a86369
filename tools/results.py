"""Commit the README's and the report's numbers from finished runs, never typing them by hand.

    python tools/results.py larvae-out                    # results/default-run.json from a `larvae pipeline` output
    python tools/results.py --ablation larvae-ablation    # results/ablation.json from a `larvae ablation` directory

then `python tools/readme.py` (README.md shows what the extracts say). The default-run extract is what
`larvae_nb.report.results_summary` takes from the run's metrics.json and history.json; the README is rendered from it
by a cell of nbs/index.ipynb. The ablation extract is the ablation's own ablation.json, shown by nbs/23_ablation.ipynb.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'results'/'default-run.json'


def write(path, obj, source):
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + '\n', encoding='utf-8')
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


def main(argv):
    if len(argv) == 2 and argv[0] == '--ablation': return ablation(argv[1])
    if len(argv) != 1 or argv[0].startswith('-'): print(__doc__); return 2
    from larvae_nb.report import results_summary
    write(RESULTS, results_summary(argv[0]), argv[0])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
