"""Make README.md from nbs/index.ipynb without Quarto (which nbdev_readme needs).

    python tools/readme.py          # write README.md
    python tools/readme.py --check  # exit 1 if README.md is not what index.ipynb makes

Cells whose first lines carry `#| hide` are dropped, other `#|` directive lines are removed, and the
notebook is exported with nbconvert's Markdown exporter. A code cell marked `#| output: asis` (the results section)
is run here, from nbs/, and what it prints becomes Markdown of the README: its numbers come from the committed
results/default-run.json, never from a stored output.
"""
import sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file -->\n\n"


def directives(src):
    lines = src.splitlines()
    out = [l[3:].strip() for l in lines if l.startswith('#|')]
    return out, '\n'.join(l for l in lines if not l.startswith('#|')).strip()


def run_asis(src) -> str:
    "What a results cell prints, run from nbs/ as the notebook runs it."
    import contextlib, io, os
    buf, cwd = io.StringIO(), os.getcwd()
    try:
        os.chdir(ROOT/'nbs')
        with contextlib.redirect_stdout(buf): exec(compile(src, 'nbs/index.ipynb', 'exec'), {'__name__': '__readme__'})
    finally: os.chdir(cwd)
    return buf.getvalue().strip()


def render() -> str:
    nb = nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            ds, src = directives(c.source)
            if any(d.split(':')[0].strip() in ('hide', 'exporti', 'export') for d in ds): continue
            if 'output: asis' in ds:
                c = nbformat.v4.new_markdown_cell(run_asis(src))
            else: c.source = src
        cells.append(c)
    nb.cells = cells
    body, _ = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    return HEADER + body.strip() + '\n'


def main(argv):
    text, readme = render(), ROOT/'README.md'
    if '--check' in argv:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            print("README.md is out of date with nbs/index.ipynb: run `python tools/readme.py` and commit it")
            return 1
        return 0
    readme.write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
