"""Commit the README's numbers from a finished run: write results/default-run.json from a `larvae pipeline` output.

    python tools/results.py larvae-out      # then: python tools/readme.py (README.md shows what the extract says)

The extract is what `larvae_nb.report.results_summary` takes from the run's metrics.json and history.json; the README
is rendered from it by a cell of nbs/index.ipynb, so no number in the README is typed by hand.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'results'/'default-run.json'


def main(argv):
    if len(argv) != 1: print(__doc__); return 2
    from larvae_nb.report import results_summary
    s = results_summary(argv[0])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(s, indent=1, sort_keys=True) + '\n', encoding='utf-8')
    print(f"wrote {RESULTS.relative_to(ROOT)} from {argv[0]}; now run `python tools/readme.py` and rerun nbs/index.ipynb's results cell")
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
